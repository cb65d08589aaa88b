"""A mail's body as text: the part to read chosen, its bytes decoded whatever the charset claims.

Charsets in the wild lie: a body declared UTF-8 holds Latin-1 bytes, a
declared name is unknown ("x-user-defined", "utf8mb4"), an 8-bit body has no
charset at all, base64 is broken. The standard library's `get_content` raises
on an unknown charset, so the bytes are decoded here, never raising: the
declared charset when it decodes them strictly, else UTF-8, else Windows-1252
(what "Latin-1" means in practice), else Latin-1, which decodes anything.
One lie is caught the other way round: bytes declared Latin-1 (or ASCII) that
are valid UTF-8 with non-ASCII in them are UTF-8, since Latin-1 text almost
never forms valid UTF-8 sequences.

`text/plain` is preferred; an HTML-only mail (phones, Outlook) is converted
with the shared HTML parser (`adapters.html_text`), and so is a plain part
left empty beside an HTML one; only its first MiB (`MAX_HTML`) is read. `format=flowed` (RFC 3676, Thunderbird) is
unwrapped into the lines the sender typed.
"""

from __future__ import annotations

import codecs
import logging
import re
from email.message import EmailMessage, Message

from adapters.html_text import html_to_text

log = logging.getLogger("deskbot.adapters.email")

#: Characters of an HTML body converted to text (under a second and about 60 MB at worst, nested
#: tags or quotes; a person's mail is far smaller, and the text of a larger one is in its first MiB).
MAX_HTML = 2**20
#: Codecs Python has that are no text charset a mail may claim: they would turn escapes in the body
#: into other characters, or are no charset at all.
_NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
#: Claimed charsets (Python's codec names) whose bytes are taken for UTF-8 when they decode as such.
_WEAK = {"ascii", "iso8859-1", "iso8859-15", "cp1252"}
#: Control characters other than line breaks and tabs: never part of what a person wrote.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufeff]")


def decode(data: bytes, charset: str | None) -> str:
    """`data` as text, trying the declared `charset` first; never raises."""
    name = _codec(charset)
    if name is not None and not (name in _WEAK and not data.isascii() and _decodes(data, "utf-8")):
        try:
            return data.decode(name)
        except (UnicodeError, LookupError, ValueError):  # ValueError: a codec refusing its input
            pass
    for fallback in ("utf-8", "cp1252"):
        if _decodes(data, fallback):
            return data.decode(fallback)
    return data.decode("latin-1")


def _codec(charset: str | None) -> str | None:
    """The Python codec for a declared charset, or None for a missing, unknown or unsafe one."""
    if not charset:
        return None
    try:
        info = codecs.lookup(charset.strip().strip("\"'"))
    except (LookupError, ValueError):  # ValueError: a name with NUL characters
        return None
    if info.name in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeError:
        return False
    return True


def body_text(message: Message) -> str:
    """The text a person reads in `message`: its plain text part, else its HTML converted; '' if none."""
    plain = _first_part(message, "plain")
    if plain is not None:
        text = part_text(plain)
        if text.strip():
            return text
    html = _first_part(message, "html")
    if html is not None:
        return clean(html_to_text(_bounded(_decoded(html))))
    return ""


def _bounded(html: str) -> str:
    """At most MAX_HTML characters of `html`, cut before a tag: the converter's time, and its stack of
    open elements (a mail of nested tags keeps every one open), grow with the markup, and a mail is
    read on the thread that receives every other."""
    if len(html) <= MAX_HTML:
        return html
    log.info("an HTML mail of %d characters: only the first %d are read", len(html), MAX_HTML)
    cut = html.rfind("<", 0, MAX_HTML)
    return html[: cut if cut > 0 else MAX_HTML]


def part_text(part: Message) -> str:
    """A text/plain part's text, unwrapped when `format=flowed`."""
    text = clean(_decoded(part))
    if str(part.get_param("format", "", header="content-type")).lower() == "flowed":
        delsp = str(part.get_param("delsp", "", header="content-type")).lower() == "yes"
        text = unflow(text, delsp=delsp)
    return text


def _first_part(message: Message, subtype: str) -> Message | None:
    """The body part of that text subtype the standard library picks (never an attachment)."""
    if isinstance(message, EmailMessage):
        try:
            return message.get_body(preferencelist=(subtype,))
        except Exception:  # the library trips on some broken structures: look for it by hand
            pass
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}" and part.get_content_disposition() != "attachment":
            return part
    return None


def _decoded(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # bad base64 or quoted-printable is decoded leniently; anything worse reads as nothing
        data = None
    if not isinstance(data, bytes):
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode(data, charset)


def clean(text: str) -> str:
    """Line breaks as "\\n"; control characters, lone surrogates and byte-order marks (iPhone quotes
    start with one) dropped."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def unflow(text: str, *, delsp: bool = False) -> str:
    """RFC 3676: a line ending in a space continues on the next line at the same quote depth (the
    signature separator "-- " excepted); `delsp` removes that space when joining."""
    out: list[str] = []
    joining: str | None = None
    joining_depth = 0
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):  # space-stuffing
            content = content[1:]
        if joining is not None and depth == joining_depth:
            content = joining + content
        elif joining is not None:
            out.append(">" * joining_depth + (" " if joining_depth else "") + joining)
        joining = None
        if content.endswith(" ") and content != "-- ":
            joining, joining_depth = (content[:-1] if delsp else content), depth
            continue
        out.append(">" * depth + (" " if depth else "") + content)
    if joining is not None:
        out.append(">" * joining_depth + (" " if joining_depth else "") + joining)
    return "\n".join(out)
