"""A mail's body as text: the part to read chosen, its bytes decoded whatever the charset claims.

Charsets in the wild lie: a body declared UTF-8 holds Latin-1 bytes, a
declared name is unknown ("x-user-defined", "utf8mb4"), an 8-bit body has no
charset at all, base64 is broken. The standard library's `get_content` raises
on an unknown charset, so the bytes are decoded here, never raising: the
declared charset when it decodes them strictly, else UTF-8, else Windows-1252,
which decodes anything (`windows_1252`). Mail labelled ISO-8859-1 or US-ASCII
is read as Windows-1252, as browsers do (WHATWG Encoding Standard): Windows
mailers write "€", curly quotes and dashes in its bytes 0x80-0x9F, where
Latin-1 has control characters nobody writes. One lie is caught the other way
round: bytes declared Latin-1 (or ASCII) that are valid UTF-8 with non-ASCII
in them are UTF-8, since Latin-1 text almost never forms valid UTF-8
sequences.

The body is every inline text part, in order (Apple Mail puts a picture
between two text parts: the text after it is the customer's too). Of the
versions of a `multipart/alternative`, `text/plain` is preferred; an HTML-only
mail (phones, Outlook) is converted with the shared HTML parser
(`adapters.html_text`), and so is a plain part left empty beside an HTML one;
only the first MiB (`MAX_HTML`) and 50,000 tags (`MAX_HTML_TAGS`) of a mail's
HTML are read, as of every channel's (`adapters.html_text.bounded`). Of a
`multipart/related`, its first part (the others are what it shows). A part
with a file name, or marked `attachment`, is a file (`attachments`), never
the body, whatever its type. `format=flowed` (RFC 3676, Thunderbird) is
unwrapped into the lines the sender typed. Outlook writes an inline picture
into its plain text as a placeholder, `[cid:image001.png@01DB…]`, on every mail
that has a logo in its signature: no words of the sender's, and the picture is
a file of the mail (`attachments`); it is taken out, with a line it leaves empty.
"""

from __future__ import annotations

import codecs
import re
from email.message import Message

from adapters.html_text import MAX_HTML, MAX_HTML_TAGS, bounded, html_to_text

from .attachments import is_file

#: Codecs Python has that are no text charset a mail may claim: they would turn escapes in the body
#: into other characters, or are no charset at all.
_NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
#: Claimed charsets (Python's codec names) whose bytes are taken for UTF-8 when they decode as such.
_WEAK = {"ascii", "iso8859-1", "iso8859-15", "cp1252"}
#: Claimed charsets read as Windows-1252 (WHATWG: the labels "us-ascii", "iso-8859-1", "latin1" …).
_AS_WINDOWS_1252 = {"ascii", "iso8859-1", "cp1252"}
#: U+0080-U+009F (what Latin-1 makes of Windows-1252's bytes 0x80-0x9F) as Windows-1252 reads
#: them; the five bytes it leaves undefined stay as they are, as WHATWG keeps them.
_C1_AS_WINDOWS_1252 = {
    code: bytes([code]).decode("cp1252") for code in range(0x80, 0xA0) if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}
#: Inline parts read for a body, and multipart levels entered (mail may nest thousands deep).
_MAX_PARTS = 1000
_MAX_DEPTH = 50
#: Control characters other than line breaks and tabs: never part of what a person wrote.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufeff]")
#: Where Outlook's plain text shows an inline picture: its Content-ID (RFC 2392) in brackets.
#: With the blanks before it (or after it, at the start of a line), so that words around it keep one space;
#: a run of blanks is entered at its first only (the look-behind), so a long one is read once, not once a blank.
_PICTURE_PLACEHOLDER = re.compile(
    r"^[ \t]*\[cid:[^\[\]\s]{1,300}\][ \t]*|(?<![ \t])[ \t]*\[cid:[^\[\]\s]{1,300}\]", re.IGNORECASE
)
_PICTURE_MARK = re.compile(r"\[cid:", re.IGNORECASE)


def decode(data: bytes, charset: str | None) -> str:
    """`data` as text, trying the declared `charset` first; never raises."""
    name = _codec(charset)
    if name is not None and not (name in _WEAK and not data.isascii() and _decodes(data, "utf-8")):
        if name in _AS_WINDOWS_1252:
            return windows_1252(data)
        try:
            return data.decode(name)
        except (UnicodeError, LookupError, ValueError):  # ValueError: a codec refusing its input
            pass
    if _decodes(data, "utf-8"):
        return data.decode("utf-8")
    return windows_1252(data)


def windows_1252(data: bytes) -> str:
    """`data` as WHATWG's windows-1252 decoder reads it: never raises (an undefined byte is the
    control character of its value)."""
    return c1_as_windows_1252(data.decode("latin-1"))


def c1_as_windows_1252(text: str) -> str:
    """`text` with the control characters U+0080-U+009F as the Windows-1252 characters of those
    bytes: what text labelled Latin-1 but written in Windows-1252 meant ("€", "“", "–"). For text
    the standard library decoded (RFC 2047 headers): no person writes those controls."""
    return text.translate(_C1_AS_WINDOWS_1252)


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
    """The text a person reads in `message`: its inline text parts in order (see the module
    docstring), joined by a blank line; '' if none."""
    texts = _Body().texts(message, 0)
    if len(texts) == 1:
        return texts[0]
    return "\n\n".join(text.strip("\n") for text in texts)


class _Body:
    """One walk over a message's parts (depth and count bounded; HTML read up to MAX_HTML and
    MAX_HTML_TAGS in all)."""

    def __init__(self) -> None:
        self.parts = 0
        self.html_left = MAX_HTML
        self.tags_left = MAX_HTML_TAGS

    def texts(self, part: Message, depth: int) -> list[str]:
        """The non-blank texts of `part` a person reads, in order."""
        self.parts += 1
        if self.parts > _MAX_PARTS:
            return []
        content_type = part.get_content_type()
        if content_type.startswith("multipart/") and part.is_multipart():
            children = [child for child in part.get_payload() if isinstance(child, Message)]
            if depth >= _MAX_DEPTH or not children:
                return []
            if content_type == "multipart/alternative":
                return self._alternative(children, depth + 1)
            if content_type == "multipart/related":
                children = children[:1]  # the root; the rest are the pictures it shows
            return [text for child in children for text in self.texts(child, depth + 1)]
        if content_type not in ("text/plain", "text/html") or is_file(part, content_type):
            return []
        text = part_text(part) if content_type == "text/plain" else self._html(part)
        return [text] if text.strip() else []

    def _alternative(self, children: list[Message], depth: int) -> list[str]:
        """A plain text version if one has text, else the last (richest, RFC 2046) that has any."""
        for child in children:
            if child.get_content_type() == "text/plain" and (texts := self.texts(child, depth)):
                return texts
        for child in reversed(children):
            if child.get_content_type() != "text/plain" and (texts := self.texts(child, depth)):
                return texts
        return []

    def _html(self, part: Message) -> str:
        if self.html_left <= 0 or self.tags_left <= 0:
            return ""
        html = bounded(_decoded(part), self.html_left, self.tags_left)
        self.html_left -= len(html)
        self.tags_left -= html.count("<")
        return clean(html_to_text(html))


def part_text(part: Message) -> str:
    """A text/plain part's text, unwrapped when `format=flowed`."""
    text = clean(_decoded(part))
    if str(part.get_param("format", "", header="content-type")).lower() == "flowed":
        delsp = str(part.get_param("delsp", "", header="content-type")).lower() == "yes"
        text = unflow(text, delsp=delsp)
    return without_picture_placeholders(text)


def without_picture_placeholders(text: str) -> str:
    """`text` without Outlook's `[cid:…]` placeholders of inline pictures; a line that held nothing
    else (but quote marks) is taken out, and a blank line around it with it, so that no gap is left."""
    if _PICTURE_MARK.search(text) is None:
        return text
    kept: list[str] = []
    gap = False  # a placeholder line was just taken out after a blank line
    for line in text.split("\n"):
        if _PICTURE_PLACEHOLDER.search(line):
            line = _PICTURE_PLACEHOLDER.sub("", line).rstrip()
            if not line.strip(" >"):
                gap = gap or not kept or not kept[-1].strip(" >")
                continue
        if gap and not line.strip(" >"):
            continue
        gap = False
        kept.append(line)
    return "\n".join(kept)


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
