"""Engineer pins over the real Zulip channel and the fake: first use pins, another account is refused, reset.

An engineer's email from DESKBOT_ENGINEERS is pinned to the Zulip user id
that first writes with it. Here the engineer's old account gives up the
address and a new account takes it (a re-created account, an email change):
the new account is refused, clearly, until an operator runs
`deskbot engineers unpin` (the real CLI, on the same database).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import main
from storage.db import transaction
from storage.models import Customer, EngineerPin
from tests.cli.conftest import exit_status
from tests.fakes.zulip import FakeZulip
from tests.zulip.conftest import ENGINEER, STREAM
from tests.zulip.test_end_to_end import ZulipDesk, wait_until

REFUSAL = "is pinned to another Zulip account"


@pytest.fixture
def desk(fake, engine, db_url, clock, make_channel) -> Iterator[ZulipDesk]:  # noqa: ANN001
    d = ZulipDesk(fake, engine, db_url, clock, make_channel)
    try:
        yield d
    finally:
        d.stop_all()


def pins(desk: ZulipDesk) -> dict[str, str]:
    with transaction(desk.engine) as session:
        return {p.email: p.platform_user_id for p in session.scalars(select(EngineerPin))}


def customers(desk: ZulipDesk) -> int:
    with transaction(desk.engine) as session:
        return session.scalar(select(func.count()).select_from(Customer)) or 0


def take_over_the_address(fake: FakeZulip) -> int:
    """The engineer's account gives up its address and a new account gets it; the new account's user id."""
    fake.user(ENGINEER).email = "erin-old@example.com"
    newcomer = fake.add_user(ENGINEER, "Erin Again")
    fake.subscribe(STREAM, ENGINEER)
    return newcomer.user_id


def deskbot(monkeypatch: pytest.MonkeyPatch, db_url: str, *args: str) -> tuple[int, str]:
    """Run the real `deskbot` command line on the test's database: (exit status, stdout)."""
    monkeypatch.setenv("DESKBOT_DATABASE_URL", db_url)
    with CliRunner().isolation() as (stdout, _stderr, _mixed):
        code = exit_status(main, list(args))
        return code, stdout.getvalue().decode()


def test_first_use_pins_another_account_is_refused_until_an_operator_unpins(
    desk: ZulipDesk, fake: FakeZulip, db_url: str, clock, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    original = fake.user(ENGINEER).user_id
    desk.start()
    fake.post_dm(ENGINEER, "/cases")
    desk.wait_dm(ENGINEER, "No open cases.")
    assert pins(desk) == {ENGINEER: str(original)}
    with transaction(desk.engine) as session:
        assert session.get(EngineerPin, ENGINEER).pinned_at == clock()  # the router's clock, not the wall's

    newcomer = take_over_the_address(fake)
    fake.post_dm(ENGINEER, "/customer add Mallory Ltd")
    refusal = desk.wait_dm(ENGINEER, REFUSAL)
    first_line = refusal.content.split("\n")[0]
    assert first_line == (
        "You are not authorised to run engineer commands: eng@example.com is pinned to another Zulip account"
        " (the first one that wrote with it). If that is wrong, an operator can reset the pin with:"
        " deskbot engineers unpin eng@example.com"
    )
    assert customers(desk) == 0  # nothing changed
    assert pins(desk) == {ENGINEER: str(original)}  # a message never moves a pin

    # Talk in a case topic without a command gets no answer; a command there gets the refusal.
    topic = "#1 Someone: something"
    fake.post_stream_message(ENGINEER, STREAM, topic, "I think it is the fuser")
    fake.post_stream_message(ENGINEER, STREAM, topic, "/cases all")
    wait_until(lambda: desk.in_topic(topic), what="the refusal in the topic")
    [answer] = desk.in_topic(topic)
    assert REFUSAL in answer.content

    code, listed = deskbot(monkeypatch, db_url, "engineers", "pins")
    assert code == 0 and ENGINEER in listed and str(original) in listed
    code, said = deskbot(monkeypatch, db_url, "engineers", "unpin", ENGINEER)
    assert code == 0 and f"was Zulip user id {original}" in said
    assert pins(desk) == {}

    fake.post_dm(ENGINEER, "/customer add Initech")
    desk.wait_dm(ENGINEER, "Customer `Initech`")
    assert customers(desk) == 1
    assert pins(desk) == {ENGINEER: str(newcomer)}


def test_an_operator_pin_keeps_a_first_writer_out(
    desk: ZulipDesk, fake: FakeZulip, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`deskbot engineers pin` before the engineer ever writes: the first writer is not trusted blindly."""
    monkeypatch.setenv("DESKBOT_ENGINEERS", ENGINEER)
    squatter = fake.user(ENGINEER).user_id
    real = squatter + 1000
    code, said = deskbot(monkeypatch, db_url, "engineers", "pin", ENGINEER, str(real))
    assert code == 0 and said.strip() == f"Pinned {ENGINEER} to Zulip user id {real}."
    desk.start()
    fake.post_dm(ENGINEER, "/customer add Mallory Ltd")
    desk.wait_dm(ENGINEER, REFUSAL)
    assert customers(desk) == 0
    assert pins(desk) == {ENGINEER: str(real)}
