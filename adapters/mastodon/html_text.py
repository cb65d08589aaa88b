"""A status's HTML as the plain text a support case stores.

Mastodon sends sanitised HTML (`<p>`, `<br>`, `<a>`, `<span>`, and since 4.2
lists, quotes, code); `adapters.html_text` (shared with the email channel's
HTML-only mail) walks it with a real HTML parser, and removes the bot's own
mention, found in the status's `mentions` by account id. Media attachments
are appended, one URL a line (`remote_url` where `url` is missing, as for
remote media not cached yet).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from adapters.html_text import html_to_text


def status_to_text(status: Mapping[str, Any], own_account_id: str | None) -> str:
    """The status's content and media as plain text, without the bot's own mention."""
    text = html_to_text(status.get("content") or "", status.get("mentions") or [], own_account_id)
    media = list(media_urls(status.get("media_attachments") or []))
    if media:
        text = (text + "\n\n" if text else "") + "\n".join(media)
    return text


def media_urls(attachments: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    for attachment in attachments:
        url = attachment.get("url") or attachment.get("remote_url")
        if url:
            yield str(url)
