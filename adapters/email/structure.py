"""The files of a mail too large to fetch, named from its IMAP `BODYSTRUCTURE` (pure).

A mail over the attachment limit is read by its header block only (`receive`); its
`BODYSTRUCTURE`, fetched in the same command, still tells which files it carried: every
leaf part with a file name (`Content-Disposition`'s filename or `Content-Type`'s name,
RFC 2231 and RFC 2047 decoded as the standard library decodes them in a whole mail, and
cleaned for display as every channel cleans it, `adapters.download.clean_name`), its
media type as the sender declared it (there are no bytes to sniff) and its size. The
size a server gives is that of the part as sent: a base64 part's decoded size is about
3/4 of it (57 bytes a line of 76 characters and CRLF); a quoted-printable one's is at most
its size. Both are said `about`; only 7bit, 8bit and binary parts are exact.

Its words need not be lost: the inline text parts of a multipart mail (`text_sections`: text/plain
and text/html without a file name, each at most `MAX_TEXT_PART` as sent) are fetched alone (IMAP
`BODY.PEEK[n.MIME]` and `BODY.PEEK[n]`) and put together again in their multiparts
(`text_only_body`), so that the reading of a whole mail (`bodies`) chooses among them as it would.

The structure is the sender's work relayed by the server (imapclient's `BodyData`:
nested tuples, a multipart's parts in a list first): anything may be missing, of the
wrong type, or nested deep. It is walked without recursion, at most `MAX_NODES` parts
and `MAX_DEPTH` levels, and nothing here raises: what cannot be read is no file.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from email import utils
from email.header import decode_header, make_header
from typing import Any

from adapters.channel import WHOLE_MESSAGE, Attachment, size_text
from adapters.download import clean_name

from .attachments import _NO_FILES

log = logging.getLogger("deskbot.adapters.email")

#: Files named, as the note lists them; the rest are counted ("and 3 more").
MAX_LISTED = 20
#: Parts looked at, and multipart levels entered, in one structure.
MAX_NODES = 1000
MAX_DEPTH = 50
#: A declared media type kept as it is (else application/octet-stream).
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")
#: Transfer encodings whose size is the decoded size.
_EXACT = {"7bit", "8bit", "binary"}
#: The largest text part (as sent) fetched from a mail too large to fetch, and all of them together.
MAX_TEXT_PART = 2**20
MAX_TEXT = 4 * 2**20


def encoded_size(size: int) -> int:
    """A file's size in a mail: base64, 4 bytes for 3, in lines of 76 characters and a line end."""
    encoded = -(-size // 3) * 4
    return encoded + -(-encoded // 76) * 2


@dataclass(frozen=True, slots=True)
class ListedFile:
    """A file of a mail that was not fetched: its name, declared type and (estimated) size."""

    name: str
    media_type: str
    size: int
    #: The size is an estimate (from a base64 or quoted-printable part's encoded size).
    about: bool


@dataclass(frozen=True, slots=True)
class Listed:
    """The named files of a structure: at most MAX_LISTED, and how many more there were."""

    files: tuple[ListedFile, ...] = ()
    more: int = 0


def oversized(size: int, limit: int, listed: Listed, *, text_read: bool = False) -> tuple[str, tuple[Attachment, ...]]:
    """The note (for the engineers, in the message's text) and the refused files of a mail of `size`
    bytes read by its headers only, or by its headers and text parts (`text_read`): one per named
    file, else, when its text was not read either, one for the whole message."""
    read = "its headers and its text" if text_read else "its headers"
    note = f"[A message of {size_text(size)}, over the size limit: only {read} were read.]"
    if not listed.files:
        if text_read:
            return note, ()
        whole = Attachment(WHOLE_MESSAGE, "message/rfc822", size, None, refused_over=limit)
        return note, (whole,)
    named = [f'"{f.name}" ({f.media_type}, {"about " if f.about else ""}{size_text(f.size)})' for f in listed.files]
    if listed.more:
        named.append(f"and {listed.more} more")
    files = tuple(Attachment(f.name, f.media_type, f.size, None, refused_over=limit) for f in listed.files)
    return f"{note[:-1]} Its files, not kept: {', '.join(named)}.]", files


def listed_files(structure: Any) -> Listed:
    """The named files of a `BODYSTRUCTURE` (imapclient's `BodyData` or any nested tuples). Never raises."""
    try:
        return _listed(structure)
    except Exception:  # not known to happen: a structure that cannot be read names no file
        log.info("a mail's BODYSTRUCTURE could not be read", exc_info=True)
        return Listed()


def _listed(structure: Any) -> Listed:
    files: list[ListedFile] = []
    more = 0
    nodes = 0
    stack: list[tuple[Any, int]] = [(structure, 0)]
    while stack and nodes < MAX_NODES:
        part, depth = stack.pop()
        nodes += 1
        if not isinstance(part, tuple | list) or not part:
            continue
        if isinstance(part[0], list | tuple):  # a multipart: its parts first, then its subtype …
            if depth < MAX_DEPTH:
                children = part[0] if isinstance(part[0], list) else [p for p in part if isinstance(p, tuple)]
                stack.extend((child, depth + 1) for child in reversed(children[:MAX_NODES]))
            continue
        file = _file(part)
        if file is None:
            continue
        if len(files) < MAX_LISTED:
            files.append(file)
        else:
            more += 1
    return Listed(tuple(files), more)


def text_sections(structure: Any) -> list[str]:
    """The IMAP sections ("1", "2.1" …) of the inline text parts of a multipart `BODYSTRUCTURE`, in
    order: text/plain and text/html without a file name nor an `attachment` disposition, each at
    most MAX_TEXT_PART as sent, at most MAX_TEXT in all. [] for a single part. Never raises."""
    try:
        return _text_sections(structure)
    except Exception:  # not known to happen: a structure that cannot be read has no text to fetch
        log.info("a mail's BODYSTRUCTURE could not be read for its text", exc_info=True)
        return []


def _text_sections(structure: Any) -> list[str]:
    if not _is_multipart(structure):
        return []
    found: list[str] = []
    total = nodes = 0
    stack: list[tuple[Any, str, int]] = [(structure, "", 0)]
    while stack and nodes < MAX_NODES:
        part, section, depth = stack.pop()
        nodes += 1
        if _is_multipart(part):
            if depth < MAX_DEPTH:
                children = _children(part)
                stack.extend(
                    (child, f"{section}.{n}" if section else str(n), depth + 1)
                    for n, child in reversed(list(enumerate(children[:MAX_NODES], 1)))
                )
            continue
        if not isinstance(part, tuple | list) or not section:
            continue
        fields = list(part)
        media_type = f"{_text(_at(fields, 0))}/{_text(_at(fields, 1))}".lower()
        size = _at(fields, 6)
        if media_type not in ("text/plain", "text/html") or not isinstance(size, int) or size > MAX_TEXT_PART:
            continue
        disposition = _at(fields, 9)
        named = _param(_at(fields, 2), "name")
        if isinstance(disposition, tuple | list) and disposition:
            named = named or _param(_at(disposition, 1) if len(disposition) > 1 else None, "filename")
            if _text(disposition[0]).strip().lower() == "attachment":
                continue
        if named or total + size > MAX_TEXT:
            continue
        total += size
        found.append(section)
    return found


def text_only_body(structure: Any, parts: dict[str, bytes]) -> bytes:
    """A MIME body of the multiparts of `structure` holding only the fetched `parts` (section ->
    its MIME header and content, as IMAP gives `BODY[n.MIME]` and `BODY[n]`): what `bodies` reads
    as it reads a whole mail. b'' when nothing was fetched."""
    try:
        return _rebuilt(structure, "", 0, parts) or b""
    except Exception:  # not known to happen
        log.info("a mail's text parts could not be put together", exc_info=True)
        return b""


def _rebuilt(part: Any, section: str, depth: int, parts: dict[str, bytes]) -> bytes | None:
    if not _is_multipart(part):
        return parts.get(section)
    if depth >= MAX_DEPTH:
        return None
    rebuilt = (
        _rebuilt(child, f"{section}.{n}" if section else str(n), depth + 1, parts)
        for n, child in enumerate(_children(part), 1)
    )
    children = [child for child in rebuilt if child is not None]
    if not children:
        return None
    subtype = next((_text(field) for field in part if isinstance(field, bytes | str)), "mixed").lower() or "mixed"
    boundary = f"=_deskbot_{depth}_{section or 0}_{hashlib.sha256(b''.join(children)).hexdigest()[:16]}"
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
    return (
        head
        + b"".join(b"--" + boundary.encode() + b"\r\n" + child + b"\r\n" for child in children)
        + (b"--" + boundary.encode() + b"--\r\n")
    )


def _is_multipart(part: Any) -> bool:
    return isinstance(part, tuple | list) and bool(part) and isinstance(part[0], list | tuple)


def _children(part: Any) -> list[Any]:
    return list(part[0]) if isinstance(part[0], list) else [p for p in part if isinstance(p, tuple)]


def _file(part: tuple[Any, ...] | list[Any]) -> ListedFile | None:
    """A leaf part (type, subtype, params, id, description, encoding, size, …) as a named file."""
    fields = list(part)
    media_type = f"{_text(_at(fields, 0))}/{_text(_at(fields, 1))}".lower()
    if media_type in _NO_FILES:
        return None
    disposition = _at(fields, _disposition_index(media_type))
    name = ""
    if isinstance(disposition, tuple | list) and len(disposition) >= 2:
        name = _param(disposition[1], "filename")
    name = name or _param(_at(fields, 2), "name")
    name = clean_name(name, fallback="")
    if not name:
        return None
    size = _at(fields, 6)
    size = size if isinstance(size, int) and size >= 0 else 0
    encoding = _text(_at(fields, 5)).strip().lower()
    exact = encoding in _EXACT
    return ListedFile(
        name=name,
        media_type=media_type if _MEDIA_TYPE.fullmatch(media_type) else "application/octet-stream",
        size=size * 57 // 78 if encoding == "base64" else size,
        about=not exact,
    )


def _disposition_index(media_type: str) -> int:
    """Where a leaf's disposition lies (RFC 3501 §7.4.2): after the size come a text part's line
    count, a message's envelope, structure and line count; then the MD5, then the disposition."""
    if media_type.startswith("text/"):
        return 9
    if media_type in ("message/rfc822", "message/global"):
        return 11
    return 8


def _param(params: Any, wanted: str) -> str:
    """The parameter `wanted` of an IMAP parameter list (name, value, name, value …), RFC 2231
    (continuations, charset) and RFC 2047 decoded; '' when it is missing or unreadable."""
    if not isinstance(params, tuple | list):
        return ""
    pairs = [("", "")]
    for index in range(0, len(params) - 1, 2):
        key, value = _text(params[index]).strip().lower(), _text(params[index + 1])
        if key == wanted or key.startswith(wanted + "*"):
            pairs.append((key, value))
    if len(pairs) == 1:
        return ""
    try:
        decoded = utils.decode_params(pairs)
    except Exception:  # continuations that cannot be ordered, a broken charset: unnamed
        return ""
    for key, value in decoded[1:]:
        if key != wanted:
            continue
        if isinstance(value, tuple):
            value = utils.collapse_rfc2231_value((value[0], value[1], utils.unquote(value[2])))
        else:
            value = utils.unquote(value)
        return _encoded_words(str(value))
    return ""


def _encoded_words(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # a broken encoded word stays as it was written
        return value


def _at(fields: list[Any], index: int) -> Any:
    return fields[index] if index < len(fields) else None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else ""
