"""A raw mail as a `Mail`: who wrote it, what it answers, what is new in it, whether to answer it.

Pure and network-free: the channel fetches the bytes and calls `read_mail`
(or, for a message too large to fetch whole, `read_text_parts` with its text
parts, else `read_headers`) and gets every
fact it routes by. Parsed with the standard library's `email` package and
`policy.default`; its parts: `bodies` (the text, whatever the charset
claims), `quoting` (the new part of a reply), `automatic` (mail never to be
answered), `authentication` (the trusted server's DMARC verdict),
`attachments` (the files).

Nothing here raises on any bytes at all: mail comes from anyone, and a mail
that cannot be read must still be stored and flagged, not kill the intake.
Every header is read through one guard that falls back to the header's raw
text where the standard library's parser trips; the rare mail whose MIME
structure the parser itself cannot take is read as headers and raw text.
A part's MIME headers are read once, not at each question asked of them, by
the structured parser up to a budget a mail, and one too long to be real is
malformed (`_ReadingPolicy`).
"""

from __future__ import annotations

import email
import email.parser
import email.utils
import hashlib
import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from typing import Any

from adapters.channel import Attachment

from .attachments import attachments as files_of
from .authentication import dmarc_passed
from .automatic import automatic_reason
from .bodies import body_text, c1_as_windows_1252, clean, decode
from .quoting import new_part, without_signature

log = logging.getLogger("deskbot.adapters.email")

#: A message id as RFC 5322 writes it (`<left@right>`), lenient about what is inside the brackets.
_MSG_ID = re.compile(r"<[^<>\s\x00-\x1f\x7f]+>")
#: An addr-spec kept as an identity: something@something, without spaces, brackets or controls.
_ADDR_SPEC = re.compile(r"[^\s<>()\[\]\\,;:@\"\x00-\x1f\x7f]+@[^\s<>()\[\]\\,;:@\"\x00-\x1f\x7f]+")
#: Raw 8-bit bytes in a header, as the parser keeps them (surrogate escapes).
_UNDECODED = re.compile("[\udc80-\udcff]")
#: A forward's subject, as clients write it in English and Portuguese ("Fwd:", "FW:", "Enc:", "Reenc:").
_FORWARD = re.compile(r"(?:\[[^\]]*\]\s*)?(?:fwd?|enc|reenc)\s*:", re.IGNORECASE)
#: A reply's subject, as clients localise "Re:" ("RE:", "RES:", "Resp:", "AW:", "Sv:", "Vs:", "Antw:",
#: "Re[2]:"), after any tags a list or a mail gateway put before it ("[EXTERNAL] RE:").
_REPLY = re.compile(r"(?:\[[^\]]*\]\s*)*(?:re|res|resp|aw|sv|vs|antw)\s*(?:\[\d+\])?\s*[:：]", re.IGNORECASE)
#: The headers a mail without a Message-ID is known by, with its body (the same in every delivery of
#: it, unlike the trace headers each delivery adds: Received, Delivered-To, Return-Path).
_STABLE_HEADERS = ("From", "To", "Cc", "Date", "Subject")
#: References beyond this many (the oldest) are dropped: threading needs the newest ones.
MAX_REFERENCES = 100

#: The MIME headers of a part, with parameters: the standard library parses them anew at every
#: question asked of them (`get_content_type`, `get_param`, `get_filename`, `get_content_charset` …:
#: its own parser, `bodies` and `attachments` ask 13 times in a mail of one part, 21 in a multipart
#: of one), each time in some microseconds a character: a Content-Type of 5,000 parameters held the
#: receive thread 4-6 s.
_MIME_HEADERS = frozenset({"content-type", "content-disposition"})
#: A MIME header longer than this, as written, is malformed: a real one is a type and a few
#: parameters, a long file name in RFC 2231 pieces at most (a 255-byte name, percent-encoded: under
#: 1,000 characters).
_MAX_MIME_HEADER = 4096
#: What a malformed MIME header is read as. A Content-Type: text/plain; charset=us-ascii, as RFC 2045
#: §5.2 says of one that cannot be read (and as the standard library reads a type it cannot parse):
#: its part is text, decoded whatever its bytes (`bodies.decode`), a multipart's parts and all read as
#: its text, so nothing is lost. A Content-Disposition: none, its part what its type says.
_MALFORMED = {"content-type": "text/plain; charset=us-ascii", "content-disposition": ""}
#: The structured parser (`policy.default`'s) takes 3 to 7 microseconds a character of a MIME header,
#: more the longer the header in some shapes (empty parameters, comments: 4,096 characters of them
#: took 100-150 ms), and a mail may have thousands of parts, each with headers of its own: 100 parts
#: with a Content-Type of 900 characters each held the receive thread 2.3 s. So it reads a mail's
#: MIME headers up to `_PARSED_PER_MAIL` characters in all, each at most `_MAX_PARSED` long: under
#: 0.5 s at worst, and more than a real mail has (50 files with long names: some 20,000 characters).
#: The others are read as written (raw 8-bit bytes decoded, `_readable`), their parameters split by
#: the standard library's older parser, in linear time: a header as mail clients write it gives the
#: same type, charset and file name (RFC 2231 pieces joined and decoded), but for an RFC 2047 word in
#: a name, left as written. A real header over `_MAX_PARSED` is a long RFC 2231 name in pieces.
_MAX_PARSED = 1024
_PARSED_PER_MAIL = 32 * 1024
#: Parameters read of a MIME header: a real one has a few (a long RFC 2231 name, some 13 pieces of a
#: line each); those after them are left out, unread by anyone. The older parser takes some 5
#: microseconds to split each, and the library looks each question up among them all: a mail of 1,000
#: parts, each with a Content-Type of 4,000 characters of parameters, took 3 s.
_MAX_PARAMETERS = 32


class _MimeHeaders:
    """The MIME headers of one mail as read: structured while `_PARSED_PER_MAIL` lasts, else as
    written (see there). Each value is read once, so it reads the same at every question asked of
    it, however the budget stands by then."""

    def __init__(self) -> None:
        self.parsed_left = _PARSED_PER_MAIL
        #: (name in lower case, value) -> the text read. Text, not the header object: that keeps its
        #: parse tree, some 700 bytes a character.
        self.read: dict[tuple[str, str], str] = {}

    def text(self, name: str, value: str) -> str:
        key = (name.lower(), value)
        text = self.read.get(key)
        if text is None:
            read = _first_parameters(value)
            if len(read) <= min(_MAX_PARSED, self.parsed_left):
                self.parsed_left -= len(read)
                text = str(policy.default.header_fetch_parse(name, read))
            else:
                text = _readable("".join(read.splitlines()))
            self.read[key] = text
        return text


def _first_parameters(value: str) -> str:
    """`value` up to its `_MAX_PARAMETERS`th parameter (a ";" in a quoted value counts: a real header
    has too few for it to matter)."""
    cut = -1
    for _ in range(_MAX_PARAMETERS + 1):  # the type, then a ";" before each parameter
        cut = value.find(";", cut + 1)
        if cut < 0:
            return value
    return value[:cut]


class _ReadingMessage(EmailMessage):
    """An `EmailMessage` that splits a header's parameters once. The standard library's
    `get_param` splits and decodes them anew from the header's text at every call, and so do
    `get_params`, `get_filename`, `get_content_charset` and `get_boundary`, which call it: `bodies`
    and `attachments` ask a text part about six times, each in some microseconds a parameter."""

    def __init__(self, policy: EmailPolicy | None = None) -> None:
        super().__init__(policy)
        #: Per header name (lower case): (the header's text, its parameters as the library split them).
        self._parameters: dict[str, tuple[str, list[tuple[str, Any]]]] = {}

    def _get_params_preserve(self, failobj: Any, header: str) -> Any:
        # The one method through which every question about parameters reads them (Python 3.11-3.13).
        value = self.get(header)
        if value is None:
            return failobj
        key = header.lower()
        kept = self._parameters.get(key)
        if kept is None or kept[0] != value:
            kept = self._parameters[key] = (str(value), super()._get_params_preserve(failobj, header))
        return list(kept[1])  # a copy: `get_params(unquote=False)` hands the list to its caller


class _ReadingPolicy(EmailPolicy):
    """`policy.default`, but for a part's MIME headers (`_MIME_HEADERS`): each value is read once a
    mail, as text (`_MimeHeaders`), and one over `_MAX_MIME_HEADER` characters is malformed
    (`_MALFORMED`). Its parts are `_ReadingMessage`s: their parameters are split once too. One for
    each mail read (`_policy`): it keeps that mail's MIME headers."""

    message_factory = _ReadingMessage
    mime_headers: _MimeHeaders | None = None

    def header_fetch_parse(self, name: str, value: str) -> Any:
        kind = name.lower()
        if kind not in _MIME_HEADERS or hasattr(value, "name") or self.mime_headers is None:
            return super().header_fetch_parse(name, value)
        if len(value) > _MAX_MIME_HEADER:
            value = _MALFORMED[kind]
        return self.mime_headers.text(name, value)


def _policy() -> _ReadingPolicy:
    """How a mail is parsed here: a policy of its own, for its MIME headers."""
    return _ReadingPolicy(mime_headers=_MimeHeaders())


@dataclass(frozen=True, slots=True)
class Mail:
    """One mail, read. Addresses are addr-specs, lower-cased; text is plain text with "\\n" lines."""

    #: `<id@host>` as in the header (stripped, angle brackets kept); when the mail has none, a stable
    #: one made from a hash of its body and its From, To, Cc, Date and Subject
    #: (`<sha256…@message-id.invalid>`; for `read_headers`, of those headers and the body's size):
    #: the same mail delivered twice (to an alias) has it twice, whatever trace headers differ.
    message_id: str
    #: The `From` addr-spec; '' when there is none or it cannot be read.
    sender: str
    sender_name: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    #: RFC 2047 decoded, whitespace collapsed to single spaces.
    subject: str
    in_reply_to: tuple[str, ...]
    #: Oldest first, as in the header (at most MAX_REFERENCES, the newest).
    references: tuple[str, ...]
    date: datetime | None
    #: What the sender wrote. For a reply (`is_reply`), only what is new: quoted history and
    #: signature cut; a reply with nothing new is '' when it carries files (they go on alone), else
    #: its whole text (nothing a person sent is ever dropped for looking like history). A new mail
    #: and a forward are kept whole but for a signature at the end, under "-- " or from a "Sent
    #: from my …" line ('' when that is all there is): only a reply has history.
    #: '' for a mail read by `read_headers`.
    text: str
    #: The whole body as text, before the cut.
    full_text: str
    #: Why this mail must never be answered ("auto-submitted", "bounce", "own address" …), else None.
    automatic: str | None
    #: With an authserv-id configured: did that server's topmost verdict say dmarc=pass; else None.
    authenticated: bool | None
    attachments: tuple[Attachment, ...]
    #: The size of the whole message in bytes (as the channel gave it, for `read_headers`).
    size: int | None = None
    #: Read by `read_headers`: the message was too large to fetch, its body was never read.
    too_large: bool = False


def read_mail(
    raw: bytes,
    *,
    own_addresses: Collection[str] = (),
    authserv_id: str | None = None,
    max_attachment_bytes: int = 25 * 2**20,
) -> Mail:
    """Read a whole raw message (RFC 5322 bytes, as IMAP `BODY.PEEK[]` gives them). Never raises."""
    try:
        message = email.message_from_bytes(raw, policy=_policy())
        full_text = body_text(message)
        files = files_of(message, max_attachment_bytes)
    except Exception:  # the parser itself gave up (it recurses into nested parts): headers and raw text
        log.info("a mail's MIME structure could not be parsed; read as headers and text", exc_info=True)
        message = _header_block(raw)
        full_text = clean(decode(_body_bytes(raw), None))
        files = ()
    return _mail(
        message,
        digest=_digest(message, _body_bytes(raw)),
        size=len(raw),
        full_text=full_text,
        files=files,
        own_addresses=own_addresses,
        authserv_id=authserv_id,
        too_large=False,
    )


def read_headers(
    raw_headers: bytes,
    *,
    size: int | None = None,
    own_addresses: Collection[str] = (),
    authserv_id: str | None = None,
) -> Mail:
    """Read a message too large to fetch whole from its header block alone (IMAP
    `BODY.PEEK[HEADER]`) and its `size`: everything but the text and the files. Never raises."""
    message = _header_block(raw_headers)
    body_size = None if size is None else size - len(raw_headers)
    return _mail(
        message,
        digest=_digest(message, f"too large: {body_size}".encode()),
        size=size,
        full_text="",
        files=(),
        own_addresses=own_addresses,
        authserv_id=authserv_id,
        too_large=True,
    )


def read_text_parts(
    raw_headers: bytes,
    body: bytes,
    *,
    size: int,
    carries_files: bool,
    own_addresses: Collection[str] = (),
    authserv_id: str | None = None,
) -> Mail:
    """Read a message too large to fetch whole from its header block and its text parts alone
    (`body`: a MIME body of them, `structure.text_only_body`): everything but the files, which
    the caller names from its structure (`carries_files`: it names some). Never raises."""
    message = _header_block(raw_headers)
    try:
        full_text = body_text(email.message_from_bytes(body, policy=_policy()))
    except Exception:  # as for a whole mail (`read_mail`): its raw text is what there is
        log.info("the text parts of a mail too large to fetch could not be parsed", exc_info=True)
        full_text = clean(decode(_body_bytes(body), None))
    return _mail(
        message,
        digest=_digest(message, f"too large: {size - len(raw_headers)}".encode()),
        size=size,
        full_text=full_text,
        files=(),
        carries_files=carries_files,
        own_addresses=own_addresses,
        authserv_id=authserv_id,
        too_large=False,
    )


def _body_bytes(raw: bytes) -> bytes:
    """What follows the header block of a raw message (b'' if there is no blank line)."""
    found = re.search(rb"\r?\n\r?\n", raw)
    return raw[found.end() :] if found else b""


def _digest(message: Message, body: bytes) -> str:
    """A hash of what a mail is, not of how it was delivered: `body` and the stable headers."""
    digest = hashlib.sha256()
    for name in _STABLE_HEADERS:
        for value in _raw(message, name):
            digest.update(f"{name}: {value}\n".encode("utf-8", "surrogatepass"))
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


def is_reply(subject: str, in_reply_to: tuple[str, ...], references: tuple[str, ...]) -> bool:
    """Does a mail answer another, so that it may quote it? It names the mail it answers
    (`In-Reply-To`, `References`), or its subject says so ("Re:" as clients localise it, for a
    client or a gateway that loses the headers)."""
    return bool(in_reply_to or references) or _REPLY.match(subject) is not None


def is_forward(subject: str) -> bool:
    """Does a mail's subject say that it forwards another ("Fwd:", "FW:", "Enc:", "Reenc:")? Its
    text is then what the sender wants read, not history; its subject the forwarded mail's."""
    return _FORWARD.match(subject) is not None


def _header_block(raw: bytes) -> Message:
    try:
        return email.parser.BytesHeaderParser(policy=_policy()).parsebytes(raw)
    except Exception:  # not known to happen; a mail with no headers is still a mail
        log.info("a mail's header block could not be parsed", exc_info=True)
        return Message(policy=_policy())


def _mail(
    message: Message,
    *,
    digest: str,
    size: int | None,
    full_text: str,
    files: tuple[Attachment, ...],
    own_addresses: Collection[str],
    authserv_id: str | None,
    too_large: bool,
    carries_files: bool = False,
) -> Mail:
    senders = _addresses(message, "From")
    sender_name, sender = senders[0] if senders else (None, "")
    full_text = full_text.strip("\n")
    subject = _one_line(_header(message, "Subject") or "")
    in_reply_to = _message_ids(_header(message, "In-Reply-To"))
    references = _message_ids(_header(message, "References"))[-MAX_REFERENCES:]
    reply = is_reply(subject, in_reply_to, references) and not is_forward(subject)
    text = "" if too_large else _new_text(full_text, reply=reply, files=bool(files) or carries_files)
    own_ids = _message_ids(_header(message, "Message-ID"))
    return Mail(
        message_id=own_ids[0] if own_ids else f"<{digest[:40]}@message-id.invalid>",
        sender=sender,
        sender_name=sender_name,
        to=tuple(address for _, address in _addresses(message, "To") if address),
        cc=tuple(address for _, address in _addresses(message, "Cc") if address),
        subject=subject,
        in_reply_to=in_reply_to,
        references=references,
        date=_date(_header(message, "Date")),
        text=text.strip("\n"),
        full_text=full_text,
        automatic=automatic_reason(
            lambda name: _header(message, name),
            sender=sender,
            content_type=_content_type(message),
            own_addresses=own_addresses,
        ),
        authenticated=None
        if authserv_id is None
        # The raw values, not decoded (RFC 2047) nor cleaned of control characters: the trusted
        # server removes the headers that carry its id as written (RFC 8601 §5), so one that only
        # decodes to it (`=?us-ascii?q?mx.example.com?=`, an id with a control character inside)
        # was left in place, and must not be read as the server's own.
        else dmarc_passed(_raw(message, "Authentication-Results"), authserv_id, sender.rpartition("@")[2] or None),
        attachments=files,
        size=size,
        too_large=too_large,
    )


def _new_text(full_text: str, *, reply: bool, files: bool) -> str:
    """What the sender wrote (see `Mail.text`). Only a reply is cut: a new mail has no history and
    loses only a signature at its end (`quoting.without_signature`); what looks like history
    there (a pasted log under a rule of dashes, a pasted mail's "From:" lines, "the script
    wrote:") is the customer's; a forward's quoted message is what they want the desk to read. A reply with nothing new keeps its whole text unless it carries files (a
    photo sent from a phone, whose only text is "Sent from my iPhone" over the history): the
    history would then be passed on as the customer's words. A failure of the quoting library
    keeps the whole text rather than lose the mail."""
    if not reply:
        # Lines without trailing blanks, as a cut reply's are.
        return "\n".join(line.rstrip() for line in without_signature(full_text).split("\n"))
    try:
        new = new_part(full_text)
    except Exception:
        log.warning("the new part of a mail could not be told from its history; keeping all of it", exc_info=True)
        return full_text
    if new is None:
        return "" if files else full_text
    return new


def _header(message: Message, name: str) -> str | None:
    """The text of `message`'s first header `name` (RFC 2047 decoded), or None. Never raises: where
    the standard library cannot parse the value, its raw text is given."""
    values = _values(message, name, first=True)
    return values[0] if values else None


def _all(message: Message, name: str) -> list[str]:
    """The text of every header `name`, top first."""
    return _values(message, name, first=False)


#: Address headers longer than this are read by the older, lenient parser (`email.utils`): the
#: standard library's structured parser takes time quadratic in a run of quotes (`"` × 40,000 in a
#: From: a minute), and the mail's reading holds the channel's receive thread (bench/fuzz.py found it).
#: A real header this long is a Cc of a hundred people, which the lenient parser reads as well.
_LENIENT_OVER = 2048
_ADDRESS_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "sender", "resent-from", "resent-to", "resent-cc", "resent-sender"}
)


def _values(message: Message, name: str, *, first: bool) -> list[str]:
    found = []
    for raw in _raw(message, name):
        if name.lower() in _ADDRESS_HEADERS and len(raw) > _LENIENT_OVER:
            found.append(clean(raw))  # its raw text: see _LENIENT_OVER
            if first:
                break
            continue
        try:
            # RFC 2047 words labelled Latin-1 are Windows-1252 as often as bodies are (`bodies.decode`).
            found.append(clean(c1_as_windows_1252(str(policy.default.header_factory(name, raw)))))
        except Exception:  # the parser trips on some malformed values: their raw text is what there is
            found.append(clean(raw))
        if first:
            break
    return found


def _raw(message: Message, name: str) -> list[str]:
    """The raw values of the headers `name`, unfolded, raw 8-bit bytes decoded (see `_readable`).

    `raw_items` gives the values as they came, before the policy parses them: the one place where
    raw 8-bit bytes can still be told apart (the parsed value has replaced them with U+FFFD)."""
    try:
        items = list(message.raw_items())
    except Exception:
        return []
    return ["".join(_readable(str(value)).splitlines()) for key, value in items if key.lower() == name.lower()]


def _readable(value: str) -> str:
    """Text for a header value that may hold raw 8-bit bytes (RFC 6532 UTF-8, or a legacy charset),
    which the parser keeps as surrogates: decoded as UTF-8, else a fallback (see `bodies.decode`)."""
    if _UNDECODED.search(value):
        try:
            return decode(value.encode("utf-8", "surrogateescape"), "utf-8")
        except UnicodeError:
            return _UNDECODED.sub("\ufffd", value)
    return value


def _addresses(message: Message, name: str) -> list[tuple[str | None, str]]:
    """(display name or None, addr-spec lower-cased or '') of each address in the first header `name`."""
    raw = _raw(message, name)[:1]
    found: list[tuple[str, str]] = []
    try:
        if raw and len(raw[0]) > _LENIENT_OVER:
            found = email.utils.getaddresses(raw)  # linear where the structured parser is not (_LENIENT_OVER)
        elif raw:
            found = [
                (str(a.display_name), str(a.addr_spec)) for a in policy.default.header_factory(name, raw[0]).addresses
            ]
    except Exception:  # the parser trips on some malformed lists: the older, lenient one reads the raw text
        try:
            found = email.utils.getaddresses(raw)
        except Exception:
            found = []
    return [(_name(display) or None, _address(spec)) for display, spec in found]


def _address(spec: str) -> str:
    spec = clean(spec).strip().lower()
    return spec if _ADDR_SPEC.fullmatch(spec) else ""


def _name(display: str) -> str:
    return _one_line(clean(c1_as_windows_1252(display))).strip("\"' ")


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _message_ids(value: str | None) -> tuple[str, ...]:
    """The message ids in a `Message-ID`, `In-Reply-To` or `References` value, each once, in order; a
    lone id written without brackets gets them."""
    if not value:
        return ()
    ids = _MSG_ID.findall(value)
    if not ids:
        words = value.split()
        ids = [f"<{words[0].strip('<>')}>"] if len(words) == 1 and words[0].strip("<>") else []
    return tuple(dict.fromkeys(ids))


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        date = email.utils.parsedate_to_datetime(value)
    except Exception:  # absent, malformed, or out of range
        return None
    return date if date.tzinfo is not None else date.replace(tzinfo=UTC)  # "-0000": UTC, time zone unknown


def _content_type(message: Message) -> str:
    try:
        return message.get_content_type()
    except Exception:
        return "text/plain"
