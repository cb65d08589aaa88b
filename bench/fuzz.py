"""Fuzz every place hostile text meets the bot: 100,000 inputs a target, counts of what went wrong.

    PYTHONPATH=. .venv/bin/python bench/fuzz.py [--inputs N] [--seed S] [--limit SECONDS] [--only T] [--json]

Targets:
* router   — a message from a random kind of sender (customer, stranger, engineer, in a case
             topic or not, public mention) through the real intake and router on SQLite; an
             error is a handler failure (the apology path) or an exception out of intake; every
             reply is then composed for Mastodon and checked for third-party mentions.
* html     — `adapters.html_text.html_to_text` on random, often deeply nested HTML.
* relay    — `adapters.zulip.compose.compose` on texts of backtick and tilde runs up to 20,000
             characters; an error is a part over the limit, customer text outside the fence
             (Zulip's rule or CommonMark's), or more parts than the text needs.
* mastodon — `adapters.mastodon.invariants.reply_violations` (the composer's promises,
             third-party mentions by Mastodon's own rule among them).
* email    — a raw mail (`random_mail`: the shapes Gmail, Outlook and Apple Mail write, and broken
             ones: boundaries, charsets, transfer encodings, encoded words, folding, NUL, bare CR,
             deep nesting, hostile headers) through `read_mail`, `read_headers` and
             `read_text_parts` as `receive` calls them, then `mail_to_inbound`; an error is an
             exception out of any of them or a `Mail` that breaks what `reading` promises
             (`mail_problems`). The time limit holds for each reader's call.

Each input runs under a time limit (`--limit`, default 2 s, enforced with SIGALRM); one that
exceeds it counts as hung. Inputs are drawn from a seeded generator: a run can be repeated.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import hashlib
import io
import json
import quopri
import random
import re
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.console import ENGINEER, ConsoleChannel, console_line
from adapters.download import NAME_LENGTH
from adapters.email.attachments import MAX_FILES
from adapters.email.inbound import mail_to_inbound
from adapters.email.reading import MAX_REFERENCES, Mail, is_reply, read_headers, read_mail, read_text_parts
from adapters.email.receive import whole_message_bound
from adapters.email.structure import listed_files, oversized, text_only_body, text_sections
from adapters.html_text import html_to_text
from adapters.mastodon.invariants import reply_violations
from adapters.zulip.compose import compose
from tests.fuzz.inputs import NASTY, WORDS
from tests.zulip.relay_check import assert_commonmark_inert, parse_relayed, unguard


class Hung(Exception):
    pass


def _alarm(_signum, _frame):  # noqa: ANN001
    raise Hung


@dataclasses.dataclass
class Tally:
    target: str
    inputs: int = 0
    errors: int = 0
    hung: int = 0
    third_party_mentions: int = 0
    seconds: float = 0.0
    examples: list[str] = dataclasses.field(default_factory=list)

    def note(self, what: str, sample: object) -> None:
        if len(self.examples) < 3:
            self.examples.append(f"{what}: {sample!r}"[:300])


# -- input generators -------------------------------------------------------------------------


def random_text(rng: random.Random, size: int = 200) -> str:
    pieces = []
    for _ in range(rng.randint(0, 12)):
        kind = rng.random()
        if kind < 0.35:
            pieces.append(rng.choice(NASTY))
        elif kind < 0.55:
            pieces.append(rng.choice(WORDS) + " ")
        elif kind < 0.8:
            pieces.append(
                "".join(
                    chr(rng.choice([rng.randint(32, 126), rng.randint(0, 0x2FFFF)])) for _ in range(rng.randint(1, 20))
                )
            )
        else:
            pieces.append(rng.choice("`~ x@\n") * rng.randint(1, 50))
    return "".join(pieces)[: size * 4]


def random_html(rng: random.Random) -> str:
    tags = ["p", "span", "a", "br", "blockquote", "div", "b", "i", "ul", "li", "pre", "code", "h1", "x-custom"]
    # Mostly shallow, as real statuses are; one in fifty nested deep enough to break a recursive walk.
    depth = rng.choice([1, 3, 10, 50]) if rng.random() < 0.98 else rng.choice([1_000, 3_000])
    out, stack = [], []
    for _ in range(depth):
        tag = rng.choice(tags)
        attrs = rng.choice(
            ["", ' class="mention u-url"', ' href="https://x.example/@bob"', ' class="invisible"', " data-x='\"<>'"]
        )
        out.append(f"<{tag}{attrs}>")
        stack.append(tag)
        if rng.random() < 0.3:
            out.append(random_text(rng, 30).replace("<", "&lt;"))
        if rng.random() < 0.1 and stack:
            out.append(f"</{stack.pop()}>")
    if rng.random() < 0.7:
        out.extend(f"</{t}>" for t in reversed(stack))
    return "".join(out)


def random_runs(rng: random.Random) -> str:
    parts = []
    total = 0
    while total < rng.choice([100, 2_000, 10_000, 20_000]):
        run = rng.choice(["`", "~", "x", " ", "\n", "\u3000", "@**all**"]) * rng.randint(1, 5_000)
        parts.append(run)
        total += len(run)
    return "".join(parts)[:20_000]


# -- raw mail ---------------------------------------------------------------------------------

SUPPORT = "support@example.com"
ALIAS = "help@example.com"
AUTHSERV = "mx.example.com"

_ADDRESSES = [
    "Maria Lopes <maria.lopes.dev@gmail.com>", '"Novak, Petr" <P.Novak@fabrikam.example>', "ana@acme.pt",
    "=?UTF-8?B?Sm/Do28gU2lsdmE=?= <joao@empresa.pt>", "=?iso-8859-1?q?Jo=E3o?= <joao@empresa.pt>",
    "José Ñandú <josé@exämple.pt>", "MAILER-DAEMON (Mail Delivery System)", "<>", "", "postmaster@x.example",
    "undisclosed-recipients:;", "team: a@b.example, c@d.example;", "a@b@c", '"unclosed <x@y.example>',
    "<@route.example:a@b.example>", "x@y.example (comment (nested)", "=?utf-8?q?broken <a@b.example>",
    SUPPORT, "Help Desk <HELP@Example.com>", "a@b.example, c@d.example,, ,e@f", "<a@b.example", "@", "a.b@",
    '"\\"@x.example', "a" * 1200 + "@x.example", "Ana <ana@acme.pt> <other@acme.pt>", "ana@[127.0.0.1]",
    "=?UTF-8?Q?Ana_=22Lima=22?= <ana@acme.pt>", '"=?UTF-8?B?QW5h?=" <ana@acme.pt>', "ana@acme.pt (Ana)",
]  # fmt: skip
_SUBJECTS = [
    "Re: [#12] Backups stopped after the upgrade", "RE: AW: Fwd: Printer on fire", "Fwd: Re: licence",
    "[EXTERNAL] RE: [#3] VPN", "Re[2]: x", "Enc: Res: cópia", "Printer on fire", "", "[#", "[#99999999999999999999]",
    "=?UTF-8?B?UmU6IFsjMTJdIEPDs3BpYQ==?=", "=?UTF-8?Q?=C3?= =?UTF-8?Q?=A9?=", "=?x-unknown?Q?abc?=",
    "=?utf-7?Q?+AKM-1?=", "=?iso-8859-1?q?=80=93?=", "=?UTF-8?B?!!!?=", "=?UTF-8?Q?" + "=C3" * 50 + "?=",
    "=?utf-8*pt?q?Ol=C3=A1?=", "=??Q?x?=", "=?utf-8?X?abc?=", "=?utf-8?b?", "=?utf-8?q?a?==?utf-8?q?b?=",
    "=?utf-16?b?2D3eAA==?=", "=?utf-7?B?K2RnQS0=?=", "Re: =?UTF-8?B?w6k=?= [#5]", "=?UTF-8?B?" + "QUFB" * 400 + "?=",
]  # fmt: skip
_DATES = [
    "Thu, 3 Dec 2026 11:41:52 +0000", "Thu, 3 Dec 2026 11:41:52 -0000", "3 Dec 2026 11:41", "",
    "Thu, 32 Dec 2026 25:61:61 +9999", "yesterday", "Mon, 1 Jan 0000 00:00:00 +0000", "Fri, 31 Dec 9999 23:59:59 -2359",
    "Sat, 1 Jan 10000 00:00:00 +0000", "99999999999999999999", "Thu, 3 Dec 2026 11:41:52 +0000 (UTC) (extra)",
    "2026-12-03T11:41:52Z", "٣ Dec 2026 11:41:52 +0000", "Thu, 3 Dec 26 11:41:52 EST", "Thu, 3 Dec 2026 11:41:52 +2400",
    "Thu, 3 Foo 2026 11:41:52 +0000", "Thu, 3 Dec 2026 11:41:52 UT", "Thu,  3 Dec -1 11:41:52 +0000", "0", ",,,",
]  # fmt: skip
_IDS = [
    "<CAF=k2xPq7vN0bH1e+Yw3Tq9uR5s@mail.gmail.com>", "<0F2A91C3B7D4E5F6@EXCH01.fabrikam.example>",
    "<outbox-41.1796380800@example.com>", "abc@x.example", "<>", "<<<>>>", "<a b@c>", "", "<a@b> garbage <c@d>",
    "<" + "a" * 5000 + "@x>", "(comment) <a@b>", "<a@b>,<c@d>", "a@b c@d", "<\x00@x>", "<é@ü.example>", "<",
    "<a@b", "a@b>", "<a<b@c>", "<a@b><a@b><a@b>",
]  # fmt: skip
_AUTH_RESULTS = [
    "mx.example.com; dkim=pass header.d=gmail.com; dmarc=pass header.from=gmail.com; spf=pass smtp.mailfrom=a@gmail.com",
    "mx.example.com; dmarc=fail (p=reject) header.from=acme.pt", "mx.example.com; dkim=pass header.d=acme.pt",
    "mx.example.com; none", "mx.example.com", "(comment) mx.example.com; dmarc=pass", "mx.example.com;;;;",
    "mx.example.com; dmarc=pass (p=none dis=none", "mx.example.com; spf=pass smtp.mailfrom=@", "mx.example.com; dmarc=",
    "mx.example.com; dmarc=pass policy.=x", "mx.example.com 1; dmarc=pass", "; dmarc=pass", "mx.example.com; =pass",
    "mx.example.com; dkim=pass header.d=" + "a." * 500, "mx.example.com; dmarc=pass; dmarc=fail",
    "MX.EXAMPLE.COM; DMARC=PASS", "mx.example.com; dkim=pass (\\) header.d=x", "mx.example.com; dkim=pass header.d=\"x",
    "mx.example.com; arc=pass; dmarc=pass (((", "mx.example.com; spf=pass smtp.mailfrom=acme.pt.", "evil.example; dmarc=pass",
    "=?us-ascii?q?mx.example.com?=; dmarc=pass", "mx.example.com.; dmarc=pass", "\"mx.example.com\"; dmarc=pass",
]  # fmt: skip
_ROBOT_HEADERS = [
    "Auto-Submitted: auto-replied", "Auto-Submitted: auto-generated; owner-email=x@y.example", "Precedence: bulk",
    "Precedence: list", "List-Id: <news.example.com>", "List-Unsubscribe: <mailto:u@news.example>", "Return-Path: <>",
    "X-Autoreply: yes", "X-Autorespond: yes", "Content-Type: multipart/report; report-type=delivery-status",
]  # fmt: skip
_HISTORY = [
    "On Thu, Dec 3, 2026 at 10:00\u202fAM Deskbot Support <support@example.com> wrote:\n\n> {old}\n>\n> Deskbot Support\n",
    "On Thu, Dec 3, 2026 at 10:00 AM Deskbot Support <support@example.co\nm>\nwrote:\n\n> {old}\n",
    "-----Original Message-----\nFrom: Deskbot Support <support@example.com> \nSent: Friday, December 4, 2026 5:30 PM\n"
    "To: Novak, Petr <P.Novak@fabrikam.example>\nSubject: Re: [#21] License key rejected\n\n{old}\n",
    "________________________________\nFrom: Deskbot Support <support@example.com>\nSent: Friday, December 4, 2026 17:30\n"
    "To: Ana\nSubject: RE: x\n\n{old}\n",
    "> On 3 Dec 2026, at 10:00, Deskbot Support <support@example.com> wrote:\n> \n> {old}\n",
    "Em qui., 3 de dez. de 2026 às 10:00, Suporte <support@example.com> escreveu:\n\n> {old}\n",
    "A 03/12/2026, às 10:00, Suporte <support@example.com> escreveu:\n\n> {old}\n",
    "Às 10:00 de 03/12/2026, Suporte escreveu:\n> {old}\n",
    "Suporte <support@example.com> escreveu (terça, 3/12/2026 à(s) 10:00):\n\n> {old}\n",
    "De: Suporte <support@example.com>\nEnviado: sexta-feira, 4 de dezembro de 2026 17:30\nPara: Ana\nAssunto: RE: x\n\n{old}\n",
    "-----Mensagem original-----\nDe: Suporte\nData: 4/12/2026\nPara: Ana\nAssunto: x\n\n{old}\n",
    "---------- Forwarded message ---------\nFrom: Someone <s@x.example>\nDate: Thu, Dec 3, 2026\nSubject: x\n"
    "To: <support@example.com>\n\n{old}\n",
    "Begin forwarded message:\n\n> From: x\n> {old}\n",
    "> {old}\n> > {old}\n>>> {old}\n",
]  # fmt: skip
_SIGNATURES = [
    "-- \nAna Lima\n+351 912 345 678", "Sent from my iPhone", "Enviado do meu iPhone", "Thanks,\nMaria",
    "Cumprimentos,\nRui Sousa", "-- ", "--\nx", "Best,\n" + "x" * 200, "_" * 40 + "\nDisclaimer: confidential.",
    "Obter o Outlook para Android", "-" * 40 + "\nBackup report\n" + "-" * 40 + "\nERROR x",
]  # fmt: skip
_CHARSETS = [
    "utf-8", "UTF-8", "iso-8859-1", "us-ascii", "windows-1252", "x-unknown", "utf-7", "utf8mb4", "", '"utf-8"',
    "'utf-8'", "unicode-escape", "rot13", "base64", "idna", "punycode", "undefined", "utf-8\x00", "hz", "utf-16",
    "utf-32", "iso-2022-jp", "cp037", "zlib", "charmap", "utf-8-sig", "shift_jis", "gb18030", "koi8-r", " utf-8 ",
    "x-user-defined", "iso-8859-15", "latin1", "utf_16_be", "raw_unicode_escape", "uu", "hex", "=?utf-8?q?x?=",
]  # fmt: skip
_ENCODINGS = ["utf-8", "utf-8", "cp1252", "latin-1", "utf-16", "utf-7", "shift_jis", "koi8-r", "ascii", "cp037"]
_FILE_NAMES = [
    "report.pdf", "../../etc/passwd", "C:\\Users\\x\\evil.exe", "a" * 500 + ".pdf", "\x00.txt", "name\nwith\nlines.txt",
    "=?UTF-8?B?w6lj.pdf?=", "=?UTF-8?B?w6ljb2xlLnBkZg==?=", "  ", ".", "..", "", "\u202etxt.exe", "con", "%FF%FE",
    "fa\u0301tura.pdf", "\ud800.png", "a/", "\\", "photo.JPG", "=?x-unknown?q?a?=.bin", "file\tname.doc",
]  # fmt: skip
_DISPOSITIONS = [
    'attachment; filename="{name}"', "inline; filename={name}", "attachment", "inline", "", "ATTACHMENT",
    "attachment; filename*=UTF-8''%C3%A9t%C3%A9.pdf", "attachment; filename*=x-unknown''%FF%FE",
    "attachment; filename*0*=utf-8''a%C3; filename*1*=%A9.pdf", "attachment; filename*1=b.pdf",
    "attachment; filename*0=a; filename*0=b", "attachment; filename*=''", 'attachment; filename="unterminated',
    "attachment;;;; filename=", "x-unknown; filename=a.bin", "attachment filename=a.pdf",
    'attachment; filename="a.pdf"; filename="b.exe"', "attachment; filename*=utf-8'en'%E2%82%AC%20rates.pdf",
    "attachment; filename*=utf-8''" + "%FF" * 100, "attachment; filename*=utf-7''+AKM-", "; filename=x",
    "attachment; filename*=utf-8''%", "attachment; filename*0*=x-unknown''%FF; filename*1*=%FE",
]  # fmt: skip
_FILE_TYPES = [
    "application/pdf", "image/png", "image/jpeg", "application/octet-stream", "text/plain", "text/html",
    "text/calendar", "message/delivery-status", "text/rfc822-headers", "application/pkcs7-signature",
    "application/x-unknown", "application", "", "image/", "/", "application/pdf/extra", "TEXT/PLAIN",
]  # fmt: skip
#: Patterns a hostile header may repeat thousands of times (a header, a unit).
_HEAVY = [
    ("From", b'"'), ("From", b"\\"), ("From", b"("), ("From", b"<"), ("From", b"=?utf-8?q?a?= "), ("To", b'"a" '),
    ("Cc", b"a@b.example, "), ("Cc", b"g: a@b;, "), ("Subject", b"=?utf-8?q?a?= "), ("Subject", b"=?utf-8?q?a?="),
    ("Auto-Submitted", b"("), ("References", b"<a@b> "), ("In-Reply-To", b'"'), ("Date", b"("), ("Message-ID", b"<"),
    ("Authentication-Results", b"mx.example.com; dkim=pass header.d=x.example; "), ("Return-Path", b'"'),
    ("Content-Type", b"text/plain; a=b"), ("Content-Type", b"; name*0*=utf-8''%C3"),
]  # fmt: skip
_FILE_BYTES = [
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"\xff\xd8\xff\xe0",
    b"",
    b"PK\x03\x04",
]
_TRANSFER = ["7bit", "8bit", "binary", "base64", "base64", "quoted-printable", "quoted-printable", "x-uuencode",
             "x-gzip", "BASE64 ", "Quoted-Printable", "", "7bit; x=y"]  # fmt: skip


@dataclasses.dataclass
class RawMail:
    """A generated raw mail, with what IMAP says of it when it is too large to fetch whole."""

    raw: bytes
    #: Its BODYSTRUCTURE as imapclient gives it (nested tuples, a multipart's parts in a list first).
    structure: object = None
    #: Section ("1.2") -> `BODY[n.MIME]` + `BODY[n]` of each leaf.
    sections: dict[str, bytes] = dataclasses.field(default_factory=dict)
    #: Its first line is a whole header that no line continues (a header put there is read as written).
    clean_start: bool = False
    #: A header saying "never answer" was put first.
    robot: bool = False
    #: The trusted server's verdict, put first, is dmarc=fail.
    forged: bool = False
    authserv_id: str | None = AUTHSERV
    limit: int = 25 * 2**20


def _hostile(rng: random.Random, value: str, bad: float = 0.12) -> str:
    """`value`, sometimes (`bad`: how often) with a nasty text inside or instead."""
    roll = rng.random()
    if roll < bad * 0.66:
        at = rng.randint(0, len(value))
        return value[:at] + rng.choice(NASTY) + value[at:]
    if roll < bad:
        return random_text(rng, 30)
    return value


def _encoded_words(rng: random.Random) -> str:
    """RFC 2047 encoded words, often malformed: split in a character, mislabelled, unterminated."""
    text = rng.choice([random_text(rng, 20), rng.choice(WORDS), "Re: [#12] Cópia falhou", "João €", rng.choice(NASTY)])
    charset = rng.choice(
        ["UTF-8", "utf-8", "iso-8859-1", "windows-1252", "x-unknown", "utf-7", "utf-16", "", "utf8mb4"]
    )
    try:
        data = text.encode(charset if charset not in ("", "x-unknown", "utf8mb4") else "utf-8", "surrogatepass")
    except (UnicodeError, LookupError):
        data = text.encode("utf-8", "surrogatepass")
    pieces = [data]
    if len(data) > 1 and rng.random() < 0.4:
        cut = rng.randint(1, len(data) - 1)
        pieces = [data[:cut], data[cut:]]
    words = []
    for piece in pieces:
        kind = rng.choice("BbQqX")
        if kind in "Bb":
            payload = base64.b64encode(piece).decode()
            if rng.random() < 0.2:
                payload = payload.rstrip("=") + rng.choice(["!", "", "=", "==="])
        else:
            payload = "".join(chr(b) if chr(b).isalnum() and b < 128 else f"={b:02X}" for b in piece)
            if rng.random() < 0.1:
                payload += rng.choice(["=", "=Z", "?"])
        end = rng.choice(["?=", "?=", "?=", "", "?"])
        words.append(f"=?{charset}?{kind}?{payload}{end}")
    return rng.choice([" ", "", "\n ", "\r\n\t"]).join(words)


def _header_value(rng: random.Random, pool: list[str], plausible: int, bad: float) -> str:
    """A value from `pool` (its first `plausible` ones what clients write), or, as often as `bad`
    says, a hostile one."""
    if rng.random() >= bad:
        return rng.choice(pool[:plausible])
    roll = rng.random()
    if roll < 0.75:
        value = rng.choice(pool)
    elif roll < 0.88:
        value = _encoded_words(rng)
    else:
        value = random_text(rng, 40)
    if rng.random() < 0.03:
        value += " " + "x" * rng.randint(998, 5_000)  # a line over SMTP's 998
    return _hostile(rng, value)


def _header_line(rng: random.Random, name: str, value: str, eol: bytes, bad: float) -> bytes:
    """One header as a mail server would keep it: clean but as often as `bad` says, then folded
    badly, 8-bit, with a bad separator."""
    if rng.random() >= bad:
        line = f"{name}: {' '.join(value.splitlines())}".encode("utf-8", "surrogatepass")
        return line.replace(b" ", eol + b" ", 1) if rng.random() < 0.05 else line
    if rng.random() < 0.7:
        value = value.replace("\r", " ").replace("\n", " ")  # else a line break in the value: a bad fold
    roll = rng.random()
    if roll < 0.85:
        data = value.encode("utf-8", "surrogatepass")  # SMTPUTF8, and CESU surrogates
    elif roll < 0.95:
        data = value.encode("cp1252", "replace")
    else:
        data = value.encode("utf-8", "surrogatepass")
        at = rng.randint(0, len(data))
        data = data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + data[at:]
    line = name.encode("utf-8", "surrogatepass") + rng.choice([b": ", b": ", b":", b" : ", b":\t"]) + data
    roll = rng.random()
    if roll < 0.1:  # folded at spaces, properly
        line = line.replace(b" ", eol + b" ", rng.randint(1, 3))
    elif roll < 0.13:  # folded without the leading whitespace: the rest is no header
        line = line.replace(b" ", eol, 1)
    elif roll < 0.15:  # a continuation of whitespace only
        line += eol + b" " + eol + b"\t"
    elif roll < 0.17:  # folded with a bare CR or LF
        line = line.replace(b" ", rng.choice([b"\r ", b"\n ", b"\r"]), 1)
    return line


def _mail_headers(rng: random.Random, eol: bytes, reply: bool, bad: float) -> list[bytes]:
    """A header block (without the Content-Type of the body), as a receiving server leaves it."""

    def header(name: str, pool: list[str], plausible: int = 1) -> bytes:
        return _header_line(rng, name, _header_value(rng, pool, plausible, bad), eol, bad)

    lines: list[bytes] = []
    if rng.random() < 0.7:
        lines.append(header("Return-Path", ["<maria@gmail.com>", "<>", "", " <> ", "<a@b.example>"]))
    for _ in range(rng.choice([0, 1, 2, 5])):
        lines.append(header("Received", ["from a.example by mx.example.com; Thu, 3 Dec 2026 11:42:07 +0000"]))
    for _ in range(rng.choice([0, 1, 1, 2, 3, 50])):
        lines.append(header("Authentication-Results", _AUTH_RESULTS, 3))
    lines.append(header("From", _ADDRESSES, 5))
    lines.append(header("To", [SUPPORT, f"Deskbot Support <{SUPPORT}>", *_ADDRESSES], 3))
    if rng.random() < 0.3:
        many = ", ".join(f"u{n}@x{n}.example" for n in range(rng.choice([2, 3, 5, 20, 200])))
        lines.append(header("Cc", [many, *_ADDRESSES], 4))
    subjects = _SUBJECTS if not reply else [s for s in _SUBJECTS if s.lower().startswith(("re", "[ext", "=?"))]
    lines.append(header("Subject", subjects, 8 if not reply else 4))
    lines.append(header("Date", _DATES, 2))
    if rng.random() < 0.8:
        lines.append(header("Message-ID", _IDS, 3))
    if reply or rng.random() < 0.1:
        lines.append(header("In-Reply-To", _IDS, 3))
        chain = " ".join(f"<r{n}@example.com>" for n in range(rng.choice([1, 3, 150, 3_000])))
        lines.append(header("References", [chain, *_IDS], 4))
    if rng.random() < 0.9:
        lines.append(header("MIME-Version", ["1.0", "1.0 (Mac OS X Mail 16.0)", "2.0", ""]))
    for name, pool in [
        ("Auto-Submitted", ["no", "auto-replied", "auto-generated; owner-email=a@b", "No", "", "(c) no", "x"]),
        ("Precedence", ["bulk", "junk", "list", "auto_reply", "first-class", "BULK (x)", ""]),
        ("List-Id", ["<list.example.com>", "", "Some List <x.list.example>"]),
        ("List-Unsubscribe", ["<mailto:u@x.example>", "<https://x.example/u>", ""]),
        ("X-Autoreply", ["yes", ""]),
        ("X-Auto-Response-Suppress", ["All", "None", "OOF, DR", ""]),
        ("X-Mailer", ["Microsoft Outlook 16.0", "Apple Mail (2.3774)", ""]),
        ("Delivered-To", [SUPPORT, ALIAS]),
    ]:
        if rng.random() < 0.08:
            lines.append(header(name, pool, len(pool)))
    for _ in range(rng.choice([0, 1, 3]) if rng.random() < bad else 0):  # odd names
        name = rng.choice(["X Bad Name", "", ":", "From ", "=?utf-8?q?x?=", "X-\xe9", "A" * 2_000, "X-\x00", "-"])
        lines.append(_header_line(rng, name, random_text(rng, 20), eol, 1.0))
    if rng.random() < bad and lines:  # duplicates: a second From, Subject, Message-ID …
        for _ in range(rng.randint(1, 3)):
            lines.insert(rng.randint(0, len(lines)), rng.choice(lines))
    if rng.random() < 0.01:  # a huge header count
        lines += [b"X-Spam-Check: " + str(n).encode() for n in range(rng.choice([2_000, 20_000]))]
    if rng.random() < 0.004:  # one long header of a repeated pattern
        name, unit = rng.choice(_HEAVY)
        lines = [line for line in lines if not line.lower().startswith(name.lower().encode() + b":")]
        lines.insert(rng.randint(0, len(lines)), name.encode() + b": " + unit * rng.choice([300, 1_000, 3_000, 10_000]))
    if rng.random() < 0.15:
        rng.shuffle(lines)
    return lines


def _text(rng: random.Random, reply: bool) -> str:
    """A body as people write it: new words, maybe a signature, maybe quoted history in a client's words."""
    new = random_text(rng, rng.choice([50, 200, 1_000]))
    if rng.random() < 0.3:
        new = "\n".join(
            rng.choice(WORDS + NASTY + ["", "Thanks,", "Hi,", "    ERROR x"]) for _ in range(rng.randint(1, 12))
        )
    parts = [new]
    if rng.random() < 0.3:
        parts.append(rng.choice(_SIGNATURES))
    if reply or rng.random() < 0.15:
        old = random_text(rng, 100).replace("\n", "\n> ")
        for _ in range(rng.choice([1, 1, 2, 5])):
            parts.append(rng.choice(_HISTORY).format(old=old))
            old = parts[-1].replace("\n", "\n> ")
        if rng.random() < 0.2:
            parts.reverse()  # bottom-posting
        if rng.random() < 0.1:
            parts.insert(1, new)  # an answer between the quoted lines
    roll = rng.random()
    if roll < 0.02:
        parts.append("> " * rng.randint(1, 300) + "x\n" + ">\n" * rng.choice([100, 5_000]))
    elif roll < 0.04:
        parts.append(("On " + "x" * rng.randint(380, 420) + " wrote:\n") * rng.randint(1, 200))
    elif roll < 0.05:
        parts.append(rng.choice("x ->_") * rng.choice([998, 10_000, 100_000]))
    elif roll < 0.06:
        parts.append("\n".join(rng.choice(_SIGNATURES) for _ in range(500)))
    return "\n".join(parts)


def _html(rng: random.Random, reply: bool) -> str:
    new = (
        random_html(rng) if rng.random() < 0.5 else f'<div dir="ltr">{random_text(rng, 100).replace("<", "&lt;")}</div>'
    )
    roll = rng.random()
    if reply and roll < 0.5:
        return (
            f'{new}<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Thu, Dec 3, 2026 at 10:00 AM '
            f'Support &lt;<a href="mailto:{SUPPORT}">{SUPPORT}</a>&gt; wrote:<br></div><blockquote class="gmail_quote" '
            f'style="margin:0px 0px 0px 0.8ex">{random_html(rng)}</blockquote></div>'
        )
    if roll < 0.3:
        return (
            '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"><style>p {margin:0}'
            f'</style></head><body><div class="WordSection1"><p class="MsoNormal">{new}</p><div style="border:none;'
            'border-top:solid #E1E1E1 1.0pt"><p class="MsoNormal"><b>From:</b> Support<br><b>Sent:</b> Friday'
            f"</p></div>{random_html(rng)}</div></body></html>"
        )
    if roll < 0.305:
        return "<div>" * rng.choice([10_000, 100_000]) + "x" + "<p>y" * 200_000  # tags by the 100,000, to past MAX_HTML
    return new


def _encode_text(rng: random.Random, text: str, eol: bytes) -> tuple[str, str, bytes]:
    """(charset parameter, transfer encoding, body bytes): often what it claims, often not."""
    actual = rng.choice(_ENCODINGS)
    try:
        data = text.replace("\n", eol.decode()).encode(
            actual, "surrogatepass" if actual.startswith("utf") else "replace"
        )
    except UnicodeError:
        data = text.replace("\n", eol.decode()).encode("utf-8", "surrogatepass")
    roll = rng.random()
    if roll < 0.6:
        charset = {"latin-1": "iso-8859-1"}.get(actual, actual)
    elif roll < 0.7 and actual == "cp1252":
        charset = "iso-8859-1"  # Windows' bytes labelled Latin-1
    else:
        charset = rng.choice(_CHARSETS)
    return charset, *_transfer(rng, data, eol)


def _transfer(rng: random.Random, data: bytes, eol: bytes) -> tuple[str, bytes]:
    """A transfer encoding and `data` in it, sometimes broken."""
    cte = rng.choice(_TRANSFER)
    kind = cte.strip().lower()
    if kind == "base64":
        encoded = base64.encodebytes(data).replace(b"\n", eol)
        roll = rng.random()
        if roll < 0.1:
            encoded = encoded.rstrip(b"=\r\n")  # no padding
        elif roll < 0.2:
            at = rng.randint(0, len(encoded))
            encoded = encoded[:at] + rng.choice([b"!", b"====", b"\x00", b"*&^", b"-_", b" "]) + encoded[at:]
        elif roll < 0.25:
            encoded = encoded[: rng.randint(0, len(encoded))]
        return cte, encoded
    if kind == "quoted-printable":
        encoded = quopri.encodestring(data).replace(b"\n", eol)
        if rng.random() < 0.2:
            at = rng.randint(0, len(encoded))
            encoded = encoded[:at] + rng.choice([b"=ZZ", b"=", b"=\r", b"=\n", b"=0", b"==", b"=\xff"]) + encoded[at:]
        return cte, encoded
    if kind == "x-uuencode":
        lines = [binascii.b2a_uu(data[i : i + 45]) for i in range(0, len(data), 45)]
        body = b"begin 644 x.txt\n" + b"".join(lines) + b"`\nend\n"
        if rng.random() < 0.3:
            body = body[: rng.randint(0, len(body))]
        return cte, body.replace(b"\n", eol)
    return cte, data


def _params(pairs: list[tuple[str, str]]) -> tuple[bytes, ...] | None:
    flat = tuple(x.encode("utf-8", "surrogatepass") for pair in pairs for x in pair)
    return flat or None


def _leaf(
    rng: random.Random, kind: str, section: str, eol: bytes, reply: bool, depth: int, bad: float
) -> tuple[list[bytes], bytes, object, dict[str, bytes]]:
    """One leaf: (MIME header lines, content, its BODYSTRUCTURE, section -> MIME header and content)."""
    disposition: tuple | None = None
    if kind in ("plain", "html"):
        text = _text(rng, reply) if kind == "plain" else _html(rng, reply)
        charset, cte, content = _encode_text(rng, text, eol)
        params = [("charset", charset)]
        if kind == "plain" and rng.random() < 0.1:
            params += [("format", "flowed"), ("delsp", rng.choice(["yes", "no"]))]
        media = ("text", kind)
        if rng.random() < 0.05:
            kind_d = rng.choice(["inline", "attachment"])
            disposition = (kind_d.encode(), None)
    elif kind == "message":
        inner = random_mail(rng, depth + 1).raw
        cte, content = ("7bit", inner) if rng.random() < 0.8 else _transfer(rng, inner, eol)
        media, params = ("message", rng.choice(["rfc822", "rfc822", "global", "partial"])), []
    else:
        media_type = rng.choice(_FILE_TYPES)
        media = tuple(media_type.split("/", 1)) if "/" in media_type else (media_type, "")
        data = rng.choice(_FILE_BYTES) + bytes(rng.randrange(256) for _ in range(rng.choice([0, 10, 500])))
        if rng.random() < 0.01:
            data *= 5_000  # a file over a small limit
        cte, content = _transfer(rng, data, eol)
        name = _hostile(rng, rng.choice(_FILE_NAMES))
        params = [("name", name)] if rng.random() < 0.5 else []
        template = rng.choice(_DISPOSITIONS)
        if template:
            disposition = (template.split(";", 1)[0].encode(), _params([("filename", name)]))
    headers = []
    content_type = "/".join(media) if media[1] or rng.random() < 0.5 else media[0]
    content_type += "".join(f'; {key}="{value}"' if rng.random() < 0.7 else f"; {key}={value}" for key, value in params)
    if rng.random() < 0.002:  # parameters by the thousand: plain, or RFC 2231 continuations
        many = rng.choice([300, 1_000, 3_000])
        content_type += rng.choice(["; a=b" * many, "".join(f"; name*{n}*=utf-8''%C3" for n in range(many))])
    headers.append(_header_line(rng, "Content-Type", content_type, eol, bad))
    if cte:
        headers.append(_header_line(rng, "Content-Transfer-Encoding", cte, eol, bad))
    if kind not in ("plain", "html", "message") and template:
        headers.append(_header_line(rng, "Content-Disposition", template.replace("{name}", name), eol, bad))
    elif disposition is not None:
        headers.append(_header_line(rng, "Content-Disposition", disposition[0].decode(), eol, bad))
    size = len(content)
    if media[0] == "text":
        structure = (
            *map(str.encode, media),
            _params(params),
            None,
            None,
            cte.encode(),
            size,
            content.count(b"\n"),
            None,
            disposition,
        )
    elif media == ("message", "rfc822"):
        structure = (b"message", b"rfc822", None, None, None, cte.encode(), size, None, None, 0, None, disposition)
    else:
        structure = (*map(str.encode, media), _params(params), None, None, cte.encode(), size, None, disposition)
    mime = eol.join(headers) + eol + eol
    return headers, content, structure, ({section: mime + content} if section else {})


_SUBTYPES = ["mixed", "mixed", "alternative", "alternative", "related", "report", "signed", "digest", "x-unknown", ""]


def _entity(
    rng: random.Random, section: str, eol: bytes, reply: bool, depth: int, bad: float
) -> tuple[list[bytes], bytes, object, dict[str, bytes]]:
    """A body part: a leaf, or a multipart of parts in one of the shapes mail clients write, or broken."""
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        kind = rng.choices(["plain", "html", "file", "message"], [50, 20, 25, 5 if depth < 2 else 0])[0]
        return _leaf(rng, kind, section, eol, reply, depth, bad)
    subtype = rng.choice(_SUBTYPES)
    if subtype == "alternative":
        kinds = (
            ["plain", "html"]
            if rng.random() < 0.8
            else rng.choices(["plain", "html", "file", "multipart"], k=rng.randint(0, 4))
        )
    elif subtype == "related":
        kinds = ["html", *["file"] * rng.randint(0, 3)]
    elif subtype == "report":
        kinds = ["plain", "file", "message"]
    else:
        kinds = rng.choices(["plain", "html", "file", "message", "multipart"], [30, 10, 30, 5, 25], k=rng.randint(0, 5))
    children = []
    for number, kind in enumerate(kinds, 1):
        child_section = f"{section}.{number}" if section else str(number)
        if kind == "multipart":
            children.append(_entity(rng, child_section, eol, reply, depth + 1, bad))
        else:
            kind = kind if depth < 2 or kind != "message" else "plain"
            children.append(_leaf(rng, kind, child_section, eol, reply, depth + 1, bad))
    boundary = rng.choice(["000000000000a1b2c3d4e5f60718", "Apple-Mail=_5F1A", "----=_NextPart_000_0001", "b", "=_x"])
    boundary += str(depth) if rng.random() < 0.9 else ""  # else a child's boundary is its parent's
    declared, used, closed = boundary, boundary, True
    roll = rng.random()
    if roll < 0.03:
        declared = None  # no boundary parameter
    elif roll < 0.05:
        declared = ""
    elif roll < 0.07:
        used = boundary + "x"  # delimiters of another boundary
    elif roll < 0.12:
        closed = False  # unterminated
    elif roll < 0.14:
        declared = used = rng.choice([" spaced  ", '"', "b" * 200, "bö", "--", "b\x00"])
    content_type = f"multipart/{subtype}" + (f'; boundary="{declared}"' if declared is not None else "")
    if subtype == "report":
        content_type += "; report-type=delivery-status"
    headers = [_header_line(rng, "Content-Type", content_type, eol, bad)]
    preambles = [b"", b"This is a multi-part message in MIME format." + eol]
    body = [rng.choice(preambles) if rng.random() > bad else b"--" + used.encode() + b"--" + eol]  # closed first
    for number, (child_headers, child_content, _, _) in enumerate(children):
        if rng.random() < 0.03:
            child_content = b"--" + used.encode() + eol + child_content  # the boundary inside a body
        body.append(b"--" + used.encode("utf-8", "surrogatepass") + rng.choice([eol, eol, b"  " + eol, b""]))
        body.append(eol.join(child_headers) + eol + eol + child_content + eol)
        if not closed and number == len(children) - 1 and rng.random() < 0.5:
            body[-1] = body[-1][: rng.randint(0, len(body[-1]))]
    if closed:
        body.append(b"--" + used.encode("utf-8", "surrogatepass") + b"--" + eol)
        if rng.random() < 0.1:
            body.append(b"epilogue " + random_text(rng, 20).encode("utf-8", "surrogatepass") + eol)
    structure = ([child[2] for child in children], subtype.encode())
    sections = {key: value for child in children for key, value in child[3].items()}
    return headers, b"".join(body), structure, sections


def _deep(rng: random.Random, eol: bytes) -> tuple[list[bytes], bytes, object, dict[str, bytes]]:
    """Multiparts (or forwarded messages) nested 50 to 500 deep, a text at the bottom (built without recursion)."""
    depth = rng.randint(50, 500)
    section = ".".join(["1"] * depth)
    headers, content, structure, sections = _leaf(rng, rng.choice(["plain", "html"]), section, eol, False, 9, 0.0)
    if rng.random() < 0.3:
        for _ in range(depth):
            content = eol.join([b"From: a@b.example", b"Subject: Fwd: x", *headers]) + eol + eol + content
            headers = [b"Content-Type: message/rfc822"]
        structure = (b"message", b"rfc822", None, None, None, b"7bit", len(content), None, None, 0, None, None)
        return headers, content, structure, {}
    for level in reversed(range(depth)):
        subtype = rng.choice(["mixed", "alternative", "related"])
        boundary = f"b{level}".encode()
        closing = b"--" + boundary + b"--" + eol if rng.random() < 0.5 else b""
        content = b"--" + boundary + eol + eol.join(headers) + eol + eol + content + eol + closing
        headers = [b"Content-Type: multipart/" + subtype.encode() + b'; boundary="' + boundary + b'"']
        structure = ([structure], subtype.encode())
    return headers, content, structure, sections


def random_mail(rng: random.Random, depth: int = 0) -> RawMail:
    """A raw mail (RFC 5322 bytes as IMAP hands them over): real structures, broken ones, hostile text."""
    eol = b"\r\n" if rng.random() < 0.8 else b"\n"
    reply = rng.random() < 0.4
    mail = RawMail(b"", authserv_id=rng.choice([AUTHSERV, AUTHSERV, None]), limit=rng.choice([25 * 2**20, 1_000]))
    bad = rng.choice([0.0, 0.0, 0.02, 0.1, 0.3])  # how often a header is hostile
    headers = _mail_headers(rng, eol, reply, bad)
    if depth == 0 and rng.random() < 0.02:
        body_headers, content, mail.structure, mail.sections = _deep(rng, eol)
    else:
        body_headers, content, mail.structure, mail.sections = _entity(rng, "", eol, reply, depth, bad)
    head = eol.join([*headers, *body_headers])
    if depth == 0 and headers and headers[0][:1].isalpha() and rng.random() < 0.2:  # a header on top, read as written
        if rng.random() < 0.5:
            mail.robot = True
            first = rng.choice(_ROBOT_HEADERS).encode()
        else:
            mail.forged = True  # the trusted server's verdict on top, forged passes below
            first = b"Authentication-Results: mx.example.com; dmarc=fail (p=reject) header.from=acme.pt"
            head = eol.join(
                [*headers, b"Authentication-Results: mx.example.com; dmarc=pass header.from=acme.pt", *body_headers]
            )
        head = first + eol + head
    raw = head + eol + eol + content
    roll = rng.random()
    if depth == 0 and roll < 0.25:
        mail.robot = mail.forged = False  # what follows may break the first line
        mail.structure, mail.sections = None, {}  # and the parts IMAP would give are no longer these
        if roll < 0.01:
            raw = b""
        elif roll < 0.03:
            raw = head  # only headers
        elif roll < 0.04:
            raw = eol + raw  # only a body
        elif roll < 0.06:
            raw = b"From maria@gmail.com Thu Dec  3 11:41:52 2026" + eol + raw  # an mbox line
        elif roll < 0.09:
            raw = raw[: rng.randint(0, len(raw))]
        elif roll < 0.12:
            raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r")  # CR without LF
        elif roll < 0.15:
            raw = re.sub(rb"\r?\n", lambda _: rng.choice([b"\r\n", b"\n", b"\r", b"\r\r\n", b"\n\r"]), raw)
        elif roll < 0.18:
            raw = bytes(b if rng.random() > 0.01 else 0 for b in raw)  # NUL bytes
        elif roll < 0.22:
            flipped = bytearray(raw)
            for _ in range(rng.randint(1, 10)):
                if flipped:
                    flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            raw = bytes(flipped)
        else:
            raw = eol.join([b"X-Long: " + b"y" * rng.choice([998, 5_000, 100_000]), raw])
    mail.raw = raw
    mail.clean_start = bool(re.match(rb"[A-Za-z][A-Za-z0-9-]*: [^\r\n]*(\r\n|\n)(?![ \t\r\n])", raw))
    return mail


# -- targets ----------------------------------------------------------------------------------


def fuzz_relay(rng: random.Random, tally: Tally) -> None:
    quote = random_runs(rng)
    max_length = rng.choice([200, 1_000, 10_000])
    parts = compose("**Alice** (zulip) wrote:", quote, max_length)
    budget = max_length
    inside: list[str] = []
    ok = len(parts) <= len(quote) // (budget // 2 - 5) + 2 and all(len(p) <= max_length for p in parts)
    try:
        for part in parts:
            relayed = parse_relayed(part)
            assert_commonmark_inert(relayed)
            inside.extend(unguard(line, relayed.fence) for line in relayed.inside)
    except AssertionError:
        ok = False
    if not ok or "".join(inside) != quote.rstrip("\n").replace("\n", ""):
        tally.errors += 1
        tally.note("relay", quote[:80])


def fuzz_html(rng: random.Random, tally: Tally) -> None:
    text = html_to_text(random_html(rng), [], None)
    if not isinstance(text, str):
        tally.errors += 1


def fuzz_mastodon(rng: random.Random, tally: Tally) -> None:
    body = random_text(rng, rng.choice([50, 200, 2_000]))
    problems = reply_violations(body, max_characters=rng.choice([500, 1_000]))
    mentions = [p for p in problems if "mention" in p]
    tally.third_party_mentions += len(mentions)
    if problems:
        tally.errors += len(problems) - len(mentions)
        tally.note("mastodon", body[:80])


# -- what a mail read must be -----------------------------------------------------------------

#: What `bodies.clean` drops from every text (and addresses and ids never hold): controls, surrogates.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
#: A message id as `reading.Mail` promises them: `<…>`, one word.
_ID = re.compile(r"<[^\s]+>")
_TRACE = b"Received: from relay.example by mx.example.com; Thu, 3 Dec 2026 11:42:07 +0000"


def mail_problems(mail: Mail, *, authserv_id: str | None, limit: int, carries_files: bool = False) -> list[str]:
    """What in `mail` breaks what `reading.Mail` and the readers' docstrings promise."""
    if not isinstance(mail, Mail):
        return [f"not a Mail: {type(mail).__name__}"]
    problems = []
    one_line = {"subject": mail.subject, "sender": mail.sender, "sender_name": mail.sender_name or "",
                "message_id": mail.message_id, **{f"to/cc {a}": a for a in (*mail.to, *mail.cc)},
                **{f"id {i}": i for i in (*mail.in_reply_to, *mail.references)},
                **{f"file {f.name}": f.name for f in mail.attachments}}  # fmt: skip
    for what, value in [*one_line.items(), ("text", mail.text), ("full_text", mail.full_text)]:
        if not isinstance(value, str):
            problems.append(f"{what} is no text")
        elif _CONTROLS.search(value):
            problems.append(f"{what} holds controls or surrogates: {_CONTROLS.findall(value)[:3]}")
        elif "\r" in value or (what in one_line and "\n" in value):
            problems.append(f"{what} holds a line break")
    if mail.subject != " ".join(mail.subject.split()):
        problems.append("subject whitespace not collapsed")
    for address in (mail.sender, *mail.to, *mail.cc):
        if address and (address != address.lower() or address.count("@") != 1 or len(address.split()) != 1):
            problems.append(f"not a lower-case addr-spec: {address[:60]!r}")
    for message_id in (mail.message_id, *mail.in_reply_to, *mail.references):
        if not _ID.fullmatch(message_id):
            problems.append(f"not a message id: {message_id[:60]!r}")
    if len(set(mail.in_reply_to)) != len(mail.in_reply_to) or len(set(mail.references)) != len(mail.references):
        problems.append("an id twice")
    if len(mail.references) > MAX_REFERENCES:
        problems.append(f"{len(mail.references)} references")
    if mail.date is not None and (not isinstance(mail.date, datetime) or mail.date.tzinfo is None):
        problems.append(f"date without a time zone: {mail.date!r}")
    if mail.automatic is not None and not isinstance(mail.automatic, str):
        problems.append(f"automatic is {mail.automatic!r}")
    if mail.sender in (SUPPORT, ALIAS) and mail.automatic is None:
        problems.append("mail from the desk's own address is not automatic")
    if (mail.authenticated is None) != (authserv_id is None) or mail.authenticated not in (None, True, False):
        problems.append(f"authenticated is {mail.authenticated!r} for authserv_id {authserv_id!r}")
    if len(mail.attachments) > MAX_FILES:
        problems.append(f"{len(mail.attachments)} files")
    for file in mail.attachments:
        if not file.name or len(file.name) > NAME_LENGTH or "/" in file.name or "\\" in file.name:
            problems.append(f"file name {file.name[:60]!r}")
        if file.data is None:
            if file.refused_over != limit or file.size <= limit:
                problems.append(f"file refused: {file.size} bytes, over {file.refused_over}, limit {limit}")
        elif file.refused_over is not None or file.size != len(file.data) or file.size > limit:
            problems.append(f"file kept: {file.size} bytes ({len(file.data)} held), limit {limit}")
        elif file.sha256 != hashlib.sha256(file.data).hexdigest():
            problems.append("file sha256")
    if not mail.too_large:
        # What the sender wrote: the text's lines, in order, are the body's (a new mail's, its first ones);
        # never emptied, but for a reply with nothing new whose files go on alone.
        body = [line.rstrip() for line in mail.full_text.split("\n")]
        lines = [line.rstrip() for line in mail.text.split("\n")] if mail.text else []
        if not is_reply(mail.subject, mail.in_reply_to, mail.references):
            start = next((n for n, line in enumerate(body) if line), len(body))  # blank lines on top go
            if lines != body[start : start + len(lines)]:
                problems.append("a new mail's text is not the start of its body")
        else:
            position = 0
            for line in lines:
                try:
                    position = body.index(line, position) + 1
                except ValueError:
                    problems.append(f"a line of the text is not the body's: {line[:60]!r}")
                    break
        if mail.full_text.strip() and not mail.text.strip() and not (mail.attachments or carries_files):
            problems.append("the text was emptied")
    return problems


def email_problems(mail: RawMail, seconds: float = 0.0) -> list[str]:
    """Every reader on `mail` as the channel calls them (`receive.Receiver._read`), each result checked;
    with `seconds`, each call under its own time limit of that many seconds (SIGALRM)."""
    own = (SUPPORT, ALIAS)
    raw, authserv_id, limit = mail.raw, mail.authserv_id, mail.limit
    problems: list[str] = []
    trusted = _trusted_verdict(raw)

    def attempt(what: str, call: Callable[[], object]) -> object | None:
        if seconds:
            signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 — the readers promise never to raise
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            problems.append(
                f"{what} raised {type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}: {exc}"[:300]
            )
            return None

    def read(what: str, call: Callable[[], Mail], carries_files: bool = False) -> Any:
        """A reader's `call()` under `attempt`; what it read (None if it raised) must keep what every
        reader promises (`mail_problems`) and be authenticated only if a header of the trusted server
        says so."""
        found = attempt(what, call)
        if found is not None:
            checked = mail_problems(found, authserv_id=authserv_id, limit=limit, carries_files=carries_files)
            problems.extend(f"{what}: {p}" for p in checked)
            if found.authenticated and not trusted:
                problems.append(f"{what}: authenticated, and no header names the trusted server as written")
        return found

    def made_up_id_kept(what: str, first: Mail, read_again: Callable[[bytes], object]) -> None:
        """A Message-ID made up for a mail without one must not change when a server on the way adds
        a trace header on top: `read_again(header)` reads the mail again with `header` before it."""
        if first.message_id.endswith("@message-id.invalid>") and mail.clean_start and len(raw) < 50_000:
            eol = b"\r\n" if raw.find(b"\r\n") == raw.find(b"\n") - 1 else b"\n"
            again = attempt(what, lambda: read_again(_TRACE + eol))
            if again is not None and again.message_id != first.message_id:
                problems.append(f"{what}: the made-up Message-ID changed with a trace header")

    common = {"own_address": SUPPORT, "uid_key": "uid:1:1", "received_at": None, "authserv_id": authserv_id,
              "aliases": (ALIAS,)}  # fmt: skip
    whole = read(
        "read_mail", lambda: read_mail(raw, own_addresses=own, authserv_id=authserv_id, max_attachment_bytes=limit)
    )
    if whole is not None:
        if whole.size != len(raw) or whole.too_large:
            problems.append(f"read_mail: size {whole.size} for {len(raw)} bytes, too_large {whole.too_large}")
        if mail.robot and whole.automatic is None:
            problems.append("read_mail: a mail whose first header says never to answer it is not automatic")
        if mail.forged and authserv_id and whole.authenticated:
            problems.append("read_mail: the trusted server said dmarc=fail, a forged pass below was believed")
        attempt("mail_to_inbound", lambda: mail_to_inbound(whole, **common))
        made_up_id_kept(
            "read_mail",
            whole,
            lambda trace: read_mail(
                trace + raw, own_addresses=own, authserv_id=authserv_id, max_attachment_bytes=limit
            ),
        )

    found = _BODY_START.search(raw)
    block = raw[: found.end()] if found else raw  # BODY[HEADER]: the header block and its blank line
    size = whole_message_bound(limit) + len(raw)  # over the bound: read by its headers (and text parts)
    headers_only = read(
        "read_headers", lambda: read_headers(block, size=size, own_addresses=own, authserv_id=authserv_id)
    )
    if headers_only is not None:
        if (
            headers_only.text
            or headers_only.full_text
            or headers_only.attachments
            or not headers_only.too_large
            or headers_only.size != size
        ):
            problems.append("read_headers: a mail too large to read has a body or files, or lost its size")
        made_up_id_kept(
            "read_headers",
            headers_only,
            lambda trace: read_headers(
                trace + block, size=size + len(trace), own_addresses=own, authserv_id=authserv_id
            ),
        )

    texts = (
        text_only_body(
            mail.structure, {s: mail.sections[s] for s in text_sections(mail.structure) if s in mail.sections}
        )
        or None
    )
    note, refused = oversized(size, limit, listed_files(mail.structure), text_read=texts is not None)
    if texts is not None:
        parts = read(
            "read_text_parts",
            lambda: read_text_parts(
                block, texts, size=size, carries_files=bool(refused), own_addresses=own, authserv_id=authserv_id
            ),
            carries_files=bool(refused),
        )
        if parts is not None:
            if parts.attachments or parts.too_large or parts.size != size:
                problems.append("read_text_parts: files, too_large or size wrong")
            attempt("mail_to_inbound", lambda: mail_to_inbound(parts, **common, note=note, refused=refused))
    elif headers_only is not None:
        attempt("mail_to_inbound", lambda: mail_to_inbound(headers_only, **common, note=note, refused=refused))
    return problems


_BODY_START = re.compile(rb"\r?\n\r?\n")
#: An Authentication-Results header that names the trusted server (RFC 8601: its authserv-id, first,
#: after any comments) as the bytes are written, and says "pass" somewhere.
_TRUSTED = re.compile(
    rb"(?im)^authentication-results[ \t]*:[ \t]*(?:\([^()\n]*\)[ \t]*)*"
    + re.escape(AUTHSERV.encode())
    + rb"(?![^;\s])[^\n]*pass"
)


def _trusted_verdict(raw: bytes) -> bool:
    """Could the trusted server have said "pass" of this mail: is there a header of its, as written?
    (Lenient: the whole text before the first blank line, unfolded, any line break.)"""
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n\n", 1)[0]
    return _TRUSTED.search(re.sub(rb"\n[ \t]", b" ", text)) is not None


class _Deadline(BaseException):
    """The time limit, for the email target: its readers catch every `Exception` (they promise never
    to raise), and would read `Hung` as a part they cannot parse and go on past the limit."""


def _deadline(_signum, _frame):  # noqa: ANN001
    raise _Deadline


def fuzz_email(rng: random.Random, tally: Tally) -> None:
    mail = random_mail(rng)
    seconds = signal.getitimer(signal.ITIMER_REAL)[0]  # the limit holds for each reader's call
    previous = signal.signal(signal.SIGALRM, _deadline)
    try:
        problems = email_problems(mail, seconds)
    except _Deadline as deadline:
        frames = traceback.extract_tb(deadline.__traceback__)[:-1]  # not the handler itself
        ours = [f for f in frames if "/adapters/" in f.filename] or frames
        tally.note(f"email hung in {ours[-1].name} ({Path(ours[-1].filename).name}:{ours[-1].lineno})", mail.raw[:120])
        raise Hung from None
    finally:
        signal.signal(signal.SIGALRM, previous)
    if problems:
        tally.errors += 1
        tally.note(problems[0], mail.raw[:120])


class RouterTarget:
    SENDERS = ["customer", "stranger", "engineer", "engineer in topic", "stranger in topic", "public"]

    def __init__(self, tmp: Path) -> None:
        from bot.runtime import Runtime
        from bot.services import credits as credit_service
        from bot.services import customers
        from storage.db import transaction
        from tests.desk import make_settings

        self.now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
        self.out = io.StringIO()
        console = ConsoleChannel(customer="nobody", stdin=io.StringIO(), stdout=self.out)
        url = f"sqlite:///{tmp / 'fuzz.db'}"
        self.runtime = Runtime(
            make_settings(url), [console], clock=lambda: self.now,
            trusted_engineers=frozenset({("console", ENGINEER)}), migrate=True,
        )  # fmt: skip
        with transaction(self.runtime.engine) as session:
            customer, _code = customers.create_customer(session, "Acme", None, "en", self.now)
            customers.link_identity(session, customer, "console", "Acme", self.now)
            credit_service.grant_credits(session, customer, 10_000, self.now.date(), "fuzz", self.now, months=12)
        self.count = 0

    def __call__(self, rng: random.Random, tally: Tally) -> None:
        from sqlalchemy import func, select

        from storage.db import transaction
        from storage.models import Outbox, ProcessedInbound

        self.count += 1
        self.now += timedelta(seconds=rng.choice([1, 60, 3_600]))
        sender = rng.choice(self.SENDERS)
        text = random_text(rng)
        message = console_line("Acme", text, f"f{self.count}", self.now)
        if sender == "stranger":
            who = f"stranger{rng.randint(1, 50)}"
            message = dataclasses.replace(message, sender=who, conversation=who)
        elif sender == "engineer":
            message = dataclasses.replace(message, sender=ENGINEER, conversation=ENGINEER)
        elif sender.endswith("in topic"):
            who = ENGINEER if sender.startswith("engineer") else "Acme"
            message = dataclasses.replace(message, sender=who, kind="topic", topic=f"#{rng.randint(1, 5)} Acme: x")
        elif sender == "public":
            message = dataclasses.replace(message, public=True)
        self.runtime.intake.deliver(message)
        with transaction(self.runtime.engine) as session:
            failed = session.scalar(
                select(func.count())
                .select_from(ProcessedInbound)
                .where(ProcessedInbound.message_id == message.message_id, ProcessedInbound.failed_text.is_not(None))
            )
            replies = session.scalars(
                select(Outbox.text).where(Outbox.kind == "direct", Outbox.state == "pending")
            ).all()
            session.execute(Outbox.__table__.update().where(Outbox.state == "pending").values(state="sent"))
        if failed:
            tally.errors += 1
            tally.note("router", (sender, text[:80]))
        for reply in replies:  # as the Mastodon channel would post it to this sender
            for problem in reply_violations(reply, recipient="acme@remote.example"):
                if "mention" in problem:
                    tally.third_party_mentions += 1
                    tally.note("router mention", reply[:80])


def run(name: str, target: Callable[[random.Random, Tally], None], inputs: int, seed: int, limit: float) -> Tally:
    rng = random.Random(f"{seed}:{name}")
    tally = Tally(name)
    signal.signal(signal.SIGALRM, _alarm)
    start = time.perf_counter()
    for _ in range(inputs):
        tally.inputs += 1
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            target(rng, tally)
        except Hung:
            tally.hung += 1
        except Exception as exc:  # noqa: BLE001 — counting them is the point
            tally.errors += 1
            tally.note(f"{name} raised {type(exc).__name__}", exc)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    tally.seconds = round(time.perf_counter() - start, 1)
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=float, default=2.0, help="seconds an input may take before it counts as hung")
    parser.add_argument("--only", choices=["router", "html", "relay", "mastodon", "email"], action="append")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.CRITICAL)  # the router logs each withheld answer; the counts are what matter here
    with tempfile.TemporaryDirectory() as tmp:
        targets: dict[str, Callable[[random.Random, Tally], None]] = {
            "relay": fuzz_relay,
            "html": fuzz_html,
            "mastodon": fuzz_mastodon,
            "email": fuzz_email,
        }
        if not args.only or "router" in args.only:
            targets["router"] = RouterTarget(Path(tmp))
        tallies = [
            run(n, t, args.inputs, args.seed, args.limit) for n, t in targets.items() if not args.only or n in args.only
        ]
    if args.json:
        print(json.dumps([dataclasses.asdict(t) for t in tallies], indent=2))
    else:
        print(f"{'target':<10} {'inputs':>8} {'errors':>7} {'hung':>5} {'3rd-party mentions':>19} {'seconds':>8}")
        for t in tallies:
            print(f"{t.target:<10} {t.inputs:>8} {t.errors:>7} {t.hung:>5} {t.third_party_mentions:>19} {t.seconds:>8}")
            for example in t.examples:
                print(f"    e.g. {example}")
    return 1 if any(t.errors or t.hung or t.third_party_mentions for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
