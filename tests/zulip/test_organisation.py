"""Zulip organisations as they are (issue 13, items 6 and 7), through the whole bot and the fake over HTTP.

* A support stream made public while the bot runs: mirroring pauses (nothing is posted to it, nothing is
  dropped), `/readyz` fails with the reason, one warning is logged; once private again the held-back
  messages are posted in order, once. Customers keep getting their answers meanwhile.
* Engineers named by user id, email or `@group` (kept current from `user_group` events), recognised by
  user id only; an email Zulip hides from the bot is said at start, in one line naming the setting.
* Customers keyed by user id: a stand-in `sender_email` neither splits nor confuses them, an identity
  stored under an email before is re-keyed, and `deskbot customers add --zulip-email` links by user id
  where the address is visible and otherwise says that activation codes are the way.

Runs on SQLite and PostgreSQL (the `engine` fixture), with the real runtime, router, store and CLI.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import main
from bot.http import HealthServer
from bot.services import customers
from storage.db import transaction
from storage.models import Customer, Identity, Incident, Outbox
from tests.cli.conftest import exit_status
from tests.desk import EVERY_MESSAGE_ANSWERED, make_settings
from tests.fakes.zulip import ADMINS, EVERYONE, FakeZulip
from tests.zulip.conftest import ALICE, BOB, BOT, BOT_KEY, ENGINEER, STREAM
from tests.zulip.relay_check import parse_relayed
from tests.zulip.test_end_to_end import TOPIC, ZulipDesk, assert_each_message_once, open_case, wait_until

CAROL = "carol@example.com"


def engineers(desk: ZulipDesk, value: str) -> None:
    """DESKBOT_ENGINEERS for the runtimes the desk starts next."""
    desk.settings = make_settings(
        desk.settings.database_url, DESKBOT_ENGINEERS=value, DESKBOT_ZULIP_STREAM=STREAM, **EVERY_MESSAGE_ANSWERED
    )


def readyz(server: HealthServer) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/readyz", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def customer_count(desk: ZulipDesk) -> int:
    with transaction(desk.engine) as session:
        return session.scalar(select(func.count()).select_from(Customer)) or 0


# -- item 6: the support stream made public while the bot runs ---------------------------------------


def test_a_stream_made_public_pauses_mirroring_fails_readyz_and_loses_nothing(
    desk: ZulipDesk, fake: FakeZulip, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="deskbot")
    desk.customer("Alice Customer", ALICE, credits=3)
    runtime = desk.start()
    server = HealthServer("127.0.0.1:0", runtime.metrics, runtime.ready, runtime.refresh_gauges)
    server.start()
    try:
        open_case(desk)
        assert readyz(server) == (200, "ready\n")
        mirrored_before = len(desk.in_topic())

        fake.make_stream_public(STREAM)
        reason = f"zulip holds back topic messages: support stream '{STREAM}' is public (not invite-only)"
        wait_until(lambda: readyz(server) == (503, reason + "\n"), what="/readyz to fail with the reason")

        # Customers are still answered; what would go to the stream waits, in order.
        for text in ("first while public", "second while public"):
            answered = len(desk.dms_to(ALICE))
            fake.post_dm(ALICE, text)
            wait_until(lambda n=answered: len(desk.dms_to(ALICE)) > n, what=f"the answer to {text!r}")
        fake.post_dm(ENGINEER, "/reply 1 We are on it.")
        desk.wait_dm(ALICE, "[#1] We are on it.")
        time.sleep(0.5)
        assert len(desk.in_topic()) == mirrored_before, "something was posted to the public stream"
        with transaction(desk.engine) as session:
            held = session.scalars(select(Outbox).where(Outbox.kind == "topic", Outbox.state == "pending")).all()
            assert len(held) >= 3 and all(r.last_error is None for r in held)  # waiting, not failing

        fake.make_stream_private(STREAM)
        wait_until(lambda: len(desk.in_topic()) >= mirrored_before + 3, what="the held-back messages")
        wait_until(lambda: readyz(server) == (200, "ready\n"), what="/readyz to pass again")
    finally:
        server.stop()
    released = desk.in_topic()[mirrored_before:]
    quoted = [parse_relayed(m.content).inside for m in released if "```" in m.content]
    assert quoted == [["first while public"], ["second while public"], ["We are on it."]]  # in order
    desk.stop_all()
    assert_each_message_once(desk.engine, fake)  # once each, none doubled
    with transaction(desk.engine) as session:
        states = session.scalars(select(Outbox.state)).all()
        assert set(states) == {"sent"}  # none dropped, none failed
    paused = [r for r in caplog.records if "mirroring paused" in r.getMessage()]
    assert len(paused) == 1 and paused[0].levelno >= logging.WARNING
    assert "support stream 'support' is public (not invite-only)" in paused[0].getMessage()


def test_a_stream_made_web_public_while_the_bot_was_down_holds_at_the_next_register(
    desk: ZulipDesk, fake: FakeZulip
) -> None:
    desk.customer("Alice Customer", ALICE, credits=3)
    runtime = desk.start()
    open_case(desk)
    before = len(desk.in_topic())
    # The queue is lost (the server dropped it) and the stream changed meanwhile: learnt at register.
    fake.expire_queues()
    fake.make_stream_web_public(STREAM)
    wait_until(lambda: "is web-public" in runtime.ready()[1], what="readiness to fail with the reason")
    fake.post_dm(ALICE, "while web-public")
    desk.wait_dm(ALICE, "Added to incident #1")
    time.sleep(0.3)
    assert len(desk.in_topic()) == before
    fake.make_stream_private(STREAM)
    desk.wait_topic("while web-public")
    wait_until(lambda: runtime.ready()[0], what="readiness")


# -- item 7: engineers by user id, email or @group ---------------------------------------------------


def test_an_engineer_whose_email_zulip_hides_is_said_at_start_and_a_user_id_works(
    desk: ZulipDesk, fake: FakeZulip, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="deskbot.adapters.zulip")
    fake.set_email_visibility(ENGINEER, ADMINS)  # the bot is no administrator
    engineers(desk, ENGINEER)
    desk.start()
    [said] = [r for r in caplog.records if "cannot resolve" in r.getMessage()]
    assert said.levelno == logging.WARNING
    assert said.getMessage().startswith(f"DESKBOT_ENGINEERS: cannot resolve {ENGINEER} to a Zulip user id")
    assert "by Zulip user id or as an @group" in said.getMessage()
    # Recognised by user id only: the address the message shows is a stand-in, the listed email nothing.
    fake.post_dm(ENGINEER, "/customer add Mallory Ltd")
    desk.wait_dm(ENGINEER, "not authorised")
    assert customer_count(desk) == 0
    desk.stop_all()

    engineers(desk, str(fake.user(ENGINEER).user_id))
    desk.start()
    fake.post_dm(ENGINEER, "/customer add Initech")
    desk.wait_dm(ENGINEER, "Initech")
    assert customer_count(desk) == 1


def test_an_email_the_bot_may_see_resolves_to_the_user_id_and_only_that_account_acts(
    desk: ZulipDesk, fake: FakeZulip, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="deskbot.adapters.zulip")
    engineers(desk, ENGINEER)
    desk.start()
    engineer = fake.user(ENGINEER).user_id
    assert any(f"{ENGINEER} is Zulip user {engineer}" in r.getMessage() for r in caplog.records)
    # The engineer hides the address afterwards: their messages show a stand-in, they are still the engineer.
    fake.set_email_visibility(ENGINEER, ADMINS)
    fake.post_dm(ENGINEER, "/customer add Initech")
    desk.wait_dm(ENGINEER, "Initech")
    # Another account that gets the address is not the engineer: ids are the key, not emails.
    fake.user(ENGINEER).email = "erin-old@example.com"
    fake.add_user(ENGINEER, "Erin Again")
    fake.post_dm(ENGINEER, "/customer add Mallory Ltd")
    desk.wait_dm(ENGINEER, "not authorised")
    assert customer_count(desk) == 1


def test_a_user_group_names_the_engineers_and_its_membership_is_kept_current(desk: ZulipDesk, fake: FakeZulip) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    fake.add_user(CAROL, "Carol Colleague")
    fake.add_group("oncall", [CAROL])
    fake.add_group("support-engineers", [ENGINEER], subgroups=["oncall"])
    engineers(desk, "@support-engineers")
    desk.start()
    open_case(desk)
    fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/note a member")
    desk.wait_topic("Note saved on #1")
    fake.post_dm(CAROL, "/case 1")  # a member of a subgroup
    desk.wait_dm(CAROL, "#1")
    fake.post_dm(BOB, "/case 1")
    desk.wait_dm(BOB, "not authorised")

    fake.add_to_group("support-engineers", BOB)  # learnt from the user_group event, no restart
    fake.post_dm(BOB, "/case 1")
    wait_until(lambda: len(desk.dms_to(BOB)) == 2, what="Bob's second answer")
    assert "not authorised" not in desk.dms_to(BOB)[-1].content
    fake.remove_from_group("support-engineers", ENGINEER)
    fake.post_dm(ENGINEER, "/case 1")
    desk.wait_dm(ENGINEER, "not authorised")
    fake.remove_group("oncall")
    fake.post_dm(CAROL, "/case 1")
    wait_until(lambda: len(desk.dms_to(CAROL)) == 2, what="Carol's second answer")
    assert "not authorised" in desk.dms_to(CAROL)[-1].content


def assignee_of_case_1(desk: ZulipDesk) -> str | None:
    with transaction(desk.engine) as session:
        return session.scalar(select(Incident.assignee).where(Incident.id == 1))


def test_assign_by_address_finds_the_engineer_by_user_id_whoever_the_setting_names(
    desk: ZulipDesk, fake: FakeZulip
) -> None:
    # One engineer named by email, the rest by group: an address used to be checked against the
    # setting's emails only, so every group member was refused (and with no email there, any
    # address at all was taken, typos and colleagues who are no engineers included).
    desk.customer("Alice Customer", ALICE, credits=2)
    fake.add_user(CAROL, "Carol Colleague")
    fake.add_group("support-engineers", [ENGINEER, CAROL])
    engineers(desk, f"@support-engineers,{ENGINEER}")
    desk.start()
    open_case(desk)
    fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"/assign {CAROL.upper()}")
    desk.wait_topic(f"#1 is assigned to `{CAROL}`")
    assert assignee_of_case_1(desk) == CAROL
    fake.post_dm(CAROL, "/cases mine")  # the name Carol works under is the one she was assigned by
    assert "#1" in desk.wait_dm(CAROL, "My printer is on fire").content

    for who in (BOB, "nobody-at-all@typo.example"):  # an account that is no engineer's; no account
        fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"/assign {who}")
        desk.wait_topic(f"`{who}` is not the address of an engineer I can see")
    assert assignee_of_case_1(desk) == CAROL

    # An engineer whose address Zulip hides: their messages show a stand-in, and Zulip finds them by it.
    fake.set_email_visibility(CAROL, ADMINS)
    stand_in = fake.api_email(CAROL)
    assert stand_in != CAROL
    fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"/assign {CAROL}")
    desk.wait_topic(f"`{CAROL}` is not the address of an engineer I can see")
    fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"/assign {stand_in}")
    desk.wait_topic(f"#1 is assigned to `{stand_in}`")
    fake.post_dm(CAROL, "/cases mine")
    wait_until(
        lambda: len([m for m in desk.dms_to(CAROL) if "My printer is on fire" in m.content]) == 2, what="her case"
    )

    # A bot that may see hidden addresses (an administrator) finds her by the real one too: she is
    # still assigned under the address her own messages show, so her `/cases mine` has the case.
    fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/assign nobody")
    desk.wait_topic("#1 is assigned to nobody now.")
    fake.user(BOT).role = 200
    fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"/assign {CAROL}")
    wait_until(
        lambda: len([m for m in desk.in_topic(TOPIC) if f"#1 is assigned to `{stand_in}`" in m.content]) == 2,
        what="the second assignment",
    )
    assert assignee_of_case_1(desk) == stand_in


def test_an_unknown_group_is_said_once(desk: ZulipDesk, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="deskbot.adapters.zulip")
    engineers(desk, "@no-such-team")
    desk.start()
    wait_until(
        lambda: any("no user group named 'no-such-team'" in r.getMessage() for r in caplog.records),
        what="the warning",
    )
    assert all(r.getMessage().startswith("DESKBOT_ENGINEERS:") for r in caplog.records if "no-such" in r.getMessage())


# -- item 7: customers keyed by user id -------------------------------------------------------------------


def test_a_hidden_address_neither_splits_nor_confuses_a_customer(desk: ZulipDesk, fake: FakeZulip) -> None:
    fake.set_email_visibility(ALICE, ADMINS)
    desk.customer("Alice Customer", ALICE, credits=2)  # linked by user id
    desk.start()
    open_case(desk)
    # Alice lets everyone see her address: her messages now show it. Still the same customer.
    fake.set_email_visibility(ALICE, EVERYONE)
    fake.post_dm(ALICE, "status")
    desk.wait_dm(ALICE, "My printer is on fire")
    with transaction(desk.engine) as session:
        zulip = session.scalars(select(Identity).where(Identity.channel == "zulip")).all()
        assert [(i.address, i.customer_id is not None) for i in zulip] == [(str(fake.user(ALICE).user_id), True)]


def test_an_identity_stored_under_an_email_is_rekeyed_to_the_user_id(desk: ZulipDesk, fake: FakeZulip, clock) -> None:  # noqa: ANN001
    """Before issue 13 a Zulip account was stored under the email its messages showed."""
    with transaction(desk.engine) as session:
        legacy, _code = customers.create_customer(session, "Alice Customer", None, "pt", clock())
        customers.link_identity(session, legacy, "zulip", ALICE, clock())
        stand_in = f"user{fake.user(BOB).user_id}@zulip.example.net"
        bob, _code = customers.create_customer(session, "Bob Customer", None, "en", clock())
        customers.link_identity(session, bob, "zulip", stand_in, clock())
    fake.set_email_visibility(BOB, ADMINS)
    desk.start()
    fake.post_dm(ALICE, "ajuda")
    desk.wait_dm(ALICE, "abrir")  # answered in the linked customer's language: she was recognised
    fake.post_dm(BOB, "credits")
    desk.wait_dm(BOB, "credit")
    assert not any("don't know this account" in m.content for m in desk.dms_to(BOB))
    with transaction(desk.engine) as session:
        keyed = {i.address: i.customer_id for i in session.scalars(select(Identity).where(Identity.channel == "zulip"))}
    assert keyed == {str(fake.user(ALICE).user_id): legacy.id, str(fake.user(BOB).user_id): bob.id}


def test_zulip_email_links_by_user_id_where_visible_and_points_to_activation_codes_elsewhere(
    desk: ZulipDesk, fake: FakeZulip, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deskbot(*args: str) -> tuple[int, str, str]:
        with CliRunner().isolation() as (stdout, stderr, _mixed):
            code = exit_status(main, list(args))
            return code, stdout.getvalue().decode(), stderr.getvalue().decode()

    monkeypatch.setenv("DESKBOT_DATABASE_URL", db_url)
    for name in ("ZULIP_CONFIG", "ZULIP_SITE", "ZULIP_EMAIL", "ZULIP_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    code, _out, err = deskbot("customers", "add", "Acme Lda", "--zulip-email", ALICE)
    assert code == 1 and "the Zulip settings" in err and "activation code" in err and len(err.splitlines()) == 1

    monkeypatch.setenv("ZULIP_SITE", fake.url)
    monkeypatch.setenv("ZULIP_EMAIL", BOT)
    monkeypatch.setenv("ZULIP_API_KEY", BOT_KEY)
    alice = fake.user(ALICE).user_id
    code, out, err = deskbot("customers", "add", "Acme Lda", "--zulip-email", ALICE.upper(), "--json")
    assert code == 0, err
    assert json.loads(out)["identities"] == [{"channel": "zulip", "address": str(alice)}]

    fake.set_email_visibility(BOB, ADMINS)
    code, out, err = deskbot("customers", "add", "Beta SA", "--zulip-email", BOB)
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert line.startswith(f"error: --zulip-email: Zulip shows the bot no account with the address {BOB}")
    assert "restrict who sees email addresses" in line and "activation code (they send: link CODE)" in line
    assert customer_count(desk) == 1  # nothing created

    # The customer linked by address is recognised when they write.
    desk.start()
    fake.post_dm(ALICE, "credits")
    desk.wait_dm(ALICE, "credit")
    assert not any("don't know this account" in m.content for m in desk.dms_to(ALICE))
