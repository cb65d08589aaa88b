"""`deskbot chat` says on start how to play each role and grant credits, and plays a stranger too
(issue 13, item 10); on SQLite and PostgreSQL."""

from __future__ import annotations

import io

from bot.runtime import chat
from tests.desk import make_settings


def _chat(db_url, engine, clock, *lines: str, role: str = "customer") -> str:  # noqa: ANN001
    out = io.StringIO()
    script = io.StringIO("\n".join(lines) + "\n")
    chat(make_settings(db_url), role=role, stdin=script, stdout=out, clock=clock, engine=engine)
    return out.getvalue()


def test_the_console_says_how_to_play_the_engineer_and_grant_credits(engine, db_url, clock):
    text = _chat(db_url, engine, clock)
    intro = text.splitlines()
    assert intro[0].startswith("deskbot console: you are the customer Demo customer.")
    assert any(line.strip().startswith("\\as engineer") for line in intro)
    assert any('/credits grant "Demo customer" 3 gives Demo customer 3 credits' in line for line in intro)
    assert any(line.strip().startswith("\\as customer NAME") for line in intro)
    assert any(line.strip().startswith("\\as stranger") for line in intro)
    assert "(Demo customer has no credits yet: grant some as the engineer, as above.)" in intro

    # Following the introduction works, and the next start counts the credits.
    _chat(db_url, engine, clock, "\\as engineer", '/credits grant "Demo customer" 3')
    assert "(Demo customer has 3 credits left.)" in _chat(db_url, engine, clock)


def test_a_stranger_is_an_account_linked_to_no_customer_until_it_links_itself(engine, db_url, clock):
    text = _chat(
        db_url,
        engine,
        clock,
        "\\as engineer",
        "/customer add Initech",
        "\\as stranger",
        "open My NAS is down",
        "\\as engineer",
        "/contacts",
    )
    assert '(you are now a stranger: the console account "stranger", linked to no customer)' in text
    assert "deskbot → stranger:\n  Hello! This is the commercial support desk. I don't know this account yet." in text
    assert 'If you already have support, send "link <your activation code>".' in text
    assert "console:stranger" in text.split("Unknown contacts")[1]  # engineers see who wrote
    code = text.split("Activation code: ")[1].split()[0]

    # The stranger links itself; the next stranger is another account, still linked to no one.
    text = _chat(db_url, engine, clock, "\\as stranger", f"link {code}", "\\as stranger", "hello?", role="customer")
    assert "Welcome, Initech! This account is now linked." in text
    assert '(you are now a stranger: the console account "stranger 2", linked to no customer)' in text
    assert "deskbot → stranger 2:\n  Hello! This is the commercial support desk." in text


def test_the_console_can_start_as_a_stranger(engine, db_url, clock):
    text = _chat(db_url, engine, clock, "credits", role="stranger")
    assert text.startswith(
        'deskbot console: you are a stranger: the console account "stranger", linked to no customer.'
    )
    assert "deskbot → stranger:\n  Hello! This is the commercial support desk." in text
    assert "Credits left" not in text


def test_a_wrong_role_says_which_ones_there_are(engine, db_url, clock):
    text = _chat(db_url, engine, clock, "\\as boss")
    assert "usage: \\as engineer | \\as customer [NAME] | \\as stranger" in text
