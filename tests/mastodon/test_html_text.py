"""Status HTML to plain text: real shapes from the recorded payloads and from remote servers."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.mastodon.html_text import html_to_text, status_to_text

BOT = {
    "id": "117440810532227399",
    "username": "mastodonpy_test",
    "url": "http://localhost:3000/@mastodonpy_test",
    "acct": "mastodonpy_test",
}
BOB = {"id": "42", "username": "bob", "url": "https://remote.example/@bob", "acct": "bob@remote.example"}
PAYLOADS = Path(__file__).parents[1] / "fakes" / "mastodon" / "payloads"


def mention(account: dict[str, str]) -> str:
    return (
        f'<span class="h-card" translate="no"><a href="{account["url"]}" class="u-url mention">'
        f"@<span>{account['username']}</span></a></span>"
    )


def test_recorded_direct_mention_loses_the_bots_mention() -> None:
    # content of examples/notification_mention_direct.json (Mastodon 4.7.3)
    content = (
        '<p><span class="h-card" translate="no"><a href="http://localhost:3000/@mastodonpy_test" '
        'class="u-url mention">@<span>mastodonpy_test</span></a></span> pssssst!</p>'
    )
    assert html_to_text(content, [BOT], BOT["id"]) == "pssssst!"


def test_paragraphs_and_line_breaks_are_kept() -> None:
    content = f"<p>{mention(BOT)} my order #123 &amp; invoice<br />are wrong</p><p>second<br>paragraph</p>"
    assert html_to_text(content, [BOT], BOT["id"]) == "my order #123 & invoice\nare wrong\n\nsecond\nparagraph"


def test_links_become_their_urls() -> None:
    content = (
        '<p>see <a href="https://shop.example/orders/123/details" rel="nofollow noopener" target="_blank">'
        '<span class="invisible">https://</span><span class="ellipsis">shop.example/orders/123/deta</span>'
        '<span class="invisible">ils</span></a> and <a href="https://docs.example/x">the manual</a></p>'
    )
    assert html_to_text(content, [], BOT["id"]) == (
        "see https://shop.example/orders/123/details and the manual (https://docs.example/x)"
    )


def test_own_mention_removed_by_account_not_by_name() -> None:
    # Another account with the same username on another server stays.
    twin = {
        "id": "99",
        "username": "mastodonpy_test",
        "url": "https://other.example/@mastodonpy_test",
        "acct": "mastodonpy_test@other.example",
    }
    content = f"<p>{mention(BOT)} ask {mention(twin)} please</p>"
    assert html_to_text(content, [BOT, twin], BOT["id"]) == "ask @mastodonpy_test@other.example please"


def test_other_mentions_are_kept_as_full_acct() -> None:
    content = f"<p>{mention(BOT)} cc {mention(BOB)}</p>"
    assert html_to_text(content, [BOT, BOB], BOT["id"]) == "cc @bob@remote.example"


def test_mention_linking_the_activitypub_uri_is_matched_by_username() -> None:
    # Some servers link the actor URI, not the profile page.
    content = (
        '<p><a href="http://localhost:3000/ap/users/117440810532227399" class="mention">@mastodonpy_test</a> hi</p>'
    )
    assert html_to_text(content, [BOT], BOT["id"]) == "hi"


def test_remote_html_without_paragraphs_and_hashtags() -> None:
    content = f'{mention(BOT)} help with <a href="https://x.example/tags/vpn" class="mention hashtag" rel="tag">#<span>vpn</span></a>'
    assert html_to_text(content, [BOT], BOT["id"]) == "help with #vpn"


def test_lists_and_quotes() -> None:
    content = "<p>steps:</p><ul><li>one</li><li>two</li></ul><blockquote><p>quoted</p></blockquote>"
    assert html_to_text(content, [], None) == "steps:\n\n- one\n\n- two\n\n> quoted"


def test_media_appended_with_remote_url_where_url_is_missing() -> None:
    status = {
        "content": f"<p>{mention(BOT)} screenshot attached</p>",
        "mentions": [BOT],
        "media_attachments": [
            {"type": "image", "url": "https://bot.example/media/1.png", "remote_url": None},
            {"type": "unknown", "url": None, "remote_url": "https://remote.example/media/2.png"},
        ],
    }
    assert status_to_text(status, BOT["id"]) == (
        "screenshot attached\n\nhttps://bot.example/media/1.png\nhttps://remote.example/media/2.png"
    )


def test_markup_in_text_stays_text() -> None:
    content = "<p>&lt;script&gt;alert(1)&lt;/script&gt; `code` @**all**</p>"
    assert html_to_text(content, [], None) == "<script>alert(1)</script> `code` @**all**"


def test_recorded_status_payload() -> None:
    status = json.loads((PAYLOADS / "status_post_direct_with_mention.json").read_text())["body"]
    # Seen by the mentioned admin: their own mention goes; "ilu bby ;3" stays.
    assert status_to_text(status, status["mentions"][0]["id"]) == "ilu bby ;3"
