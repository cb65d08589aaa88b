"""An engineer's Zulip words as the customer reads them (`adapters.zulip.plain`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.zulip.plain import for_customer

SITE = "https://chat.example.com"


@pytest.mark.parametrize(
    ("written", "elsewhere", "on_zulip"),
    [
        ("Thanks @**Erin Engineer|12**!", "Thanks Erin Engineer!", "Thanks @**Erin Engineer|12**!"),
        ("cc @_**Ana** and @*support-team*", "cc Ana and support-team", "cc @_**Ana** and @*support-team*"),
        ("Done :tada: :slight_smile: :+1:", "Done 🎉 🙂 👍", "Done :tada: :slight_smile: :+1:"),
        ("our :company_logo: a:b:c 10:30:45", "our :company_logo: a:b:c 10:30:45", "our :company_logo: a:b:c 10:30:45"),
        (
            "see [the guide](https://docs.example/x)",
            "see the guide (https://docs.example/x)",
            "see [the guide](https://docs.example/x)",
        ),
        (
            "see [https://a.example](https://a.example)",
            "see https://a.example",
            "see [https://a.example](https://a.example)",
        ),
        ("like #**support>#7 Beta: jam**, fixed", "like, fixed", "like, fixed"),
        ("#**support** is where", "is where", "is where"),
        (f"ask {SITE}/#narrow/dm/12-Erin now", "ask now", "ask now"),
        (f"@_**Ana|7** [said]({SITE}/#narrow/channel/5-support/topic/x/near/9):", "Ana said:", "@_**Ana|7** said:"),
        ("at <time:2026-12-07T10:00:00+00:00>", "at 2026-12-07T10:00:00+00:00", "at <time:2026-12-07T10:00:00+00:00>"),
        (
            "```quote\nit broke\nagain\n```\nFixed.",
            "> it broke\n> again\n\nFixed.",
            "```quote\nit broke\nagain\n```\nFixed.",
        ),
        ("```spoiler Logs\nline 1\n```", "Logs:\nline 1", "```spoiler Logs\nline 1\n```"),
        (
            "    code  with  spaces\n**bold** stays",
            "code  with  spaces\n**bold** stays",
            "code  with  spaces\n**bold** stays",
        ),
    ],
)
def test_zulips_markup_is_plain_elsewhere_and_its_links_go_everywhere(written, elsewhere, on_zulip) -> None:
    assert for_customer(written, SITE, on_zulip=False) == elsewhere
    assert for_customer(written, SITE, on_zulip=True) == on_zulip


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200))
def test_plain_text_without_markup_is_left_as_it_is(text: str) -> None:
    marks = set("@#:[]<`~*\x00") | {"http"}
    if not any(mark in text for mark in marks):
        assert for_customer(text, SITE, on_zulip=False) == text.strip()
