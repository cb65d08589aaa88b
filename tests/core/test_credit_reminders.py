"""Credit expiry reminders (bot/reminders.py, run by the watcher): once per pack (a customer's
packs due together in one message), in the month before its last valid day, in service hours, on
the account the customer wrote from last, in their language; never for used-up or lapsed packs;
off with DESKBOT_CREDIT_REMINDER_DAYS=0."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from storage.db import transaction
from storage.models import CreditPack, Customer
from tests.desk import Desk

# The clock starts on Wednesday 2 December 2026 at 10:00 in Lisbon (tests/conftest.py).
LAPSES_IN_20_DAYS = date(2025, 12, 22)  # last valid day: 22 Dec 2026
LAPSES_IN_40_DAYS = date(2026, 1, 11)  # last valid day: 11 Jan 2027


def _use_credit(desk: Desk, who: str, number: int) -> None:
    assert f"Incident #{number} is open" in desk.say(who, "open The NAS is slow")
    desk.engineer(f"/resolve {number}")  # no response-target notices in the way


def _reminded(desk: Desk) -> dict[int, bool]:
    with transaction(desk.engine) as s:
        return {p.id: p.expiry_reminded_at is not None for p in s.scalars(select(CreditPack).order_by(CreditPack.id))}


def _watch(desk: Desk) -> str:
    start = len(desk.out.getvalue())
    desk.runtime.watch_once()
    desk.runtime.dispatcher.drain("console")
    return desk.out.getvalue()[start:]


def test_a_customer_is_reminded_once_in_their_language_of_credits_about_to_lapse(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3, purchased=LAPSES_IN_20_DAYS)
    _use_credit(desk, "Acme", 1)
    desk.customer("Cliente", credits=1, lang="pt", purchased=LAPSES_IN_20_DAYS)
    desk.customer("Later", credits=2, purchased=LAPSES_IN_40_DAYS)
    desk.customer("Spent", credits=1, purchased=LAPSES_IN_20_DAYS)
    _use_credit(desk, "Spent", 2)

    out = _watch(desk)
    assert (
        "deskbot → Acme:\n  A reminder: 2 support credits from the pack you bought on 22 Dec 2025 are still unused."
        " They can be used until 22 Dec 2026 inclusive; after that day they lapse.\n"
        '  To open an incident, send "open" followed by what it is about.' in out
    )
    assert (
        "deskbot → Cliente:\n  Um lembrete: 1 crédito de suporte do pacote que comprou em 22 de dezembro de 2025 ainda"
        " não foi utilizado. Pode ser utilizado até 22 de dezembro de 2026, inclusive; depois desse dia, caduca.\n"
        "  Para abrir um incidente, envie «abrir» seguido do assunto." in out
    )
    assert "→ Later" not in out and "→ Spent" not in out  # 40 days away; nothing left to use
    assert _reminded(desk) == {1: True, 2: True, 3: False, 4: False}
    assert desk.runtime.metrics.registry.get_sample_value("deskbot_credit_reminders_total") == 2

    assert _watch(desk) == ""  # once per pack
    # Engineers see it: a customer may say they were never told.
    shown = desk.engineer("/customer show Acme")
    assert "2 left, valid until 22 Dec 2026 inclusive (reminded of its end on 2 Dec 2026)" in shown
    assert "reminded" not in desk.engineer("/customer show Later")
    assert _watch(Desk(engine, db_url, clock)) == ""  # and after a restart

    # Later's pack comes within 30 days on Saturday 12 December: told on Monday, in service hours.
    clock.advance(days=10)  # Saturday 12 Dec, 10:00
    assert _watch(desk) == ""
    clock.advance(days=1, hours=21, minutes=30)  # Monday 14 Dec, 07:30: before opening
    assert _watch(desk) == ""
    clock.advance(minutes=30)  # 08:00
    assert "deskbot → Later:\n  A reminder: 2 support credits" in _watch(desk)
    assert _reminded(desk)[3] is True


def test_the_reminder_goes_to_the_account_written_from_last_and_can_be_turned_off(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1, purchased=LAPSES_IN_20_DAYS)
    code = desk.engineer("/customer code Acme").split(": ")[1].split()[0]
    desk.say("acme-ops", f"link {code}")
    clock.advance(minutes=5)
    desk.say("acme-ops", "credits")  # Acme's second account wrote last
    out = _watch(desk)
    assert "deskbot → acme-ops:\n  A reminder: 1 support credit" in out and "→ Acme:" not in out

    off = Desk(engine, db_url, clock, DESKBOT_CREDIT_REMINDER_DAYS="0")
    off.customer("Beta", credits=1, purchased=LAPSES_IN_20_DAYS)
    assert _watch(off) == ""
    assert _reminded(off)[2] is False


def test_credits_says_how_soon_unused_credits_lapse(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3, purchased=LAPSES_IN_20_DAYS)
    desk.customer("Cliente", credits=1, lang="pt", purchased=LAPSES_IN_20_DAYS)
    desk.customer("Later", credits=2, purchased=LAPSES_IN_40_DAYS)
    assert "3 left, valid until 22 Dec 2026 inclusive — its last day is in 20 days" in desk.say("Acme", "credits")
    assert "válido até 22 de dezembro de 2026, inclusive — o último dia é daqui a 20 dias" in desk.say(
        "Cliente", "creditos"
    )
    assert "last day" not in desk.say("Later", "credits")
    clock.advance(days=20)
    assert "valid until 22 Dec 2026 inclusive — today is its last day" in desk.say("Acme", "credits")
    clock.advance(days=1)
    assert "expired (it was valid until 22 Dec 2026 inclusive)" in desk.say("Acme", "credits")


def test_two_passes_that_read_the_pack_together_remind_once(engine, db_url, clock):
    """On SQLite `packs_to_remind` locks nothing: a pass that read the pack before another pass
    reminded the customer must not remind them again (`credits.claim_reminder`)."""
    from bot.services import credits

    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1, purchased=LAPSES_IN_20_DAYS)
    with transaction(desk.engine) as late:
        pack = late.get_one(CreditPack, 1)  # read before the other pass reminds
        assert "A reminder: 1 support credit" in _watch(desk)
        assert credits.claim_reminder(late, pack, clock()) is False
    assert _watch(desk) == ""


def test_packs_due_together_are_one_reminder_that_lists_them(engine, db_url, clock):
    """Two packs of one customer due in the same pass (here: imported at go-live, one lapsing in
    20 days, one in 30) make one message, in the customer's language; each pack is marked."""
    from bot.services import credits

    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2, purchased=LAPSES_IN_20_DAYS)
    desk.customer("Cliente", credits=1, lang="pt", purchased=LAPSES_IN_20_DAYS)
    with transaction(desk.engine) as s:
        for customer_id, n in ((1, 1), (2, 3)):
            customer = s.get_one(Customer, customer_id)
            credits.grant_credits(s, customer, n, date(2026, 1, 1), "import", clock(), months=12)  # last day 1 Jan 2027

    out = _watch(desk)
    assert out.count("deskbot → Acme:") == 1 and out.count("deskbot → Cliente:") == 1
    assert (
        "deskbot → Acme:\n  A reminder: support credits you have not used yet lapse soon.\n"
        "  • 2 credits from the pack you bought on 22 Dec 2025: they can be used until 22 Dec 2026 inclusive\n"
        "  • 1 credit from the pack you bought on 1 Jan 2026: it can be used until 1 Jan 2027 inclusive\n"
        "  After a pack's last day, its unused credits lapse.\n"
        '  To open an incident, send "open" followed by what it is about.' in out
    )
    assert (
        "deskbot → Cliente:\n  Um lembrete: há créditos de suporte por utilizar que caducam em breve.\n"
        "  • 1 crédito do pacote que comprou em 22 de dezembro de 2025: pode ser utilizado até 22 de dezembro"
        " de 2026, inclusive\n"
        "  • 3 créditos do pacote que comprou em 1 de janeiro de 2026: podem ser utilizados até 1 de janeiro"
        " de 2027, inclusive\n"
        "  Depois do último dia de um pacote, os créditos por utilizar caducam.\n" in out
    )
    assert _reminded(desk) == {1: True, 2: True, 3: True, 4: True}
    assert desk.runtime.metrics.registry.get_sample_value("deskbot_credit_reminders_total") == 2
    assert _watch(desk) == ""
