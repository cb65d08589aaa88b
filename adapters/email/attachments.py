"""A mail's files: attachments and inline images, as the `Attachment`s every channel hands over.

Every leaf part that is not the text a person reads is a file: a part marked
`attachment`, a part with a file name, and any part that is not text (an
inline image in `multipart/related`). The name comes from
`Content-Disposition`'s filename or `Content-Type`'s name (RFC 2231 and RFC
2047 decoded by the standard library) and is cleaned for display as every
channel cleans it (`adapters.download.clean_name`); the media type is sniffed
from the bytes (`adapters.download.sniff`), never taken from the sender. A
forwarded message (`message/rfc822`) is a file too; the reports a bounce
carries (`message/delivery-status` …) and the signatures of signed mail are not.

The message is in memory already (the channel reads only messages under the
size limit whole), so each file's bytes are at hand; one over
`max_attachment_bytes` is kept as a record without its bytes (`refused_over`).
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from collections.abc import Iterator
from email import policy
from email.message import Message

from adapters.channel import Attachment
from adapters.download import clean_name, sniff

log = logging.getLogger("deskbot.adapters.email")

#: Files kept of one mail (Zulip keeps 20 of a message, Mastodon 10 of a status).
MAX_FILES = 50
#: Parts that are no file a person attached: a bounce's copy of the headers of the mail that
#: bounced, and the signatures and control parts of signed and encrypted mail (S/MIME, OpenPGP).
_NO_FILES = {
    "text/rfc822-headers",
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/pgp-signature",
    "application/pgp-encrypted",
}
#: How a forwarded message's bytes are written back: its headers as they came, never folded again.
#: The standard library refolds a header line over 78 characters (`refold_source="long"`): it parses
#: and re-encodes the whole value, in time quadratic in its words (a one-line header of 190 KB held
#: the receive thread 1.7 s), and what it writes is no longer what was sent (a long line of ASCII
#: becomes RFC 2047 words; a DKIM signature over it may no longer verify). Mail is parsed with `policy.default`'s
#: rules (`reading`), so this writes it as that policy would, but for the folding.
_AS_SENT = policy.default.clone(refold_source="none")


def attachments(message: Message, max_attachment_bytes: int) -> tuple[Attachment, ...]:
    """The files of `message`, in order: at most MAX_FILES, as the other channels keep at most a few."""
    found: list[Attachment] = []
    for part, content_type in _leaves(message):
        if not is_file(part, content_type):
            continue
        if len(found) == MAX_FILES:
            log.info("a mail has more than %d files: the rest are left out", MAX_FILES)
            break
        data = _bytes(part, content_type)
        media_type = sniff(data)
        forwarded = content_type == "message/rfc822"
        name = clean_name(_name(part), fallback=_unnamed(len(found) + 1, content_type if forwarded else media_type))
        digest = hashlib.sha256(data).hexdigest()
        if len(data) > max_attachment_bytes:
            found.append(Attachment(name, media_type, len(data), digest, refused_over=max_attachment_bytes))
        else:
            found.append(Attachment(name, media_type, len(data), digest, data=data))
    return tuple(found)


def _leaves(message: Message) -> Iterator[tuple[Message, str]]:
    """The parts below `message` that hold content, with their content type, depth first, without
    recursion (mail may nest multiparts thousands deep). A `message/*` part is a leaf: its own parts
    are not ours. (The type is read once: the standard library parses the header at every call.)"""
    stack = [iter([message])]
    while stack:
        part = next(stack[-1], None)
        if part is None:
            stack.pop()
            continue
        content_type = part.get_content_type()
        if content_type.startswith("multipart/") and part.is_multipart():
            stack.append(iter(part.get_payload()))
        elif isinstance(part, Message):
            yield part, content_type


def is_file(part: Message, content_type: str) -> bool:
    """Is this leaf a file, not the text a person reads (`bodies`)? Named, marked `attachment`, or
    neither plain text nor HTML."""
    if content_type.startswith("message/"):
        return content_type == "message/rfc822"
    if content_type in _NO_FILES:
        return False
    return (
        part.get_content_disposition() == "attachment"
        or bool(_name(part))
        or content_type not in ("text/plain", "text/html")  # an image, a PDF, an invitation (text/calendar)
    )


def _name(part: Message) -> str:
    try:
        name = part.get_filename() or part.get_param("name", header="content-type") or ""
    except Exception:  # a broken RFC 2231 or 2047 parameter: the file stays, unnamed
        return ""
    if isinstance(name, tuple):  # an RFC 2231 value the library could not decode: (charset, language, text)
        name = name[2]
    return str(name)


def _bytes(part: Message, content_type: str) -> bytes:
    try:
        if content_type == "message/rfc822":
            inner = part.get_payload(0)
            return inner.as_bytes(policy=_AS_SENT) if isinstance(inner, Message) else b""
        data = part.get_payload(decode=True)
    except Exception:  # what cannot be decoded is kept as nothing rather than fail the mail
        return b""
    return data if isinstance(data, bytes) else b""


def _unnamed(number: int, media_type: str) -> str:
    """A name for a file its sender gave none: "attachment-2.png"."""
    extension = ".eml" if media_type == "message/rfc822" else mimetypes.guess_extension(media_type) or ""
    return f"attachment-{number}{extension}"
