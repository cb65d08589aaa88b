"""A status whose HTML would hold the Mastodon channel's receive thread for seconds.

A remote server sends whatever HTML it likes as a status's `content`; the status is read on the
thread that receives every other customer's. It is read here as the channel reads a notification
(`notification_to_inbound`, on the JSON of the recorded direct status), in a generous time that the
code before took several times over. The time is the reading thread's CPU time, as for hostile mail
(tests/email/test_hostile_mail.py): CI is a busy 2-core machine. The bound is the one every channel's
HTML has (`adapters.html_text.bounded`): what is read up to it is kept, nothing is raised.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.channel import Inbound
from adapters.html_text import MAX_HTML, MAX_HTML_TAGS
from adapters.mastodon.inbound import notification_to_inbound

#: The recorded direct status (Mastodon 4.7.3, a copy of ../shared/reference/mastodon/examples/).
STATUS = json.loads(
    (Path(__file__).parents[1] / "fakes" / "mastodon" / "payloads" / "status_post_direct_with_mention.json").read_text()
)["body"]
#: The account it mentions plays the bot: its mention is taken out of the text.
BOT_ID = STATUS["mentions"][0]["id"]
#: Its mention as the status writes it.
MENTION = STATUS["content"].removeprefix("<p>").removesuffix(" ilu bby ;3</p>")
#: Seconds a hostile status may take to read: 0.4-0.65 s on a slow day of a 2-core AMD machine, about
#: half as much again under the suite's own load; before the bound, 1.5-3.2 s (the bound itself is
#: checked by the text read: "never read").
LIMIT = 2.0


def read(content: str) -> tuple[Inbound, float]:
    """The Inbound of a mention notification of the recorded status with `content`, as the channel
    reads one from the stream or a poll, and the CPU seconds it took."""
    status = copy.deepcopy(STATUS)
    status["content"] = content
    notification: dict[str, Any] = {
        "id": "47",
        "type": "mention",
        "created_at": status["created_at"],
        "account": status["account"],
        "status": status,
    }
    began = time.thread_time()
    inbound = notification_to_inbound(notification, own_account_id=BOT_ID, local_domain="localhost")
    return inbound, time.thread_time() - began


def test_the_recorded_status_is_read() -> None:
    assert read(STATUS["content"])[0].text == "ilu bby ;3"


@pytest.mark.parametrize("unit", ["<b>", "<a><i>", "<a><i></i></a>", "<p>", "<p></p>", "<br>", "<span>x"])
def test_a_mib_of_tiny_tags_is_read_at_once_up_to_the_bound(unit: str) -> None:
    # html.parser takes microseconds a tag: a MiB of them took 1-1.8 s before. As of a mail's HTML,
    # only the first MAX_HTML_TAGS are read; what follows them, within MAX_HTML, is not.
    filler = unit * ((MAX_HTML - 200) // len(unit))
    assert filler.count("<") > MAX_HTML_TAGS
    inbound, seconds = read(f"<p>{MENTION} Printer on fire</p>{filler}<p>never read</p>")
    assert seconds < LIMIT
    assert inbound.text.startswith("Printer on fire")
    assert "never read" not in inbound.text


def test_html_over_a_mib_is_read_up_to_it() -> None:
    # Fewer tags than the bound but more than MAX_HTML characters: the start is read, cut before a tag.
    paragraph = "<p>" + "word " * 40 + "</p>"
    paragraphs = paragraph * (MAX_HTML // len(paragraph) + 1)
    inbound, seconds = read(f"<p>{MENTION} Printer on fire</p>{paragraphs}<p>never read</p>")
    assert seconds < LIMIT
    assert inbound.text.startswith("Printer on fire\n\nword word")
    assert "never read" not in inbound.text


def test_a_persons_long_status_is_read_whole() -> None:
    # Not the stall but its bound's guard: 5,000 paragraphs with links (some 400,000 characters, far
    # over what any server lets a person post) are read to the end.
    line = '<p>Job {n} failed, see <a href="https://x.example/{n}">x.example/{n}</a>.</p>'
    count = 5_000
    inbound, seconds = read(f"<p>{MENTION} Printer on fire</p>" + "".join(line.format(n=n) for n in range(count)))
    assert seconds < LIMIT
    assert inbound.text.split("\n\n") == ["Printer on fire"] + [
        f"Job {n} failed, see https://x.example/{n}." for n in range(count)
    ]
