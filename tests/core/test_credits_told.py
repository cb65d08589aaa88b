"""Credits told truthfully (issue 13, item 8): `/bug` gives a credit back only to a pack that is
still valid, and says exactly what became of it to the engineer and to the customer; a pack's
validity reads the same everywhere ("valid until 3 Dec 2026 inclusive", then "expired").
Through the console desk, on SQLite and PostgreSQL, in English and European Portuguese."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from bot.services import credits
from bot.services.billing import Month, billing_report
from storage.db import transaction
from storage.models import CreditPack, Incident, IncidentEvent
from tests.desk import Desk

#: The desk's clock starts on Wednesday 2 Dec 2026: a pack bought on 3 Dec 2025 is valid until 3 Dec 2026 inclusive.
BOUGHT = date(2025, 12, 3)


def _pack_used(desk: Desk) -> int:
    with transaction(desk.engine) as s:
        return s.scalars(select(CreditPack.used)).one()


def test_bug_on_an_expired_pack_says_the_credit_could_not_be_returned(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1, purchased=BOUGHT)
    out = desk.say("Acme", "open The NAS does not boot")
    assert "One credit used, from the pack valid until 3 Dec 2026 inclusive. No credits left." in out

    clock.advance(days=1)  # Thursday 3 Dec: the last valid day
    assert "• pack of 1 bought 3 Dec 2025: 0 left, valid until 3 Dec 2026 inclusive" in desk.say("Acme", "credits")
    clock.advance(days=1)  # Friday 4 Dec: expired
    out = desk.say("Acme", "credits")
    assert "Credits left: 0" in out
    assert "• pack of 1 bought 3 Dec 2025: expired (it was valid until 3 Dec 2026 inclusive)" in out

    out = desk.engineer("/bug 1")
    assert "deskbot → Acme:\n  Incident #1 was caused by a bug in our software, so it is not charged." in out
    assert (
        "Its credit could not be given back, though: the pack it came from was valid until 3 Dec 2026 inclusive"
        " and has expired, and an expired pack's credits cannot be used." in out
    )
    assert "credit is back" not in out
    assert (
        "#1 is marked as our bug and not charged, but its credit could not be returned: its pack was valid until"
        " 3 Dec 2026 inclusive and has expired. The customer was told why." in out
    )
    assert _pack_used(desk) == 1  # nothing given back to a pack whose credits cannot be used
    assert "Credits left: 0" in desk.say("Acme", "credits")
    with transaction(desk.engine) as s:
        assert s.get(Incident, 1).chargeable is False  # not billed
        details = s.scalars(select(IncidentEvent.detail).where(IncidentEvent.action == "marked as vendor bug")).all()
    assert details == ["credit not returned: pack 1 was valid until 2026-12-03 and has expired"]
    out = desk.engineer("/customer show Acme")
    assert "• pack 1: 1 bought 3 Dec 2025, 0 left, expired (valid until 3 Dec 2026 inclusive)" in out
    assert "#1 is already marked as our bug." in desk.engineer("/bug 1")


def test_bug_on_an_expired_pack_in_portuguese(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Cliente", credits=1, lang="pt", purchased=BOUGHT)
    out = desk.say("Cliente", "abrir O NAS não arranca")
    assert (
        "Foi utilizado um crédito do pacote válido até 3 de dezembro de 2026, inclusive. Não resta nenhum crédito."
        in out
    )
    clock.advance(days=2)
    out = desk.engineer("/bug 1")
    assert (
        "O incidente #1 foi causado por um erro no nosso software, por isso não é cobrado. No entanto, não foi"
        " possível devolver o crédito: o pacote de onde veio era válido até 3 de dezembro de 2026, inclusive, e já"
        " expirou; os créditos de um pacote expirado não podem ser utilizados." in out
    )
    out = desk.say("Cliente", "créditos")
    assert "Créditos restantes: 0" in out
    assert (
        "• pacote de 1 comprado em 3 de dezembro de 2025: expirado (era válido até 3 de dezembro de 2026, inclusive)"
        in out
    )


def test_bug_on_a_valid_pack_gives_the_credit_back_and_says_how_many_are_left(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1, purchased=BOUGHT)
    desk.customer("Cliente", credits=2, lang="pt", purchased=BOUGHT)
    desk.say("Acme", "open The NAS does not boot")
    desk.say("Cliente", "abrir O NAS não arranca")
    clock.advance(days=1)  # the last valid day: still worth giving back

    out = desk.engineer("/bug 1")
    assert (
        "Incident #1 was caused by a bug in our software: there is no charge and its credit is back."
        " You have 1 credit left." in out
    )
    assert (
        "#1 is marked as our bug; its credit went back to its pack, valid until 3 Dec 2026 inclusive."
        " The customer now has 1 credit left in all." in out
    )
    assert "Credits left: 1" in desk.say("Acme", "credits")

    out = desk.engineer("/bug 2")
    assert "não há qualquer custo e o crédito foi devolvido. Tem 2 créditos disponíveis." in out
    assert "The customer now has 2 credits left in all." in out


def test_return_credit_says_what_became_of_the_credit(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2, purchased=BOUGHT)
    with transaction(desk.engine) as s:
        pack = s.scalars(select(CreditPack)).one()
        assert credits.return_credit(s, None, date(2026, 12, 2)).outcome == "not_charged"
        assert credits.return_credit(s, 99, date(2026, 12, 2)).outcome == "not_used"
        assert credits.return_credit(s, pack.id, date(2026, 12, 2)).outcome == "not_used"  # none used yet
        pack.used = 1
        s.flush()
        expired = credits.return_credit(s, pack.id, date(2026, 12, 4))
        assert (expired.outcome, expired.returned, expired.valid_until) == ("expired", False, date(2026, 12, 3))
        assert pack.used == 1
        returned = credits.return_credit(s, pack.id, date(2026, 12, 3))
        assert (returned.outcome, returned.returned, returned.valid_until) == ("returned", True, date(2026, 12, 3))
        assert pack.used == 0


def test_an_incident_that_took_no_credit_says_so(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open Question")
    with transaction(desk.engine) as s:
        s.get(Incident, 1).pack_id = None
    out = desk.engineer("/bug 1")
    assert "Incident #1 was caused by a bug in our software: there is no charge.\n" in out
    assert "#1 is marked as our bug; it took no credit, so there is none to return." in out


def test_waive_returns_the_credit_without_calling_it_our_bug(engine, db_url, clock):
    """`/waive N [reason]`: a case opened twice for one problem, or by mistake, costs nothing; the
    customer is not told it was our bug, the reason stays in the history, and the month's bill
    leaves the case out."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.customer("Cliente", credits=1, lang="pt", purchased=BOUGHT)
    desk.say("Acme", "open The NAS does not boot")
    desk.say("Acme", "open The NAS still does not boot")
    desk.say("Acme", "open")  # a second incident, confirmed: two credits used
    assert "Credits left: 1" in desk.say("Acme", "credits")

    out = desk.engineer("/waive 2 the same problem as #1")
    assert "deskbot → Acme:\n  There is no charge for incident #2: its credit is back. You have 2 credits left." in out
    assert "bug" not in out
    assert (
        "#2 is not charged; its credit went back to its pack, valid until 2 Dec 2027 inclusive."
        " The customer now has 2 credits left in all." in out
    )
    assert "Credits left: 2" in desk.say("Acme", "credits")
    with transaction(desk.engine) as s:
        assert s.get(Incident, 2).chargeable is False and s.get(Incident, 1).chargeable is True
        details = s.scalars(select(IncidentEvent.detail).where(IncidentEvent.action == "charge waived")).all()
    assert details == ["the same problem as #1; credit returned"]
    assert "chargeable: no (waived)" in desk.engineer("/case 2")
    with transaction(desk.engine) as s:  # the month's bill: #1 only
        report = billing_report(s, Month(2026, 12), desk.runtime.deployment.settings.calendar.tz, Decimal(99), "EUR")
    assert [line.incidents for line in report.lines] == [(1,)]
    assert "chargeable: yes" in desk.engineer("/case 1")
    # Nothing is returned twice, whichever way it is asked for.
    assert "#2 is already not charged: its charge was waived." in desk.engineer("/waive 2")
    assert "#2 is already not charged: its charge was waived." in desk.engineer("/bug 2")
    desk.engineer("/bug 1")
    assert "chargeable: no (our bug)" in desk.engineer("/case 1")
    assert "#1 is already marked as our bug." in desk.engineer("/waive 1")
    assert "Credits left: 3" in desk.say("Acme", "credits")

    # Portuguese, and a pack that expired since: nothing given back, and the customer is told why.
    desk.say("Cliente", "abrir O NAS não arranca")
    clock.advance(days=2)
    out = desk.engineer("/isentar 3")
    assert (
        "O incidente #3 não tem qualquer custo. No entanto, não foi possível devolver o crédito: o pacote de onde"
        " veio era válido até 3 de dezembro de 2026, inclusive, e já expirou" in out
    )
    assert "#3 is not charged, but its credit could not be returned" in out
    with transaction(desk.engine) as s:
        assert s.get(Incident, 3).chargeable is False
