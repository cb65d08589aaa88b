"""An engineer's Zulip words as the customer reads them (`adapters.zulip.plain`)."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.zulip.plain import for_customer

SITE = "https://chat.example.com"
#: Zulip's web app: what it writes for a topic its short form cannot hold (`topic_link_util`).
ESCAPED = {"`": "&#96;", ">": "&gt;", "*": "&#42;", "&": "&amp;", "[": "&#91;", "]": "&#93;"}


def narrow(topic: str) -> str:
    """Zulip's `encodeHashComponent`: the topic's part of a `#narrow/…` address."""
    return quote(topic, safe="").replace("%", ".").replace("(", ".28").replace(")", ".29")


def topic_link(topic: str) -> str:
    """The link Zulip's compose box writes for a topic with awkward characters."""
    words = "".join(ESCAPED.get(char, char) for char in topic)
    return f"[#support > {words}](#narrow/channel/12-support/topic/{narrow(topic)})"


# -- links into the organisation: gone with their words, on every channel --------------------


@pytest.mark.parametrize(
    ("written", "read"),
    [
        # The audit's case: Zulip's own link to a topic named after another customer's subject.
        (f"See {topic_link('#2 Beta Corp: glob *.log fails after upgrade')} for details.", "See for details."),
        (
            "See [#support > #2 Beta Corp: glob *.log fails after upgrade](#narrow/channel/12-support/topic/x) now",
            "See now",
        ),
        ("See #**support>#2 Beta Corp: glob *.log fails after upgrade** for details.", "See for details."),
        ("like #**support>#7 Beta: jam**, fixed", "like, fixed"),
        ("as #**support>#7 Beta: jam@1234** said", "as said"),
        ("#**support** is where", "is where"),
        # Topic names with `>`, `)`, backticks and brackets, as Zulip escapes them and as typed.
        (f"a {topic_link('#3 Gamma: a > b `x` (y) [z]')} b", "a b"),
        ("a [#support > #3 Gamma: a] b (c)](#narrow/channel/12-support/topic/x) b", "a b"),
        ("a [#support > #3 Gamma: [draft](#narrow/channel/12-support/topic/x) b", "a b"),
        ("a [#support > #3 Gamma: ][x](#narrow/channel/12-support/topic/x) b", "a b"),
        ("a [#support > #3 Gamma: x](y](#narrow/channel/12-support/topic/x) b", "a b"),
        ("a #**support>#3 Gamma: a **bold** b** b", "a b"),
        ("a #**support>#3 Gamma: x ** y** b", "a b"),
        ("a #**support>#3 Gamma: x**y z**w** b", "a b"),
        ("a [Gamma [draft](#narrow/channel/12-support/topic/x) b", "a b"),
        ("[a](https://x.example) Gamma] c](#narrow/channel/12-support/topic/x) ok", "[a](https://x.example) ok"),
        ("a #**support>#3 Gamma: never closed", "a"),
        # Addresses of the web app, in links (with a title, in <…>, an image) and written out.
        (f"ask {SITE}/#narrow/dm/12-Erin now", "ask now"),
        (f"ask <{SITE}/#narrow/dm/12-Erin>.", "ask."),
        ("ask http://CHAT.example.com/#narrow/dm/12-Erin now", "ask now"),
        ("ask http://chat.example.com/#user/12-Erin now", "ask now"),
        ("[Erin](https://CHAT.example.com/#user/12) knows", "knows"),
        ("ask chat.example.com/#narrow/dm/12-Erin, now", "ask, now"),
        ("ask x#narrow/channel/12-support/topic/Beta now", "ask now"),
        (f"[Beta's case]({SITE}/#narrow/channel/12-support/topic/x/near/9) is alike", "is alike"),
        (f'[Beta\'s case]({SITE}/#narrow/channel/12-support/topic/x "Beta") is alike', "is alike"),
        ("[Beta's case](</#narrow/channel/12-support/topic/x>) is alike", "is alike"),
        ("![Beta's screen](#narrow/channel/12-support/topic/x) is alike", "is alike"),
        (f"[Erin]({SITE}/#user/12) knows", "knows"),
        (f"see [x]({SITE}/#narrow/channel/5-support/topic/a(b)c) end", "see end"),
        ("two [#support > Beta](#narrow/a) and [#support > Gamma](#narrow/b) gone", "two and gone"),
        # A mention is the person's or group's name (no id, no marks); a wildcard says nothing.
        ("Thanks @**Erin Engineer|12**!", "Thanks Erin Engineer!"),
        ("cc @_**Ana** and @*support-team* and @_*oncall*.", "cc Ana and support-team and oncall."),
        ("@**all** look, @**topic**", "look,"),
        # "Quote and reply": the link to where it was said goes, who said it stays.
        (
            f"@_**Ana|7** [said]({SITE}/#narrow/channel/5-support/topic/x/near/9):\n```quote\nit broke\n```\nFixed.",
            "Ana:\n```quote\nit broke\n```\nFixed.",
        ),
        # What is not a link into the organisation stays.
        ("as [#3] see [here](#narrow/channel/12-support/topic/x) ok", "as [#3] see ok"),
        ("mail ana@example.com about #3", "mail ana@example.com about #3"),
    ],
)
def test_a_link_into_the_organisation_goes_with_its_words_on_every_channel(written: str, read: str) -> None:
    assert for_customer(written, SITE, on_zulip=True) == read
    for name in ("Beta", "Gamma", "Erin", "Ana", "support", "narrow", "oncall", "all"):
        if name not in read:
            assert name not in for_customer(written, SITE, on_zulip=False)


@pytest.mark.parametrize(
    ("written", "on_zulip", "elsewhere"),
    [
        (
            "See #**support>#2 Beta** and **bold** too",
            "See and **bold** too",
            "See and bold too",
        ),
        ("**see #**support>Beta** now**", "**see now**", "see now"),
        (
            "see [the guide](https://docs.example/x) and [zulip](https://chat.zulip.org/#narrow/channel/1-a)",
            "see [the guide](https://docs.example/x) and [zulip](https://chat.zulip.org/#narrow/channel/1-a)",
            "see the guide (https://docs.example/x) and zulip (https://chat.zulip.org/#narrow/channel/1-a)",
        ),
        (
            f"[uploads]({SITE}/user_uploads/2/a/x.pdf)",
            f"[uploads]({SITE}/user_uploads/2/a/x.pdf)",
            f"uploads ({SITE}/user_uploads/2/a/x.pdf)",
        ),
    ],
)
def test_links_outside_the_organisation_stay(written: str, on_zulip: str, elsewhere: str) -> None:
    assert for_customer(written, SITE, on_zulip=True) == on_zulip
    assert for_customer(written, SITE, on_zulip=False) == elsewhere


def test_without_the_sites_address_relative_links_still_go() -> None:
    assert for_customer("a [#support > Beta](#narrow/x) b", "", on_zulip=True) == "a b"


#: Names as customers' subjects make them, with every character Zulip's syntax uses.
names = st.text(st.sampled_from("abZ *>[]()`&$_~:#!|@"), max_size=30)
#: How an engineer may point at the topic "#2 Zecret <name>": short forms typed, Zulip's own
#: fallback link, one typed with the raw name, the address.
POINTERS = [
    lambda name: f"#**support>#2 Zecret {name}**",
    lambda name: f"#**support>#2 Zecret {name}@77**",
    lambda name: topic_link(f"#2 Zecret {name}"),
    lambda name: f"[#support > #2 Zecret {name}](#narrow/channel/12-support/topic/{narrow(name)})",
    lambda name: f"{SITE}/#narrow/channel/12-support/topic/{narrow('#2 Zecret ' + name)}",
]


@given(names, st.sampled_from(range(len(POINTERS))), st.sampled_from(["", "**bold** ", "*it* ", "[x](https://a.b) "]))
def test_no_name_inside_the_organisation_reaches_a_customer(name: str, pointer: int, before: str) -> None:
    written = f"Look {before}{POINTERS[pointer](name)} thanks **now**"
    for on_zulip in (True, False):
        read = for_customer(written, SITE, on_zulip=on_zulip)
        assert "Zecret" not in read and "#narrow" not in read
        if pointer in (2, 4):  # Zulip's own links have a certain start and end: the words around stay
            assert read.startswith("Look") and "thanks" in read


# -- Zulip's markdown as plain text, for customers on other channels --------------------------


@pytest.mark.parametrize(
    ("written", "elsewhere"),
    [
        ("Thanks **Ana**, it is *one* step, not ~~two~~.", "Thanks Ana, it is one step, not two."),
        ("***all*** of it", "all of it"),
        ("call `__init__` in snake_case or _this_ or __that__", "call __init__ in snake_case or _this_ or __that__"),
        ("run `ls *.log` then ``a ` b``", "run ls *.log then a ` b"),
        ("```bash\necho hi\n\nls | wc\n```\nThen:", "    echo hi\n\n    ls | wc\n\nThen:"),
        ("~~~\n**not bold** :tada:\n~~~", "    **not bold** :tada:"),
        ("```math\n\\frac{a}{b}\n```", "    \\frac{a}{b}"),
        ("so $$x_1 * y^2$$ holds", "so x_1 * y^2 holds"),
        ("> it broke\n> > twice\n\nFixed.", "> it broke\n>\n> > twice\n\nFixed."),
        ("```quote\nit **broke**\nagain\n```\nFixed.", "> it broke\n> again\n\nFixed."),
        ("```spoiler Logs *here*\nline **1**\n```", "Logs here:\nline 1"),
        ("```spoiler\nline 1\n```", "line 1"),
        (
            "Steps:\n- one\n- **two**\n  - two and a half\n\n3. three\n4. four",
            "Steps:\n\n- one\n- two\n  - two and a half\n\n3. three\n4. four",
        ),
        ("* star\n* list", "* star\n* list"),
        (
            "| option | value |\n|---|---|\n| **retries** | 3 |\n| pipe | `a|b` |",
            "option | value\nretries | 3\npipe | a|b",
        ),
        ("Done :tada: :slight_smile: :+1:", "Done 🎉 🙂 👍"),
        ("our :company_logo: a:b:c 10:30:45", "our :company_logo: a:b:c 10:30:45"),
        ("`:tada:` stays", ":tada: stays"),
        ("see [the guide](https://docs.example/x)", "see the guide (https://docs.example/x)"),
        (
            "see [https://a.example](https://a.example) and <https://b.example>",
            "see https://a.example and https://b.example",
        ),
        ("![the plan](https://i.example/p.png)", "the plan (https://i.example/p.png)"),
        ("at <time:2026-12-07T10:00:00+00:00>", "at 2026-12-07T10:00:00+00:00"),
        ("# Cause\nThe disk.\n\n---\nDone", "Cause\n\nThe disk.\n\n---\n\nDone"),
        ("AT&amp;T &lt;b&gt; <b>x</b> a\\*b", "AT&T <b> <b>x</b> a\\*b"),
        ("    code  with  spaces\n**bold** stays", "    code  with  spaces\n\nbold stays"),
        # Zulip has no underlined headings and no reference links: the lines stay as written.
        ("Thanks\n---\nmore", "Thanks\n\n---\n\nmore"),
        ("see [1]\n\n[1]: https://x.example", "see [1]\n\n[1]: https://x.example"),
    ],
)
def test_zulips_markdown_is_plain_text_elsewhere_and_stays_on_zulip(written: str, elsewhere: str) -> None:
    assert for_customer(written, SITE, on_zulip=False) == elsewhere
    assert for_customer(written, SITE, on_zulip=True) == written.strip()


#: Words and what Zulip's markdown puts around them.
words = st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True)
MARKUPS = ["{}", "**{}**", "*{}*", "~~{}~~", "`{}`", "[{}](https://ex.example/{})", "{} :tada:", "$${}$$"]
pieces = st.tuples(words, st.sampled_from(MARKUPS)).map(lambda p: p[1].replace("{}", p[0]))
separators = st.sampled_from([" ", " ", "\n", "\n\n", "\n- ", "\n> ", "\n1. "])


@given(st.lists(st.tuples(pieces, separators), min_size=1, max_size=12))
def test_no_markup_reaches_a_customer_elsewhere_and_every_word_does(parts: list[tuple[str, str]]) -> None:
    written = "".join(piece + separator for piece, separator in parts)
    read = for_customer(written, SITE, on_zulip=False)
    for mark in ("**", "~~", "`", "$$", "](", ":tada:"):
        assert mark not in read
    # Every word, in order (a link's address repeats its word).
    address = r"\(https://ex\.example/\w+\)"
    assert re.findall(r"[A-Za-z]+", re.sub(address, "", read)) == re.findall(
        r"[A-Za-z]+", re.sub(rf"{address}|:tada:", "", written)
    )
    assert for_customer(written, SITE, on_zulip=True) == written.strip()


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200))
def test_the_words_of_text_without_markup_survive(text: str) -> None:
    marks = set("@#:[]<>`~*_\\&|$\x00") | {"http"}
    if not any(mark in text for mark in marks):
        assert for_customer(text, SITE, on_zulip=True) == text.strip()
        assert re.findall(r"[^\W\d_]+", for_customer(text, SITE, on_zulip=False)) == re.findall(r"[^\W\d_]+", text)


def test_deep_or_long_markup_is_written_out_quickly() -> None:
    nested = "```quote\n" * 400 + "the bottom"
    assert "the bottom" in for_customer(nested, SITE, on_zulip=False)
    started = time.monotonic()
    for written in ("](" * 5000, "](https://x" * 1000, "#**" * 3300, "[#support > a](#narrow/x)" * 400):
        for on_zulip in (True, False):
            for_customer(written, SITE, on_zulip=on_zulip)
    assert time.monotonic() - started < 3
