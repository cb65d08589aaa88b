"""Hostile mail that held the email channel's receive thread for seconds (bench/fuzz.py --only email).

A mail is read on the thread that receives every other: seconds spent on one hold every customer's
mail for as long, at every attempt. Each mail here is read through `read_mail` (and `read_headers`,
as a mail too large to fetch is) and `mail_to_inbound`, in a generous time that the code before took
several times over, and what is read is checked: a hostile mail is still a customer's mail, stored
and answered. The time is the reading thread's CPU time: CI is a busy 2-core machine, where the
time on the clock also counts the turns of every other process.
"""

from __future__ import annotations

import email
import email.header
import time
from email import policy
from pathlib import Path

import pytest

from adapters.channel import Inbound
from adapters.email import reading
from adapters.email.bodies import MAX_HTML, MAX_HTML_TAGS
from adapters.email.inbound import mail_to_inbound
from adapters.email.reading import Mail, read_headers, read_mail

SUPPORT = "support@example.com"
HEAD = (
    "From: Ana <ana@cliente.pt>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\n"
    "Message-ID: <hostile@cliente.pt>\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
)
#: Seconds a hostile mail may take to read: well under it here, several times over before.
LIMIT = 1.5


def read(raw: bytes) -> tuple[Mail, Inbound, float]:
    """The mail, its Inbound, and the CPU seconds they took: as the channel reads a mail fetched whole,
    and as it reads one too large to fetch (its header block)."""
    began = time.thread_time()
    mail = read_mail(raw, own_addresses=(SUPPORT,))
    inbound = mail_to_inbound(mail, own_address=SUPPORT, uid_key="1:7", received_at=None, authserv_id=None)
    block = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    headers_only = read_headers(block, size=len(raw), own_addresses=(SUPPORT,))
    mail_to_inbound(headers_only, own_address=SUPPORT, uid_key="1:7", received_at=None, authserv_id=None)
    return mail, inbound, time.thread_time() - began


def html_mail(html: str) -> bytes:
    return (HEAD + "Content-Type: text/html; charset=utf-8\r\n\r\n" + html).encode()


# -- HTML: tags by the hundred thousand, markup left unfinished ---------------------------------------


@pytest.mark.parametrize(
    "unit", ["<b>", "<a><i>", "<a><i></i></a>", "<p>", "<p></p>", "<li>", "<td>x", "<br>", "<blockquote>x"]
)
def test_a_mib_of_tiny_tags_is_read_at_once_up_to_the_bound(unit: str) -> None:
    # html.parser takes microseconds a tag: a MiB of `<b>` (350,000 tags) took 1-5 s, nested or not.
    # Only the first MAX_HTML_TAGS are read; what follows them, within MAX_HTML, is not ("never read":
    # that checks the bound itself). The time is the stall's guard, with room: 50,000 nested quotes,
    # a level each, are the dearest tags to read, 1.2 s on a slow day of a 2-core AMD machine and
    # 1.75 s under the suite's own load (a CI run failed on 1.5); a MiB of `<b>` unbounded is 4 s there.
    filler = unit * ((MAX_HTML - 100) // len(unit))
    assert filler.count("<") > MAX_HTML_TAGS
    mail, inbound, seconds = read(html_mail(f"<p>Printer on fire</p>{filler}<p>never read</p>"))
    assert seconds < 2 * LIMIT
    assert mail.text.startswith("Printer on fire") and inbound.text.startswith("Printer on fire")
    assert "never read" not in mail.full_text
    assert not inbound.automatic


def test_a_persons_long_html_is_read_whole() -> None:
    # Not the stall but its bound's guard: 700 KB of a person's HTML (Gmail's, a tag in 20 characters,
    # about the densest mail clients write), more than anyone writes, is read to its end.
    line = '<div dir="ltr">Job {n} failed at 02:00, error 0x42.<br></div>'
    count = 700_000 // len(line.format(n=99_999))
    html = "".join(line.format(n=n) for n in range(count))
    assert len(html) / html.count("<") < 21
    mail, _inbound, seconds = read(html_mail(html))
    assert seconds < LIMIT
    assert mail.text.split("\n\n") == [f"Job {n} failed at 02:00, error 0x42." for n in range(count)]


@pytest.mark.parametrize(
    "unfinished",
    [
        "<a '" * 8_192,  # an attribute value never closed: 6 s before (46 s for twice as many)
        "<a" * 65_536,  # a tag never closed: 13-17 s
        "</" * 262_144,  # an end tag without ">": 7 s
        "<?" * 262_144,  # a processing instruction without ">": 6 s
    ],
    ids=["quote", "tag", "end-tag", "pi"],
)
def test_markup_left_unfinished_ends_the_html_at_once(unfinished: str) -> None:
    # html.parser (before Python 3.11.14, 3.12.12, 3.13.6) read an unfinished construct as text at the
    # end of input and tried again at every "<" after it, each time to the end: quadratic. HTML5 ends
    # the markup at an unfinished tag, as the converter now does.
    mail, inbound, seconds = read(html_mail("<p>Printer on fire</p>" + unfinished))
    assert seconds < LIMIT
    assert mail.text == inbound.text == "Printer on fire"


# -- MIME headers of thousands of parameters -------------------------------------------------------

PARAMETERS = "".join(f";\r\n a{n}=b" for n in range(20_000))  # about 200 KB
CONTINUATIONS = "".join(f";\r\n name*{n}*=utf-8''%C3" for n in range(10_000))  # RFC 2231 pieces


@pytest.mark.parametrize(
    "mime",
    [
        f"Content-Type: text/plain{PARAMETERS}\r\n\r\nHello.\r\n",
        f"Content-Type: text/plain\r\nContent-Disposition: inline{PARAMETERS}\r\n\r\nHello.\r\n",
        "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        f"--B\r\nContent-Type: text/plain{PARAMETERS}\r\n\r\nHello.\r\n--B--\r\n",
        "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        f"--B\r\nContent-Type: text/plain\r\nContent-Disposition: inline{PARAMETERS}\r\n\r\nHello.\r\n--B--\r\n",
        "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        f"--B\r\nContent-Type: text/plain{CONTINUATIONS}\r\n\r\nHello.\r\n--B--\r\n",
        "Content-Type: multipart/alternative; boundary=B\r\n\r\n"
        f"--B\r\nContent-Type: text/html{PARAMETERS}\r\n\r\n<p>Hello.</p>\r\n--B--\r\n",
    ],
    ids=["type", "disposition", "part-type", "part-disposition", "part-rfc2231", "part-html"],
)
def test_a_mime_header_of_thousands_of_parameters_is_read_at_once(mime: str) -> None:
    # The standard library parses a part's Content-Type and Content-Disposition anew at every
    # question (13 to 21 a mail), some microseconds a character: 5-30 s here before.
    mail, inbound, seconds = read((HEAD + mime).encode())
    assert seconds < LIMIT
    # Malformed: its part is text/plain (RFC 2045 §5.2), read like any, so nothing is lost.
    assert "Hello." in mail.text and "Hello." in inbound.text
    assert mail.attachments == () and not inbound.automatic


def test_a_multipart_type_of_thousands_of_parameters_is_read_as_its_text() -> None:
    # Even its boundary is lost in a header that cannot be read: its body is text/plain, whole.
    mime = (
        f"Content-Type: multipart/mixed; boundary=B{PARAMETERS}\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nHello.\r\n--B--\r\n"
    )
    mail, inbound, seconds = read((HEAD + mime).encode())
    assert seconds < LIMIT
    assert inbound.text == mail.text == "--B\nContent-Type: text/plain\n\nHello.\n--B--"


def test_a_mime_header_too_long_to_be_real_is_malformed() -> None:
    # The bound (4,096 characters as written) is far over any real header, a file name in RFC 2231
    # pieces too. At it, the part is what it says; over it, text/plain: its bytes are the mail's text.
    def mail_with(value: str) -> Mail:
        mime = (
            "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nHello.\r\n"
            f"--B\r\nContent-Type: {value}\r\n\r\nnot a png\r\n--B--\r\n"
        )
        return read((HEAD + mime).encode())[0]

    at_bound = "image/png; name=shot.png; x=" + "y" * 4068
    assert len(at_bound) == 4096
    named = mail_with(at_bound)
    assert named.text == "Hello." and [file.name for file in named.attachments] == ["shot.png"]
    malformed = mail_with(at_bound + "y")
    assert malformed.text == "Hello.\n\nnot a png" and malformed.attachments == ()


def test_a_mail_of_thousands_of_parts_asks_each_part_once() -> None:
    # Each part's headers parsed once, not at every question: 5,000 parts took about 4 s before.
    part = 'Content-Type: text/plain; charset="utf-8"; format=flowed\r\nContent-Disposition: inline\r\n\r\nHello.\r\n'
    mime = "Content-Type: multipart/mixed; boundary=B\r\n\r\n" + f"--B\r\n{part}" * 5_000 + "--B--\r\n"
    mail, inbound, seconds = read((HEAD + mime).encode())
    assert seconds < LIMIT
    assert inbound.text.startswith("Hello.\n\nHello.") and mail.attachments == ()


# -- many parts, each with a long MIME header -------------------------------------------------------


def multipart(parts: list[str]) -> bytes:
    """A multipart/mixed mail of `parts` (each its headers, a blank line and its body)."""
    body = "".join(f"--B\r\n{part}\r\n" for part in parts)
    return (HEAD + "Content-Type: multipart/mixed; boundary=B\r\n\r\n" + body + "--B--\r\n").encode()


def long_type(number: int, length: int, media_type: str = "text/plain; charset=utf-8") -> str:
    """A Content-Type of `length` characters, its own in each part: parameters nobody reads."""
    return (f"{media_type}; part={number}; " + "; ".join(f"x{n}=y" for n in range(length // 5)))[:length]


def test_a_hundred_parts_with_long_content_types_are_read_at_once() -> None:
    # Each Content-Type of 900 characters (short of the 4,096 that make one malformed), the structured
    # parser's some microseconds a character three times a part, the older parser's at each question:
    # 2.3 s before. Now a mail's MIME headers are read once each, by the structured parser up to a
    # budget, and only their first parameters.
    mail, inbound, seconds = read(
        multipart([f"Content-Type: {long_type(n, 900)}\r\n\r\nHello {n}." for n in range(100)])
    )
    assert seconds < LIMIT
    assert mail.text == inbound.text == "\n\n".join(f"Hello {n}." for n in range(100))
    assert mail.attachments == () and not inbound.automatic


def test_a_thousand_parts_with_thousands_of_parameters_are_read_at_once() -> None:
    # 4,000 characters of parameters in each Content-Type, a 4 MB mail: 3 s with every parameter read.
    # (999 parts: with the multipart, the 1,000 whose text is read.)
    mail, _inbound, seconds = read(
        multipart([f"Content-Type: {long_type(n, 4000)}\r\n\r\nHello {n}." for n in range(999)])
    )
    assert seconds < LIMIT
    assert mail.text == "\n\n".join(f"Hello {n}." for n in range(999))


def test_a_parts_parameters_are_split_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The standard library splits a header's parameters anew at every question asked of them (six
    # of a text part here), some microseconds each: the mail of 999 parts above took 1.3 s, not 0.6.
    splits: list[str] = []
    split = email.utils.decode_params
    monkeypatch.setattr(email.utils, "decode_params", lambda params: splits.append(params[0][0]) or split(params))
    parts = [f"Content-Type: {long_type(n, 900)}\r\nContent-Disposition: inline\r\n\r\nHello {n}." for n in range(100)]
    mail = read(multipart(parts))[0]
    assert mail.text == "\n\n".join(f"Hello {n}." for n in range(100))
    # Each part's Content-Type and Content-Disposition, and the multipart's (its boundary).
    assert len(splits) == 2 * 100 + 1


def test_mime_headers_read_as_written_past_the_budget_read_mail_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    # Past the structured parser's budget, a MIME header is read as written: a header as mail clients
    # write it gives the same text and files. Here every one of them is, in every mail of the corpus
    # and in one with Latin-1 text and a file named in RFC 2231 pieces.
    files = sorted((Path(__file__).parent / "corpus").glob("*.eml"))
    pieces = (
        HEAD + "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Ol\xe1, \xe9 urgente.\r\n--B\r\n"
        "Content-Type: application/pdf;\r\n name*0*=utf-8''relat%C3%B3rio;\r\n name*1*=%20mar%C3%A7o.pdf\r\n"
        "Content-Disposition: attachment;\r\n filename*0*=utf-8''relat%C3%B3rio;\r\n filename*1*=%20mar%C3%A7o.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--B--\r\n"
    ).encode("latin-1")
    mails = [path.read_bytes() for path in files] + [pieces]

    def facts(raw: bytes) -> tuple[object, ...]:
        mail = read(raw)[0]
        return mail.text, mail.full_text, mail.automatic, [(f.name, f.media_type, f.sha256) for f in mail.attachments]

    parsed = [facts(raw) for raw in mails]
    monkeypatch.setattr(reading, "_PARSED_PER_MAIL", 0)
    assert [facts(raw) for raw in mails] == parsed
    assert len(files) >= 30 and parsed[-1][0] == "Olá, é urgente." and parsed[-1][3][0][0] == "relatório março.pdf"


def test_fifty_files_named_in_rfc_2047_words_are_read_by_their_names() -> None:
    # Not the stall but its budget's guard: a real mail's MIME headers are all read by the structured
    # parser, each once however often it is asked about, so every file named as Outlook names them
    # ("=?utf-8?B?…?=", which only that parser decodes) is read by its name.
    def part(number: int) -> str:
        name = email.header.Header(f"relatório de março nº {number}.pdf", "utf-8").encode()
        return (
            f'Content-Type: application/pdf; name="{name}"\r\n'
            f'Content-Disposition: attachment; filename="{name}"; size=9;\r\n'
            f' creation-date="Thu, 03 Dec 2026 10:00:00 GMT";\r\n modification-date="Thu, 03 Dec 2026 10:00:00 GMT"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK"
        )

    mail = read(multipart(["Content-Type: text/plain\r\n\r\nThe reports.", *(part(n) for n in range(50))]))[0]
    assert mail.text == "The reports."
    assert [file.name for file in mail.attachments] == [f"relatório de março nº {n}.pdf" for n in range(50)]


# -- a forwarded message's headers, written as they came ---------------------------------------------


def forward(message: str) -> bytes:
    """A mail forwarding `message` (RFC 5322 text, CRLF lines) as an attachment (message/rfc822)."""
    return (
        HEAD + "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n"
        f"--B\r\nContent-Type: message/rfc822\r\n\r\n{message}\r\n--B--\r\n"
    ).encode()


def test_a_forwarded_message_with_a_header_line_of_190_kb_is_kept_at_once() -> None:
    # The standard library folded every header line over 78 characters again to write the forwarded
    # message's bytes (a file, .eml): a line of 190 KB of words took 1.7 s, in time quadratic in them.
    words = " ".join(["word"] * 38_000)
    message = f"From: Sync <sync@example.com>\r\nSubject: Erro\r\nX-Trace: {words}\r\n\r\nThe sync failed."
    mail, inbound, seconds = read(forward(message))
    assert seconds < LIMIT
    assert mail.text == inbound.text == "See below."
    (forwarded,) = mail.attachments
    assert forwarded.data is not None and f"\nX-Trace: {words}\n".encode() in forwarded.data
    again = email.message_from_bytes(forwarded.data, policy=policy.default)
    assert (again["Subject"], again["X-Trace"], again.get_content()) == ("Erro", words, "The sync failed.")


def test_a_forwarded_message_is_kept_as_it_came() -> None:
    # Not the stall but its fix's guard: a forwarded message is its sender's bytes (but for its line
    # ends), its long lines not folded again nor its 8-bit Subject encoded, so that, say, its DKIM
    # signature still verifies.
    message = (
        "Received: from mail-wr1-f54.google.com (mail-wr1-f54.google.com [209.85.221.54]) by mx.example.com"
        " (Postfix) with ESMTPS id 4R7kX21mVbz9sQ for <support@example.com>; Thu, 3 Dec 2026 09:00:00 +0000\r\n"
        "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; h=from:subject;\r\n\tbh=abc=; b=xyz\r\n"
        "From: =?utf-8?q?Jo=C3=A3o?= <joao@example.com>\r\nSubject: Erro na sincronização das 06:00, ligação recusada"
        " por 10.1.2.3:8443 outra vez\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nA sincronização falhou."
    )
    (forwarded,) = read(forward(message))[0].attachments
    assert forwarded.name == "attachment-1.eml"
    assert forwarded.data == message.replace("\r\n", "\n").encode()
