"""A customer's Mastodon media, fetched: each of a status's `media_attachments` from its URL.

Media are public files (often on the instance's file host): they are fetched
without the bot's token, streamed with a byte cap (`adapters.download`), the
type sniffed from the bytes whatever the entity's `type` says. A medium the
instance has not cached yet has no `url`; its `remote_url` is used instead.
Mastodon keeps no file names: the name shown is the last part of the URL.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from adapters.channel import Attachment
from adapters.download import DownloadFailed, clean_name, fetch

log = logging.getLogger("deskbot.adapters.mastodon")

#: Mastodon allows 4 media a status (more on some forks); more are not fetched.
MAX_MEDIA = 10


def fetch_media(http: httpx.Client, status: dict[str, Any], limit: int) -> tuple[tuple[Attachment, ...], list[str]]:
    """The media of `status`, fetched; and the addresses of those that could not be (logged), for
    the message's text to keep: the engineers can still open them."""
    files, unfetched = [], []
    for medium in (status.get("media_attachments") or [])[:MAX_MEDIA]:
        url = medium.get("url") or medium.get("remote_url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            continue
        name = clean_name(unquote(urlsplit(url).path.rsplit("/", 1)[-1]), fallback=f"media-{medium.get('id')}")
        try:
            files.append(fetch(http, url, name=name, limit=limit))
        except DownloadFailed as error:
            log.warning("a customer's medium could not be fetched: %s", error)
            unfetched.append(url)
    return tuple(files), unfetched


def media_urls(status: dict[str, Any]) -> list[str]:
    """The addresses of a status's media (`remote_url` where `url` is missing, as for remote media
    not cached yet)."""
    found = ((m.get("url") or m.get("remote_url")) for m in (status.get("media_attachments") or [])[:MAX_MEDIA])
    return [url for url in found if isinstance(url, str) and url]
