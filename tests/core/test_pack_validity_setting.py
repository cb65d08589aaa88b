"""DESKBOT_PACK_VALIDITY_MONTHS (SPEC §1, §6: a pack's validity is a setting): a pack granted
while it is set lasts that many months, and every place that says how long a pack lasts, or spends
from it, goes by the day fixed at the grant — which pack pays for `open`, the `credits` answer,
`/customer show`, a grant's answer and warning, `/bug`'s credit back and the expiry reminders. A
later change of the setting leaves the packs granted before it as they were. Through the console
desk, on SQLite and PostgreSQL; and the setting's own check at start-up."""

from __future__ import annotations

import io
from datetime import date

import pytest

from bot.config import SettingsError, load_settings
from bot.runtime import chat
from tests.desk import Desk, make_settings

# The desk's clock starts on Wednesday 2 Dec 2026, 10:00 in Lisbon (tests/conftest.py).
SEVEN_MONTHS_AGO = date(2026, 5, 2)  # six months: valid until 2 Nov 2026; a year: until 2 May 2027
FIVE_MONTHS_AGO = date(2026, 7, 10)  # six months: valid until 10 Jan 2027
LAPSES_IN_18_DAYS = date(2026, 6, 20)  # six months: 20 Dec 2026; a year: 20 Jun 2027, no reminder yet

SIX_MONTHS = {"DESKBOT_PACK_VALIDITY_MONTHS": "6"}


def test_a_pack_bought_seven_months_ago_no_longer_pays_with_six_months(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, **SIX_MONTHS)
    desk.customer("Old", credits=2, purchased=SEVEN_MONTHS_AGO)
    desk.customer("Fresh", credits=2, purchased=FIVE_MONTHS_AGO)

    out = desk.say("Old", "open The NAS is slow")
    assert "Incident #" not in out and "Your support credits have expired" in out
    assert "• pack of 2 bought 2 May 2026: expired (it was valid until 2 Nov 2026 inclusive)" in desk.say(
        "Old", "credits"
    )
    assert "Credits left: 0" in desk.say("Old", "credits")
    assert "expired (valid until 2 Nov 2026 inclusive)" in desk.engineer("/customer show Old")

    credits = desk.say("Fresh", "credits")
    assert "Credits left: 2" in credits
    assert "• pack of 2 bought 10 Jul 2026: 2 left, valid until 10 Jan 2027 inclusive" in credits
    out = desk.say("Fresh", "open The NAS is slow")
    assert "Incident #1 is open" in out
    assert (
        "One credit used, from the pack valid until 10 Jan 2027 inclusive. 1 credit left, valid until 10 Jan 2027 inclusive."
        in out
    )
    assert "1 left, valid until 10 Jan 2027 inclusive" in desk.engineer("/customer show Fresh")

    # A grant says the configured end, and warns of a pack that has lapsed under it.
    granted = desk.engineer("/credits grant Old 3 2026-05-20")
    assert "Pack 3: 3 credits for `Old`, bought 20 May 2026, valid until 20 Nov 2026 inclusive." in granted
    assert "This pack has expired already" in granted
    # /bug gives a credit back only while its pack is valid: Fresh's is, to 10 Jan 2027.
    assert "valid until 10 Jan 2027 inclusive" in desk.engineer("/bug 1")
    # Cancelling the pack just granted leaves Old nothing: the one of 2 May has lapsed too.
    assert "`Old` has 0 credits left." in desk.engineer("/credits cancel 3")


def test_what_a_customer_is_told_elsewhere_counts_the_months_too(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, **SIX_MONTHS)
    desk.customer("Quiet", credits=2, purchased=SEVEN_MONTHS_AGO)
    # Text with no incident open: not "reply open", but why nothing can be opened.
    assert "Your support credits have expired" in desk.say("Quiet", "The NAS is slow")
    # Linking another account counts the credits left as `credits` does.
    code = desk.engineer("/customer code Quiet").split(": ")[1].split()[0]
    assert "You have no credit to use today" in desk.say("quiet-ops", f"link {code}")


def test_the_same_packs_under_the_default_year(engine, db_url, clock):
    """The control: with the default, twelve months, the seven-month-old pack still pays."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Old", credits=2, purchased=SEVEN_MONTHS_AGO)
    out = desk.say("Old", "open The NAS is slow")
    assert (
        "One credit used, from the pack valid until 2 May 2027 inclusive. 1 credit left, valid until 2 May 2027 inclusive."
        in out
    )


def test_bug_and_the_console_count_credits_left_with_the_configured_months(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, **SIX_MONTHS)
    desk.customer("Acme", credits=2, purchased=SEVEN_MONTHS_AGO)  # lapsed with six months
    desk.engineer("/credits grant Acme 1 2026-07-10")
    assert "Incident #1 is open" in desk.say("Acme", "open The NAS is slow")
    assert "The customer now has 1 credit left in all." in desk.engineer("/bug 1")

    # `deskbot chat` counts the credits of the customer it plays on start.
    out = io.StringIO()
    settings = make_settings(db_url, **SIX_MONTHS)
    chat(settings, customer="Acme", stdin=io.StringIO(""), stdout=out, clock=clock, engine=engine)
    assert "(Acme has 1 credit left.)" in out.getvalue()  # the pack of 10 Jul 2026; not the lapsed one


def test_reminders_count_the_configured_months(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, **SIX_MONTHS)
    desk.customer("Acme", credits=2, purchased=LAPSES_IN_18_DAYS)
    desk.runtime.watch_once()
    desk.runtime.dispatcher.drain("console")
    assert (
        "A reminder: 2 support credits from the pack you bought on 20 Jun 2026 are still unused."
        " They can be used until 20 Dec 2026 inclusive" in desk.out.getvalue()
    )


def test_a_pack_keeps_its_year_when_the_deployment_restarts_with_six_months(engine, db_url, clock):
    year = Desk(engine, db_url, clock)
    year.customer("Acme")
    assert "bought 2 May 2026, valid until 2 May 2027 inclusive" in year.engineer("/credits grant Acme 2 2026-05-02")
    assert "bought 20 Dec 2025, valid until 20 Dec 2026 inclusive" in year.engineer("/credits grant Acme 1 2025-12-20")

    # The operator shortens the validity and restarts: the packs sold meanwhile keep their day.
    six = year.restarted(**SIX_MONTHS)
    credits = six.say("Acme", "credits")
    assert "Credits left: 3" in credits
    assert "• pack of 1 bought 20 Dec 2025: 1 left, valid until 20 Dec 2026 inclusive" in credits
    assert "• pack of 2 bought 2 May 2026: 2 left, valid until 2 May 2027 inclusive" in credits
    # The pack of 20 Dec 2025 lapses in 18 days: its customer is reminded of that day.
    six.runtime.watch_once()
    six.runtime.dispatcher.drain("console")
    assert (
        "A reminder: 1 support credit from the pack you bought on 20 Dec 2025 is still unused."
        " It can be used until 20 Dec 2026 inclusive" in six.out.getvalue()
    )
    out = six.say("Acme", "open The NAS is slow")
    assert (
        "One credit used, from the pack valid until 20 Dec 2026 inclusive. 2 credits left, valid until 2 May 2027 inclusive."
        in out
    )
    assert "valid until 20 Dec 2026 inclusive" in six.engineer("/bug 1")  # given back to its pack

    # A pack granted now gets six months: bought after the pack of 2 May, it lapses first, so it
    # is listed, and spent, before it.
    granted = six.engineer("/credits grant Acme 1 2026-07-10")
    assert "Pack 3: 1 credit for `Acme`, bought 10 Jul 2026, valid until 10 Jan 2027 inclusive." in granted
    shown = six.engineer("/customer show Acme")
    assert (
        "• pack 3: 1 bought 10 Jul 2026, 1 left, valid until 10 Jan 2027 inclusive\n"
        "  • pack 1: 2 bought 2 May 2026, 2 left, valid until 2 May 2027 inclusive"
    ) in shown
    # Back to a year: the six-month pack stays six months.
    again = six.restarted()
    assert "• pack of 1 bought 10 Jul 2026: 1 left, valid until 10 Jan 2027 inclusive" in again.say("Acme", "credits")


@pytest.mark.parametrize("value", ["0", "121", "soon", "-6", "6.5", "²"])
def test_a_bad_validity_stops_start_up_with_one_line_naming_it(monkeypatch, value: str) -> None:  # noqa: ANN001
    monkeypatch.setenv("DESKBOT_PACK_VALIDITY_MONTHS", value)
    with pytest.raises(SettingsError) as raised:
        load_settings(None)
    message = str(raised.value)
    assert (
        message.startswith("DESKBOT_PACK_VALIDITY_MONTHS: expected whole months from 1 to 120") and "\n" not in message
    )


@pytest.mark.parametrize(("value", "months"), [(None, 12), ("1", 1), (" 6 ", 6), ("120", 120)])
def test_the_validity_takes_whole_months(monkeypatch, value: str | None, months: int) -> None:  # noqa: ANN001
    if value is None:
        monkeypatch.delenv("DESKBOT_PACK_VALIDITY_MONTHS", raising=False)
    else:
        monkeypatch.setenv("DESKBOT_PACK_VALIDITY_MONTHS", value)
    assert load_settings(None).pack_validity_months == months
