"""The vendor's links reach the customers who need them (SPEC §2, §6): `help` carries the docs and
forum links, a stranger's answer how to buy support and both links, an answer with no credit how to
buy more; each from its setting (`DESKBOT_DOCS_URL`, `DESKBOT_FORUM_URL`, `DESKBOT_PURCHASE_URL`),
in English and in European Portuguese.

Through the real runtime, intake, router and store (the console channel), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from tests.desk import Desk

DOCS = "https://docs.example.net/deskbot"
FORUM = "https://forum.example.net/c/help"
PURCHASE = "https://shop.example.net/support"


def _desk(engine, db_url, clock) -> Desk:  # noqa: ANN001
    return Desk(engine, db_url, clock, DESKBOT_DOCS_URL=DOCS, DESKBOT_FORUM_URL=FORUM, DESKBOT_PURCHASE_URL=PURCHASE)


def test_help_gives_the_configured_docs_and_forum_links_in_both_languages(engine, db_url, clock):
    desk = _desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.customer("Cliente", credits=1, lang="pt")
    for who, word in (("Acme", "help"), ("Cliente", "ajuda")):
        out = desk.say(who, word)
        assert DOCS in out and FORUM in out, out


def test_a_stranger_is_told_how_to_buy_and_where_the_docs_and_forum_are(engine, db_url, clock):
    desk = _desk(engine, db_url, clock)
    out = desk.say("newcomer", "Hello, my printer is on fire")
    assert PURCHASE in out and DOCS in out and FORUM in out, out
    assert "link" in out  # and how to link an account


def test_no_credit_says_where_to_buy_more(engine, db_url, clock):
    desk = _desk(engine, db_url, clock)
    desk.customer("Acme")
    desk.customer("Cliente", lang="pt")
    for who, word in (("Acme", "open"), ("Cliente", "abrir")):
        out = desk.say(who, f"{word} The disk died")
        assert PURCHASE in out, out
