"""The header above a quote in a case topic (`Outbound.said`): the Zulip channel writes it, names inert.

Judged with tests/zulip/markdown_check.py (what Zulip would make active), then
sent through the fake as the dispatcher sends a mirrored row.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.channel import Outbound, Said
from adapters.zulip import ZulipChannel
from adapters.zulip.markup import _PLAIN_ADDRESS, inert, said_header, their_words
from tests.fakes.zulip import FakeZulip
from tests.zulip.conftest import BOT, STREAM
from tests.zulip.markdown_check import HOSTILE, active_markup, render
from tests.zulip.relay_check import parse_relayed

TOPIC = "#1 Alice Customer: printer"


def one_line(text: str) -> str:
    return " ".join("".join(c for c in text if c.isspace() or c.isprintable()).split())


# -- the header lines ----------------------------------------------------------------------------------


def test_the_headers_are_the_lines_engineers_know() -> None:
    customer = Said("Alice Customer", "zulip", "alice@example.com")
    assert said_header(customer) == "**`Alice Customer`** via zulip (`alice@example.com`) wrote:"
    assert said_header(Said("Bob", "mastodon", "bob@remote.example")) == (
        "**`Bob`** via mastodon (`bob@remote.example`) wrote:"
    )
    engineer = Said("eng@example.com", "mastodon", role="engineer")
    assert said_header(engineer) == "**eng@example.com** replied to the customer via mastodon:"
    # A Zulip account is keyed by its user id (issue 13); an email stored before is shown as it is.
    assert said_header(Said("Alice", "zulip", "12")) == "**`Alice`** via zulip (user `12`) wrote:"
    assert said_header(Said("Bob", "mastodon", "12")) == "**`Bob`** via mastodon (`12`) wrote:"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_customer_name_or_address_stays_inert(hostile: str) -> None:
    header = said_header(Said(f"{hostile} Ltd", "mastodon", f"{hostile}@remote.example"))
    rendered = render(header)
    assert rendered.active == [], (header, rendered.active)
    assert [span.strip(" ") for span in rendered.code] == [
        one_line(f"{hostile} Ltd"),
        one_line(f"{hostile}@remote.example"),
    ]
    assert header.endswith(" wrote:") and "\n" not in header


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_engineer_name_stays_inert(hostile: str) -> None:
    header = said_header(Said(hostile, "zulip", role="engineer"))
    rendered = render(header)
    assert rendered.active == [], (header, rendered.active)
    assert [span.strip(" ") for span in rendered.code] == [one_line(hostile)]
    assert header.endswith(" replied to the customer via zulip:") and "\n" not in header


def test_only_a_plain_address_is_written_as_is() -> None:
    assert said_header(Said("erin.o'neil+desk@support-team.example.com", "zulip", role="engineer")).startswith(
        "**erin.o'neil+desk@support-team.example.com** "
    )
    for name in ("eng@example.com:", "eng@example.com x", "eng@example.com\n/poll", "Erin", "@**all**@x.com"):
        assert said_header(Said(name, "zulip", role="engineer")).startswith("**`"), name


# -- inert, the one inline rule under the headers ----------------------------------------------------------

MARKUP = st.text(alphabet=st.sampled_from("`\\@*_[]()!:$#~>/ \n\t\x00\x1bab.|<"), max_size=60)


@given(MARKUP)
def test_inert_is_one_code_span_holding_the_text(value: str) -> None:
    rendered = render(f"• #1 {inert(value)} · open")
    assert rendered.active == []
    shown = one_line(value)
    if shown:
        [span] = rendered.code
        assert span.strip(" ") == shown.strip(" ") and len(span) - len(shown) in (0, 2)
    else:
        assert rendered.code == [] and inert(value) == ""


@given(MARKUP, MARKUP, st.sampled_from(["customer", "engineer"]))
def test_name_and_address_stay_apart_in_a_header(name: str, address: str, role: str) -> None:
    said = Said(name, "zulip", address, "customer") if role == "customer" else Said(name, "zulip", role="engineer")
    rendered = render(said_header(said))
    assert rendered.active == []
    values = (name, address) if role == "customer" else (name,)
    if role == "engineer" and _PLAIN_ADDRESS.fullmatch(name):
        values = ()  # the engineers' own addresses, from the configuration, are written as they are
    assert [s.strip(" ") for s in rendered.code] == [one_line(v).strip(" ") for v in values if one_line(v)]


# -- through the fake, as the dispatcher sends a mirrored row ----------------------------------------------


def mirrored(outbox_id: int, said: Said | None, quote: str, text: str = "") -> Outbound:
    return Outbound(outbox_id, "zulip", "topic", text, topic=TOPIC, quote=quote, said=said)


def test_a_row_with_said_gets_the_header_then_the_fenced_quote(
    fake: FakeZulip, make_channel: Callable[..., ZulipChannel]
) -> None:
    channel = make_channel()
    channel.start()
    channel.send(mirrored(1, Said("@**all**", "mastodon", "mallory@evil.example"), "hello @**all**"))
    channel.send(mirrored(2, Said("eng@example.com", "mastodon", role="engineer"), "Unplug it."))
    # Not expected from the core, but kept: text of the row's own follows the header.
    channel.send(mirrored(3, Said("Alice", "zulip", "alice@example.com"), "again", text="(edited)"))
    # Rows written before the core handed over `said` carry their header as text.
    channel.send(mirrored(4, None, "old", text="**`Alice`** via zulip (`alice@example.com`) wrote:"))
    customer, engineer, both, old = (parse_relayed(m.content) for m in fake.sent_by(BOT, stream=STREAM, topic=TOPIC))
    assert customer.outside[0] == "**`@**all**`** via mastodon (`mallory@evil.example`) wrote:"
    assert customer.inside == ["hello @**all**"]
    assert active_markup(customer.outside[0]) == []
    assert engineer.outside[0] == "**eng@example.com** replied to the customer via mastodon:"
    assert engineer.inside == ["Unplug it."]
    assert both.outside[:2] == ["**`Alice`** via zulip (`alice@example.com`) wrote:", "(edited)"]
    assert both.inside == ["again"]
    assert old.outside[0] == "**`Alice`** via zulip (`alice@example.com`) wrote:" and old.inside == ["old"]


# -- a customer's own words in the answers to them -------------------------------------------------------


@given(st.one_of(MARKUP, st.text(max_size=60), st.sampled_from(HOSTILE)))
def test_a_customers_words_never_act_in_an_answer_to_them(value: str) -> None:
    shown = their_words(value)
    rendered = render(f"Incident #1 is open: {shown}\nOne credit used.")
    assert rendered.active == [], (value, shown)
    if shown == value:  # as they wrote it: nothing Zulip would act on, so no code span either
        assert rendered.code == []
    elif one_line(value):
        [span] = rendered.code
        assert span.strip(" ") == one_line(value).strip(" ")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("VPN down since Monday, again", "VPN down since Monday, again"),
        ("Não consigo entrar (erro 500)!", "Não consigo entrar (erro 500)!"),
        ("It stopped. Then it started", "It stopped. Then it started"),
        ("see example.com", "`see example.com`"),
        ("report.pdf", "`report.pdf`"),
        ("@**all** help", "`@**all** help`"),
        ("snake_case __bold__", "`snake_case __bold__`"),
        ("line one\nline two", "`line one line two`"),
    ],
)
def test_plain_words_stay_as_they_are_and_the_rest_is_inert(value: str, shown: str) -> None:
    assert their_words(value) == shown


# -- values of any length: no code span is ever cut in two ------------------------------------------------

LONG_SUBJECT = "A" * 9_950 + " @**all** [x](https://evil.example) $$x$$ <time:2026-12-08T10:00:00Z> " + "B" * 300


def test_a_value_longer_than_a_message_is_cut_and_stays_one_code_span() -> None:
    shown = inert(LONG_SUBJECT)
    assert len(shown) <= 502 and shown.endswith("…`")
    rendered = render(f"• #1 {shown} · open")
    assert rendered.active == [] and len(rendered.code) == 1


def test_a_subject_of_ten_thousand_characters_acts_in_no_part_of_the_topic(
    fake: FakeZulip, make_channel: Callable[..., ZulipChannel]
) -> None:
    """An email Subject longer than a Zulip message made a header line the splitter had to cut, in
    the middle of its code span: the second part began with the Subject's end, `@**all**` acting."""
    channel = make_channel()
    channel.start()
    said = Said("A" * 20_000 + " @**all**", "email", "ana@example.com" + " @**all**" * 2_000, subject=LONG_SUBJECT)
    channel.send(mirrored(1, said, "#1 hello @**all**"))
    (message,) = fake.sent_by(BOT, stream=STREAM, topic=TOPIC)
    assert active_markup(message.content) == []
    assert parse_relayed(message.content).inside == ["#1 hello @**all**"]


def test_a_message_of_megabytes_is_shown_in_a_few_parts_and_says_how_much_was_left_out(
    fake: FakeZulip, make_channel: Callable[..., ZulipChannel]
) -> None:
    """A 3 MB mail was 303 posts: it buried the topic and, at Zulip's rate limits, held up every
    other answer on the channel for minutes. The store keeps it whole (tests/email)."""
    channel = make_channel()
    channel.start()
    channel.send(mirrored(1, Said("Ana", "email", "ana@example.com"), "x" * 3_000_000 + "\n@**all**"))
    parts = [m.content for m in fake.sent_by(BOT, stream=STREAM, topic=TOPIC)]
    assert len(parts) == 4
    assert all(active_markup(part) == [] for part in parts)
    assert "".join(line for part in parts for line in parse_relayed(part).inside) == "x" * 30_000
    assert parts[-1].endswith(
        "\n… 2,970,009 more characters not shown here; the whole message is kept with the case (deskbot cases export)."
    )
