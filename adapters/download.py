"""Fetching a customer's file: streamed with a byte cap, its media type sniffed from the bytes.

A file is read in chunks and the download is cut off as soon as it passes the
limit, so a huge or endless body never sits in memory whole: at most the limit
plus one chunk. The media type is what the bytes are (`filetype`, by their
magic numbers), never what the sender or the server says; bytes it does not
recognise are `text/plain` when they decode as UTF-8 text, else
`application/octet-stream`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import TYPE_CHECKING

from adapters.channel import Attachment
from adapters.printable import printable

if TYPE_CHECKING:  # httpx (and what it pulls in) stays off `deskbot run`'s start-up path until a file comes
    import httpx

log = logging.getLogger("deskbot.adapters")

#: Bytes read at a time.
CHUNK = 64 * 1024
#: Characters of a file name kept (names are shown, never used as paths).
NAME_LENGTH = 200


class DownloadFailed(Exception):
    """The file could not be fetched (the server refused it, or the connection failed).

    `reason` says why in a few words that hold no address ("HTTP 404", "ConnectTimeout")."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def sniff(data: bytes) -> str:
    """The media type of `data` judged from the bytes alone."""
    import filetype  # noqa: PLC0415 — its matchers cost 30 ms of `deskbot run`'s start, before any file comes

    kind = filetype.guess(data[:8192])
    if kind is not None:
        return str(kind.mime)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


def clean_name(name: str, fallback: str = "file") -> str:
    """A file name to show: one line, no control characters, no path, at most NAME_LENGTH characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = " ".join(printable(name).split())[:NAME_LENGTH]
    return kept or fallback


def fetch(
    client: httpx.Client,
    url: str,
    *,
    name: str,
    limit: int,
    auth: httpx.Auth | tuple[str, str] | None = None,
) -> Attachment:
    """GET `url` into an `Attachment` named `name`, refused (`refused_over`) past `limit` bytes.

    A Content-Length over the limit is refused before any byte is read. Raises DownloadFailed.
    """
    import httpx

    digest = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    try:
        with client.stream("GET", url, auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT) as response:
            if response.status_code != 200:
                reason = f"HTTP {response.status_code}"
                raise DownloadFailed(f"GET {_path(url)}: {reason}", reason)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                return Attachment(name, "application/octet-stream", int(declared), None, refused_over=limit)
            for chunk in response.iter_bytes(CHUNK):
                size += len(chunk)
                if size > limit:
                    log.info("download of %s cut off past %d bytes", _path(url), limit)
                    return Attachment(name, "application/octet-stream", size, None, refused_over=limit)
                digest.update(chunk)
                chunks.append(chunk)
    except httpx.HTTPError as error:
        raise DownloadFailed(f"GET {_path(url)}: {type(error).__name__}", type(error).__name__) from error
    data = b"".join(chunks)
    return Attachment(name, sniff(data), size, digest.hexdigest(), data=data)


def _path(url: str) -> str:
    """The URL without its query (which may hold a token), for logs."""
    return re.sub(r"[?#].*", "", url)
