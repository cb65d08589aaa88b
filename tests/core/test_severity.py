"""Severity (issue 13, item 1; SPEC §1–§3, §6) through the console desk, in English and Portuguese.

Every incident has a severity (default 3), set by the customer (`severity N 1-4`, `gravidade`)
and by engineers (`/severity [N] <1-4>`); it is shown in `status`, `/case`, `/cases` and the
case topic; cases are listed by severity, then due time; each severity may have its own
response target; a case that becomes severity 1 mentions DESKBOT_URGENT_NOTIFY in its topic, once.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.config import Settings
from bot.i18n import format_when
from storage.db import transaction
from storage.models import Incident, IncidentEvent
from tests.desk import Desk

LISBON = Settings(_env_file=None).calendar.tz  # type: ignore[call-arg]
TARGETS = "1:1,2:2,3:2,4:3"
URGENT = "@*support-oncall* @**Erin Engineer**"


def _when(moment, lang: str = "en") -> str:  # noqa: ANN001
    return format_when(moment, lang, LISBON)


def _incident(desk: Desk, number: int) -> Incident:
    with transaction(desk.engine) as s:
        incident = s.get(Incident, number)
        s.expunge(incident)
        return incident


def _topic(out: str, number: int) -> list[str]:
    """The lines the console printed for case `number`'s topic (the Zulip topic's posts)."""
    return [line for line in out.splitlines() if line.startswith(f"[#{number} ")]


def test_opening_answer_and_topic_name_the_severity_and_how_to_change_it(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, DESKBOT_RESPONSE_TARGET=TARGETS)
    desk.customer("Acme", credits=2)
    out = desk.say("Acme", "open The NAS does not boot")
    assert (
        'Severity: 3 (normal). To change it, send "severity 1 <level>" (1 = critical, 2 = high, 3 = normal, 4 = low).'
        in out
    )
    # The topic opens with one line saying what the case is, its severity and its due time, then the words.
    topic = _topic(out, 1)
    due = _incident(desk, 1).due_at  # Wed 10:00 + 2 business days: Fri 10:00
    assert due.day == 4 and due.hour == 10
    assert topic[0].endswith(
        f"📥 New case #1 from `Acme`: `The NAS does not boot` · severity 3 (normal) · response due {_when(due)}"
    )
    assert "wrote:" in topic[1]
    assert _incident(desk, 1).severity == 3

    desk.customer("Cliente", credits=1, lang="pt")
    out = desk.say("Cliente", "abrir O disco falha")
    assert (
        "Gravidade: 3 (normal). Para a alterar, envie «gravidade 2 <nível>» (1 = crítica, 2 = alta, 3 = normal, 4 = baixa)."
        in out
    )
    assert "severity 3 (normal)" in _topic(out, 2)[0]  # engineers read English


def test_the_customer_sets_the_severity_and_the_due_time_follows_its_target(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, DESKBOT_RESPONSE_TARGET=TARGETS, DESKBOT_URGENT_NOTIFY=URGENT)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open Shares are slow")  # Wed 10:00, severity 3: due Fri 10:00
    opened = _incident(desk, 1)
    clock.advance(hours=3)

    out = desk.say("Acme", "severity 1 1")
    # One business day from when the clock started (the opening), not from now.
    due = opened.opened_at.replace(day=3)
    assert _incident(desk, 1).due_at == due
    assert "Incident #1 now has severity 1 (critical)." in out and f"We will answer by {_when(due)}." in out
    [line, mention] = _topic(out, 1)[0], out.split("\n")[1]
    assert line.endswith(
        f"Severity now 1 (critical), was 3 (normal); set by the customer (`Acme`) · response due {_when(due)}"
    )
    assert mention == f"🚨 Severity 1: {URGENT}"  # the operator's mention, posted as it is (not inert)

    # Lowered and raised again within the hour: the due time follows; the same emergency, no second call.
    out = desk.say("Acme", "severity 1 4")
    assert _incident(desk, 1).due_at == opened.opened_at.replace(day=7)  # 3 business days: Mon 7 Dec
    assert "Severity now 4 (low), was 1 (critical)" in out and "🚨" not in out
    clock.advance(minutes=59)
    out = desk.say("Acme", "severity 1 1")
    assert "Severity now 1 (critical)" in out and URGENT not in out
    assert "Incident #1 already has severity 1 (critical)." in desk.say("Acme", "severity 1 1")
    # Raised to 1 again later: a case raised to 1 calls the on-call engineers (SPEC §3), counted from the last call.
    desk.say("Acme", "severity 1 2")
    clock.advance(minutes=1)
    out = desk.say("Acme", "severity 1 1")
    assert f"🚨 Severity 1: {URGENT}" in out

    # Only an open incident of one's own; the level is 1 to 4.
    assert "You have no incident #9." in desk.say("Acme", "severity 9 2")
    assert "Severity must be one of: 1 (critical), 2 (high), 3 (normal), 4 (low)." in desk.say("Acme", "severity 1 5")
    assert "Give its number" in desk.say("Acme", "severity")
    desk.engineer("/resolve 1")
    assert "Incident #1 is not open, so its severity cannot change." in desk.say("Acme", "severity 1 2")
    with transaction(desk.engine) as s:
        changes = s.scalars(select(IncidentEvent.detail).where(IncidentEvent.action == "severity")).all()
    assert changes == ["3 → 1", "1 → 4", "4 → 1", "1 → 2", "2 → 1"]


def test_a_severity_is_taken_by_the_name_the_answers_give_it_in_either_language(engine, db_url, clock):
    # The answers say "severity 2 (high)"; people write back the word they read.
    desk = Desk(engine, db_url, clock, DESKBOT_RESPONSE_TARGET=TARGETS)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open Shares are slow")
    assert "Incident #1 now has severity 2 (high)." in desk.say("Acme", "severity 1 High")
    assert "Incident #1 now has severity 1 (critical)." in desk.say("Acme", "gravidade 1 Crítica")
    desk.customer("Cliente", credits=1, lang="pt")
    desk.say("Cliente", "abrir O disco falha")
    assert "O incidente #2 tem agora a gravidade 2 (alta)." in desk.say("Cliente", "gravidade 2 alta")
    assert "O incidente #2 tem agora a gravidade 1 (crítica)." in desk.say("Cliente", "gravidade 2 critica")
    out = desk.say("Cliente", "gravidade 2 urgente")
    assert "Gravidade tem de ser um dos seguintes: 1 (crítica), 2 (alta), 3 (normal), 4 (baixa)." in out
    assert "#1 now has severity 4 (low)." in desk.engineer("/severity 1 baixa")
    assert "#1 now has severity 3 (normal)." in desk.engineer("/severity 1 normal")
    # A word that names no severity is still refused, and nothing changes.
    assert "must be one of: 1 (critical), 2 (high), 3 (normal), 4 (low)." in desk.say("Acme", "severity 1 urgent")
    assert _incident(desk, 1).severity == 3


def test_a_case_waiting_on_the_customer_keeps_waiting_and_a_late_target_is_due_at_once(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, DESKBOT_RESPONSE_TARGET=TARGETS)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open Printer jams")
    desk.engineer("/reply 1 Which model?")
    out = desk.say("Acme", "severity 1 2")
    assert "Incident #1 now has severity 2 (high)." in out and "We will answer" not in out
    assert _incident(desk, 1).due_at is None and "waiting on the customer" in _topic(out, 1)[0]
    # The customer writes: the clock starts with the target of the new severity.
    desk.say("Acme", "It is a LaserJet 4")
    assert _incident(desk, 1).due_at == _incident(desk, 1).clock_from.replace(day=4)

    # Raised to 1 after its 1-day target has passed: due at once, and the customer is told so.
    clock.advance(days=1, hours=2)
    out = desk.say("Acme", "severity 1 1")
    assert "Its answer is due now: the team has been told." in out


def test_engineers_set_the_severity_in_the_topic_or_by_number(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, DESKBOT_URGENT_NOTIFY="@*support-oncall*")
    desk.customer("Acme", credits=2, lang="pt")
    desk.say("Acme", "abrir Cópias falham")
    out = desk.engineer("/severity 1 2")
    assert "#1 now has severity 2 (high)." in out
    assert "Severity now 2 (high), was 3 (normal); set by `engineer@console`" in _topic(out, 1)[0]
    # The customer is told, in their language.
    assert "A nossa equipa definiu a gravidade do incidente #1 como 2 (alta)." in out
    assert "#1 already has severity 2 (high)." in desk.engineer("/severity 1 2")
    assert "There is no case #7." in desk.engineer("/severity 7 1")
    assert "must be one of" in desk.engineer("/severity 1 0")
    assert "Give its number" in desk.engineer("/severity")


def test_severity_in_status_case_and_cases_by_severity_then_due_time(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, DESKBOT_RESPONSE_TARGET=TARGETS)
    desk.customer("Acme", credits=5)
    desk.customer("Cliente", credits=5, lang="pt")
    desk.say("Acme", "open First")  # due Fri 10:00
    clock.advance(hours=1)
    desk.say("Cliente", "abrir Segundo")  # due Fri 11:00
    clock.advance(hours=1)
    desk.say("Acme", "open Third")
    desk.say("Acme", "open")  # yes, a new issue: #3, due Fri 12:00
    desk.say("Acme", "severity 3 4")  # low: 3 business days, Mon 12:00
    desk.say("Cliente", "gravidade 2 1")  # critical: 1 business day from 11:00, Thu 11:00

    listing = desk.engineer("/cases")
    order = [line.split()[1] for line in listing.splitlines() if line.lstrip().startswith("• ")]
    assert order == ["#2", "#1", "#3"]
    assert "open cases, by severity, then due time:" in listing
    assert "• #2 `Segundo` from `Cliente` · severity 1 (critical) · open" in listing
    assert "severity: 4 (low)" in desk.engineer("/case 3")

    out = desk.say("Acme", "status")
    assert "#1 First — with the support team, severity 3 (normal); next answer due:" in out
    assert "#3 Third — with the support team, severity 4 (low);" in out
    assert "Severity: 4 (low)" in desk.say("Acme", "status 3")
    out = desk.say("Cliente", "estado")
    assert "#2 Segundo — com a equipa de suporte, gravidade 1 (crítica);" in out
    assert "Gravidade: 1 (crítica)" in desk.say("Cliente", "estado 2")


def test_cases_says_how_many_it_left_out(engine, db_url, clock, monkeypatch):
    monkeypatch.setattr("bot.handlers.engineer.CASES_SHOWN", 2)
    desk = Desk(engine, db_url, clock)
    for name in ("Acme", "Beta", "Gama"):
        desk.customer(name, credits=1)
        desk.say(name, f"open Trouble at {name}")
        clock.advance(minutes=1)
    listing = desk.engineer("/cases")
    assert [line.split()[1] for line in listing.splitlines() if line.lstrip().startswith("• ")] == ["#1", "#2"]
    assert "… and 1 more, not shown: narrow the list" in listing
    desk.engineer("/resolve 3")
    listing = desk.engineer("/cases")
    assert "more, not shown" not in listing and "#2" in listing
    assert "… and 1 more, not shown" in desk.engineer("/cases all")


def test_customer_show_lists_the_newest_cases_and_says_older_ones_exist(engine, db_url, clock, monkeypatch):
    monkeypatch.setattr("bot.handlers.accounts.CUSTOMER_CASES_SHOWN", 2)
    desk = Desk(engine, db_url, clock)
    acme = desk.customer("Acme", credits=3)
    desk.say("Acme", "open First")
    desk.say("Acme", "open Second")
    desk.say("Acme", "open")  # yes, a new, separate issue
    assert "older cases not shown" not in desk.engineer("/customer show Acme")
    desk.say("Acme", "open Third")
    desk.say("Acme", "open")
    out = desk.engineer("/customer show Acme")
    assert "#3 `Third`" in out and "#2 `Second`" in out and "#1 `First`" not in out
    assert f"… older cases not shown: `deskbot cases list --customer {acme}` lists them all." in out


def test_watcher_notices_name_the_severity(engine, db_url, clock):
    from bot.services.outgoing import Outgoing
    from bot.watcher import check_targets

    desk = Desk(engine, db_url, clock, DESKBOT_RESPONSE_TARGET=TARGETS)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open Down")
    desk.say("Acme", "severity 1 1")  # due Thu 10:00
    clock.advance(days=1, minutes=1)
    with transaction(desk.engine) as s:
        assert check_targets(Outgoing(s, clock()), desk.runtime.deployment) == [(1, "missed")]
    desk.runtime.dispatcher.drain("console")
    due = _incident(desk, 1).due_at
    assert f"Response target missed: the answer was due {_when(due)}." in desk.out.getvalue()
    assert "(Severity 1, critical.)" in desk.out.getvalue()


def test_help_gives_the_response_time_per_severity_when_they_differ(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, DESKBOT_RESPONSE_TARGET=TARGETS)
    desk.customer("Acme")
    desk.customer("Cliente", lang="pt")
    out = desk.say("Acme", "help")
    assert "Response time by severity, in business days: 1 (critical) 1, 2 (high) 2, 3 (normal) 2, 4 (low) 3." in out
    assert "We answer within" not in out  # one target for all would contradict the list
    assert "severity <number> <1|2|3|4>" in out and "reopen <number> [text]" in out
    out = desk.say("Cliente", "ajuda")
    assert (
        "Prazo de resposta por gravidade, em dias úteis: 1 (crítica) 1, 2 (alta) 2, 3 (normal) 2, 4 (baixa) 3." in out
    )
    assert "gravidade <número> <1|2|3|4> (severity)" in out and "reabrir <número> [texto] (reopen)" in out
    plain = Desk(engine, db_url, clock)
    assert "by severity" not in plain.say("Acme", "help")
