"""Hostile mail that held the email channel's receive thread for seconds (bench/fuzz.py --only email).

A mail is read on the thread that receives every other: seconds spent on one hold every customer's
mail for as long, at every attempt. Each mail here is read through `read_mail` (and `read_headers`,
as a mail too large to fetch is) and `mail_to_inbound`, in a generous time that the code before took
several times over, and what is read is checked: a hostile mail is still a customer's mail, stored
and answered. The time is the reading thread's CPU time: CI is a busy 2-core machine, where the
time on the clock also counts the turns of every other process.
"""

from __future__ import annotations

import time

import pytest

from adapters.channel import Inbound
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
    # Only the first MAX_HTML_TAGS are read; what follows them, within MAX_HTML, is not.
    filler = unit * ((MAX_HTML - 100) // len(unit))
    assert filler.count("<") > MAX_HTML_TAGS
    mail, inbound, seconds = read(html_mail(f"<p>Printer on fire</p>{filler}<p>never read</p>"))
    assert seconds < LIMIT
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
