"""Counting as Mastodon counts, neutralising mentions, splitting replies into threads.

The property tests run in CI with a bounded budget (a few seconds);
bench/fuzz.py runs the same oracle, `invariants.reply_violations`, at scale.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.mastodon.compose import (
    ReplyTooLong,
    fits_status,
    media_part,
    mention_for,
    neutralise_mentions,
    status_length,
    thread_parts,
)
from adapters.mastodon.invariants import reply_violations
from adapters.mastodon.mentions import ZWJ, third_party_mentions
from tests.fakes.mastodon.text import countable_length, find_mentions

LONG_URL = "https://support.example.com/knowledge-base/articles/12345-how-to-reset-your-password?ref=bot"


def test_url_counts_23_and_mention_counts_its_username() -> None:
    assert status_length(LONG_URL) == 23
    assert status_length("@alice@remote.example hi") == len("@alice hi")
    assert status_length("see " + LONG_URL + ".") == 4 + 23 + 1


def test_spoiler_counts_too() -> None:
    assert status_length("hello", spoiler_text="cw") == 7


def test_grapheme_clusters_count_once() -> None:
    pytest.importorskip("grapheme")
    assert status_length("👍🏽 e\u0301") == 3
    assert status_length("a\r\nb") == 3  # CR LF is one cluster, in ASCII too


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=60), st.integers(0, 80))
@example("\r\n" * 10, 10)
@example("e\u0301" * 10, 10)
def test_the_quick_fit_test_agrees_with_the_count(text: str, limit: int) -> None:
    assert fits_status(text, limit) == (status_length(text) <= limit)


def test_mention_for_local_and_remote() -> None:
    assert mention_for("carol@bot.example", "bot.example") == "@carol@bot.example"
    assert mention_for("carol", "bot.example") == "@carol@bot.example"
    assert mention_for("alice@remote.example", "bot.example") == "@alice@remote.example"


def test_neutralised_mentions_are_not_mentions_but_emails_and_urls_untouched() -> None:
    text = neutralise_mentions("ask @bob or @dave@other.example, mail a@b.example, see https://x.example/@u")
    assert find_mentions(text) == []
    assert "a@b.example" in text and "https://x.example/@u" in text
    assert text.replace("\u200d", "") == "ask @bob or @dave@other.example, mail a@b.example, see https://x.example/@u"


def test_short_reply_is_one_status() -> None:
    assert thread_parts("@alice@remote.example", "Thanks, fixed.", 500) == ["@alice@remote.example Thanks, fixed."]


def test_long_reply_splits_at_paragraphs() -> None:
    paragraphs = [f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 8 for i in range(6)]
    parts = thread_parts("@alice@remote.example", "\n\n".join(paragraphs), 500)
    assert len(parts) > 1
    for i, part in enumerate(parts, 1):
        assert part.startswith("@alice@remote.example ")
        assert part.endswith(f"({i}/{len(parts)})")
        assert status_length(part) <= 500
        assert find_mentions(part) == ["alice@remote.example"]
    # no paragraph is cut in the middle when paragraphs fit a part
    joined = " ".join(p.split(" ", 1)[1].rsplit(" (", 1)[0] for p in parts)
    for paragraph in paragraphs:
        assert paragraph.strip() in joined


def test_a_word_longer_than_a_part_is_cut() -> None:
    parts = thread_parts("@a", "x" * 1200, 500)
    assert [status_length(p) <= 500 for p in parts] == [True] * len(parts)
    assert "".join(p[3:].rsplit(" (", 1)[0] for p in parts) == "x" * 1200


def test_too_many_parts_is_refused() -> None:
    with pytest.raises(ReplyTooLong):
        thread_parts("@a", "word " * 5000, 100)


words = st.sampled_from(
    [
        "support",
        "incident",
        LONG_URL,
        "@carol",
        "@dave@other.example",
        "mail@x.example",
        "configuração",
        "👍🏽",
        "#42",
        "\n",
        "\n\n",
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(words, min_size=1, max_size=400), st.sampled_from([120, 280, 500]))
def test_every_part_fits_by_the_servers_count_and_mentions_only_the_customer(tokens: list[str], limit: int) -> None:
    body = " ".join(tokens)
    if not body.strip():
        return
    parts = thread_parts("@alice@remote.example", body, limit)
    for part in parts:
        assert countable_length(part) <= limit  # the fake server's own implementation
        assert find_mentions(part) == ["alice@remote.example"]
    # nothing lost: the words come back in order
    rebuilt = " ".join(p.split(" ", 1)[1] for p in parts).replace("\u200d", "")
    position = 0
    for token in (t for t in tokens if t.strip()):
        position = rebuilt.index(token, position) + len(token)


def test_a_word_cut_before_an_at_sign_does_not_become_a_mention() -> None:
    # 85 x's fill part 1 exactly (limit 100: "@alice " 7 + 85 + room for " (1/2)" 8), so the
    # long word is cut right before "@carol": part 2 would begin "@alice@remote.example @carol".
    parts = thread_parts("@alice@remote.example", "x" * 85 + "@carol please", 100)
    assert len(parts) == 2 and parts[1].replace(ZWJ, "") == "@alice@remote.example @carol please (2/2)"
    for part in parts:
        assert find_mentions(part) == ["alice@remote.example"]
        assert third_party_mentions(part, "alice@remote.example") == []


# Any Unicode, with what matters to mentions, links and splitting made frequent.
pieces = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(["@", "@carol", "@dave@other.example", "²", "½", "௰", "\u0301", " ", "\n\n", "x" * 40]),
    st.sampled_from([LONG_URL, "https://a.example/.@carol", "mail@x.example", "👍🏽", ZWJ, "=", "/"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(pieces, max_size=120).map("".join), st.sampled_from([60, 120, 500]))
@example("Unexpected text: ²@carol", 500)
@example("x" * 85 + "@carol please", 100)
def test_any_text_composes_into_parts_that_keep_every_promise(body: str, limit: int) -> None:
    assert reply_violations(body, limit) == []
    try:
        parts = thread_parts("@alice@remote.example", body, limit)
    except ReplyTooLong:
        return
    for part in parts:
        # The fake server's own count and mention scan, written apart from the adapter's.
        assert countable_length(part) <= limit
        assert find_mentions(part) == ["alice@remote.example"]


def test_the_checker_sees_what_composing_must_avoid() -> None:
    # reply_violations is also bench/fuzz.py's oracle: it must report a broken promise.
    assert reply_violations("hello") == []
    assert third_party_mentions("@alice@remote.example ²@carol", "alice@remote.example") == ["carol"]


def test_a_thread_with_more_statuses_than_text_parts_numbers_the_text_out_of_all() -> None:
    assert thread_parts("@a", "Five screens:", 500, statuses=2) == ["@a Five screens: (1/2)"]
    assert thread_parts("@a", "Five screens:", 500, statuses=1) == ["@a Five screens:"]
    parts = thread_parts("@a", "x" * 1200, 500, statuses=5)
    assert [p[-5:] for p in parts] == ["(1/5)", "(2/5)", "(3/5)"]
    assert media_part("@a", 4, 5) == "@a 📎 (4/5)"
