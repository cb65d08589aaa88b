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

from adapters.html_text import bounded, html_to_text


def status_to_text(status: Mapping[str, Any], own_account_id: str | None) -> str:
    """The status's content as plain text, without the bot's own mention. Of the content, only the
    first MiB and 50,000 tags are read, as of a mail's HTML (`adapters.html_text.bounded`): a remote
    server may send any amount, and the status is read on the thread that receives every other."""
    content = bounded(status.get("content") or "")
    return html_to_text(content, status.get("mentions") or [], own_account_id)
