"""A status's HTML as the plain text a support case stores.

Mastodon sends sanitised HTML (`<p>`, `<br>`, `<a>`, `<span>`, and since 4.2
lists, quotes, code); `adapters.html_text` (shared with the email channel's
HTML-only mail) walks it with a real HTML parser, and removes the bot's own
mention, found in the status's `mentions` by account id. Media are not text:
the channel fetches them as the message's files (only the address of one it
could not fetch is added to the text, `receive`), so a command with a
screenshot (`status 2` and an image) is still the command.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.html_text import html_to_text


def status_to_text(status: Mapping[str, Any], own_account_id: str | None) -> str:
    """The status's content as plain text, without the bot's own mention."""
    return html_to_text(status.get("content") or "", status.get("mentions") or [], own_account_id)
