"""`deskbot engineers pins | unpin | pin`: the operators' view of engineer pins (both databases)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.services import engineers
from storage.db import make_engine, transaction
from storage.models import EngineerPin
from tests.cli.conftest import Run, assert_one_error_line

PINNED_AT = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def pinned(cli_env: pytest.MonkeyPatch, db_url: str) -> None:
    """Two pins, as the router makes them on first use; one email has since left DESKBOT_ENGINEERS."""
    cli_env.setenv("DESKBOT_ENGINEERS", "eng@example.com, ops@example.com")
    engine = make_engine(db_url)
    with transaction(engine) as session:
        assert engineers.pinned_to(session, "eng@example.com", "10", PINNED_AT)
        assert engineers.pinned_to(session, "gone@example.com", "11", PINNED_AT)
    engine.dispose()


def stored_pins(db_url: str) -> dict[str, str]:
    engine = make_engine(db_url)
    with transaction(engine) as session:
        found = {p.email: p.platform_user_id for p in session.scalars(select(EngineerPin))}
    engine.dispose()
    return found


def test_pins_lists_every_pin_as_text_and_json(cli: Run, pinned: None) -> None:
    text = cli("engineers", "pins")
    assert text.code == 0, text
    assert "eng@example.com" in text.stdout and "gone@example.com" in text.stdout
    assert "2026-12-02 10:00 WET" in text.stdout
    result = cli("engineers", "pins", "--json")
    assert result.code == 0 and result.stderr == ""
    assert json.loads(result.stdout) == [
        {"email": "eng@example.com", "zulip_user_id": "10", "pinned_at": "2026-12-02T10:00:00+00:00", "listed": True},
        {"email": "gone@example.com", "zulip_user_id": "11", "pinned_at": "2026-12-02T10:00:00+00:00", "listed": False},
    ]


def test_no_pins_yet(cli: Run) -> None:
    assert json.loads(cli("engineers", "pins", "--json").stdout) == []
    text = cli("engineers", "pins")
    assert text.code == 0 and "No engineer is pinned yet" in text.stdout


def test_unpin_resets_one_pin_and_the_next_writer_is_pinned(cli: Run, pinned: None, db_url: str) -> None:
    result = cli("engineers", "unpin", "ENG@example.com")
    assert result.code == 0, result
    assert "Unpinned eng@example.com (was Zulip user id 10)" in result.stdout
    assert stored_pins(db_url) == {"gone@example.com": "11"}
    # The first account to write with the email after the reset is pinned (trust on first use again).
    engine = make_engine(db_url)
    with transaction(engine) as session:
        assert engineers.pinned_to(session, "eng@example.com", "42", PINNED_AT)
    with transaction(engine) as session:
        assert not engineers.pinned_to(session, "eng@example.com", "10", PINNED_AT)
    engine.dispose()
    document = json.loads(cli("engineers", "unpin", "gone@example.com", "--json").stdout)
    assert document == {
        "email": "gone@example.com",
        "zulip_user_id": "11",
        "pinned_at": "2026-12-02T10:00:00+00:00",
        "listed": False,
        "unpinned": True,
    }
    assert stored_pins(db_url) == {"eng@example.com": "42"}


def test_pin_sets_a_known_user_id(cli: Run, pinned: None, db_url: str) -> None:
    result = cli("engineers", "pin", "Ops@Example.com", "77", "--json")
    assert result.code == 0, result
    assert json.loads(result.stdout)["email"] == "ops@example.com"
    assert cli("engineers", "pin", "eng@example.com", "12").stdout.strip() == (
        "Pinned eng@example.com to Zulip user id 12."
    )
    assert stored_pins(db_url) == {"eng@example.com": "12", "gone@example.com": "11", "ops@example.com": "77"}


def test_errors_are_one_line(cli: Run, pinned: None, db_url: str) -> None:
    assert_one_error_line(cli("engineers", "unpin", "nobody@example.com"), "no pin for 'nobody@example.com'")
    assert_one_error_line(cli("engineers", "pin", "gone@example.com", "5"), "not in DESKBOT_ENGINEERS")
    for bad in ("abc", "0", "3.5", "1" * 40, "²"):
        assert_one_error_line(cli("engineers", "pin", "eng@example.com", bad), "USER_ID", code=2)
    assert_one_error_line(cli("engineers", "unpin"), "Missing argument 'EMAIL'", code=2)
    assert_one_error_line(cli("engineers", "pins", "--all"), "--all", code=2)
    assert stored_pins(db_url) == {"eng@example.com": "10", "gone@example.com": "11"}


@pytest.mark.parametrize(
    "command", [["engineers"], ["engineers", "pins"], ["engineers", "unpin"], ["engineers", "pin"]]
)
def test_help(cli: Run, command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.code == 0 and "Usage: deskbot engineers" in result.stdout
