"""Counting as Mastodon counts, neutralising mentions, splitting replies into threads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.mastodon.compose import (
    ReplyTooLong,
    mention_for,
    neutralise_mentions,
    status_length,
    thread_parts,
)
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


def test_mention_for_local_and_remote() -> None:
    assert mention_for("carol@bot.example", "bot.example") == "@carol"
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
