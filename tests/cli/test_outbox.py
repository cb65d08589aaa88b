"""`deskbot outbox list | retry | cancel`, on rows the real dispatcher failed or holds for a retry."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select

from adapters.channel import Channel, Outbound, PermanentSendError, TransientSendError
from bot.dispatcher import Dispatcher
from storage import outbox
from storage.db import transaction
from storage.models import Outbox
from tests.cli.conftest import Run, assert_one_error_line


class Platform(Channel):
    """Refuses the texts in `refuse` for good, those in `later` for now; takes the rest."""

    name = "flaky"

    def __init__(self) -> None:
        self.refuse: set[str] = set()
        self.later: set[str] = set()
        self.sent: list[str] = []

    def receive(self, sink, stop) -> None:  # noqa: ANN001
        stop.wait()

    def send(self, message: Outbound) -> list[str]:
        if message.text in self.refuse:
            raise PermanentSendError("550 no such user")
        if message.text in self.later:
            raise TransientSendError("HTTP 502 from the proxy", retry_after=600)
        self.sent.append(message.text)
        return [str(message.outbox_id)]


def _write(engine, *rows: tuple[str, str], secret: str | None = None) -> None:  # noqa: ANN001
    with transaction(engine) as s:
        for recipient, text in rows:
            outbox.enqueue(s, channel="flaky", kind="direct", recipient=recipient, text=text, now=_now(), secret=secret)


def _now() -> datetime:
    return datetime.now(UTC)


def _states(engine) -> list[tuple[str, str]]:  # noqa: ANN001
    with transaction(engine) as s:
        return [(r.text, r.state) for r in s.scalars(select(Outbox).order_by(Outbox.id))]


def test_list_shows_what_waits_and_why_without_the_customers_words(cli: Run, engine) -> None:  # noqa: ANN001
    assert cli("outbox", "list").stdout == "No pending rows.\n"
    _write(engine, ("bob", "Your answer, Bob"), ("ann", "Your answer, Ann"), ("carl", "Your answer, Carl"))
    platform = Platform()
    platform.refuse.add("Your answer, Bob")
    platform.later.add("Your answer, Ann")
    Dispatcher(engine, {"flaky": platform}, _now).drain("flaky")  # Ann's waits 10 minutes; Bob's failed

    pending = json.loads(cli("outbox", "list", "--json").stdout)
    assert [(r["to"], r["state"], r["attempts"], r["last_error"]) for r in pending] == [
        ("ann", "pending", 1, "HTTP 502 from the proxy"),
        ("carl", "pending", 0, None),  # behind Ann's, untried: the batch stopped at her failure
    ]
    failed = json.loads(cli("outbox", "list", "--state", "failed", "--channel", "flaky", "--json").stdout)
    assert [(r["to"], r["last_error"], r["next_attempt_at"]) for r in failed] == [("bob", "550 no such user", None)]
    text = cli("outbox", "list")
    assert text.code == 0 and "HTTP 502 from the proxy" in text.stdout and "ann" in text.stdout
    assert "Your answer" not in text.stdout
    limited = cli("outbox", "list", "--limit", "1")
    assert "carl" not in limited.stdout and "--limit N shows more" in limited.stderr
    assert cli("outbox", "list", "--channel", "zulip").stdout == "No pending rows for zulip.\n"
    assert_one_error_line(cli("outbox", "list", "--state", "sent"), "--state", code=2)


def test_retry_sends_a_failed_row_again_and_a_waiting_one_now(cli: Run, engine) -> None:  # noqa: ANN001
    _write(engine, ("ann", "first"), ("bob", "second"))
    platform = Platform()
    platform.refuse.add("first")
    platform.later.add("second")
    dispatcher = Dispatcher(engine, {"flaky": platform}, _now)
    dispatcher.drain("flaky")
    dispatcher.drain("flaky")  # the first failed for good, the second waits ten minutes
    assert _states(engine) == [("first", "failed"), ("second", "pending")]
    platform.refuse.clear()
    platform.later.clear()  # the address was corrected, the proxy is back

    done = cli("outbox", "retry", "1")
    assert done.code == 0 and done.stdout == "Outbox row 1 (flaky, to ann) is due now.\n", done
    assert json.loads(cli("outbox", "retry", "2", "--json").stdout)["state"] == "pending"
    assert dispatcher.drain("flaky") == 2
    assert platform.sent == ["first", "second"] and _states(engine) == [("first", "sent"), ("second", "sent")]
    assert_one_error_line(cli("outbox", "retry", "1"), "outbox row 1 was sent already")
    assert_one_error_line(cli("outbox", "retry", "99"), "no outbox row 99")
    assert_one_error_line(cli("outbox", "retry", "one"), "ID", code=2)


def test_a_failed_row_whose_activation_code_was_masked_is_not_sent_again(cli: Run, engine) -> None:  # noqa: ANN001
    _write(engine, ("ann", "Your code is ABCD-EFGH"), secret="ABCD-EFGH")
    platform = Platform()
    platform.refuse.add("Your code is ABCD-EFGH")
    Dispatcher(engine, {"flaky": platform}, _now).drain("flaky")
    assert _states(engine) == [("Your code is [redacted]", "failed")]
    assert_one_error_line(cli("outbox", "retry", "1"), "carried a secret")
    assert _states(engine) == [("Your code is [redacted]", "failed")]


def test_cancel_gives_up_a_waiting_row_and_its_persons_later_rows_go_on(cli: Run, engine) -> None:  # noqa: ANN001
    _write(engine, ("ann", "stuck"), ("ann", "next for Ann"))
    platform = Platform()
    platform.later.add("stuck")
    dispatcher = Dispatcher(engine, {"flaky": platform}, _now)
    dispatcher.drain("flaky")
    assert dispatcher.drain("flaky") == 0  # Ann's next answer waits behind the stuck one
    assert _states(engine) == [("stuck", "pending"), ("next for Ann", "pending")]

    done = cli("outbox", "cancel", "1")
    assert done.code == 0 and "is cancelled: it will not be sent" in done.stdout, done
    assert dispatcher.drain("flaky") == 1 and platform.sent == ["next for Ann"]
    [failed] = json.loads(cli("outbox", "list", "--state", "failed", "--json").stdout)
    assert failed["id"] == 1 and failed["last_error"].startswith("cancelled by cli")
    assert_one_error_line(cli("outbox", "cancel", "1"), "outbox row 1 is failed, not pending")
    assert_one_error_line(cli("outbox", "cancel", "2"), "outbox row 2 is sent, not pending")


def test_a_row_id_no_row_can_have_is_no_such_row(cli: Run) -> None:
    for huge in ("99999999999999999999", str(2**31)):
        assert_one_error_line(cli("outbox", "retry", huge), f"no outbox row {huge}")
        assert_one_error_line(cli("outbox", "cancel", huge), f"no outbox row {huge}")


def test_an_unknown_channel_is_said_to_be_unknown(cli: Run, engine) -> None:  # noqa: ANN001
    refused = cli("outbox", "list", "--channel", "nope")
    assert_one_error_line(refused, "--channel", "unknown channel 'nope'", "console, email, mastodon, zulip", code=2)
    assert cli("outbox", "list", "--channel", "email").stdout == "No pending rows for email.\n"
    _write(engine, ("ann", "hello"))  # a channel the outbox has rows of is known, whatever its name
    assert json.loads(cli("outbox", "list", "--channel", "flaky", "--json").stdout)[0]["to"] == "ann"
    assert cli("outbox", "list", "--state", "failed", "--channel", "flaky").stdout == "No failed rows for flaky.\n"
