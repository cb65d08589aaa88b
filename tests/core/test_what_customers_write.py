"""What customers really write, through the real runtime (console channel): sentences that begin
with a command word, `reopen N` with words after it, long pasted text, a Portuguese name in English,
a stranger's commands, several open incidents, a pack dated ahead, help for someone not linked yet."""

from __future__ import annotations

import pytest
from sqlmodel import select

from storage.db import transaction
from storage.models import Customer, Draft, Identity
from tests.desk import Desk


@pytest.mark.parametrize(
    "text",
    [
        "help me please, the second disk also died",
        "close to losing data here",
        "link aggregation stopped working too",
        "Lang settings in the web UI are broken",
        "status of the array is degraded now",
        "Estado do servidor: continua em baixo",
    ],
)
def test_a_sentence_that_begins_with_a_command_word_is_added_to_the_open_incident(engine, db_url, clock, text):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open The NAS lost a disk")
    out = desk.say("Acme", text)
    assert "Usage" not in out and "Utilização" not in out
    assert desk.bodies(1)[-1] == text


def test_a_command_written_wrong_still_gets_its_usage(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open The NAS lost a disk")
    assert "Usage: severity <number> <1|2|3|4>" in desk.say("Acme", "severity high 1")
    assert "Usage: help" in desk.say("Acme", "help me")  # two words: a command written wrong
    # A leading "/" says a command was meant, however long the rest.
    assert "Usage: close <number>" in desk.say("Acme", "/close to losing data here")
    assert len(desk.bodies(1)) == 1


def test_a_strangers_sentence_that_begins_with_help_gets_the_daily_answer_and_is_kept(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    out = desk.say("newcomer", "help me please, the backup job fails")
    assert "I don't know this account yet" in out and "Usage" not in out
    assert _draft(desk, "newcomer") == "help me please, the backup job fails"


def _draft(desk: Desk, address: str) -> str | None:
    with transaction(desk.engine) as s:
        identity = s.exec(select(Identity).where(Identity.channel == "console", Identity.address == address)).one()
        draft = s.get(Draft, identity.id)
        return None if draft is None else draft.text


def test_reopen_with_words_after_the_number_reopens_and_adds_them(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open The NAS lost a disk")
    desk.engineer("/resolve 1 replaced the disk")
    out = desk.say("Acme", "reopen 1 the fix did not work, same error")
    assert "Incident #1 is open again, at no charge." in out and "Your message was added to it." in out
    assert "We will answer by" in out
    assert desk.bodies(1)[-1] == "the fix did not work, same error"
    assert "Usage" not in out
    # Open already: the words are added like "#1 …".
    out = desk.say("Acme", "reopen 1 and the fan is loud")
    assert "Added to incident #1." in out and desk.bodies(1)[-1] == "and the fan is loud"


def test_reopen_with_words_after_the_window_keeps_them_on_the_incident(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open The NAS lost a disk")
    desk.engineer("/resolve 1")
    clock.advance(days=8)
    out = desk.say("Acme", "reopen 1 it is broken again")
    assert "more than 7 days ago, so it cannot be reopened at no charge" in out
    assert desk.bodies(1)[-1] == "it is broken again"
    assert "open again" not in out


def test_a_long_text_kept_as_a_draft_is_kept_whole(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.say("Acme", "open first")
    pasted = "open SECOND " + "y" * 25_000 + " END"
    assert 'reply "open" again' in desk.say("Acme", pasted)
    assert "Incident #2 is open" in desk.say("Acme", "open")
    assert desk.bodies(2) == ["SECOND " + "y" * 25_000 + " END"]


def test_an_english_customer_stays_english_when_a_later_message_names_joao(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    code = desk.engineer("/customer add Initech").split("Activation code: ")[1].split()[0]
    with transaction(desk.engine) as s:  # no language chosen: the first message decides
        customer = s.exec(select(Customer).where(Customer.name == "Initech")).one()
        customer.lang = None
    desk.engineer("/credits grant Initech 2")
    assert "linked" in desk.say("ana", f"link {code}")
    desk.say("ana", "open The backup fails")
    clock.advance(minutes=10)  # a message of its own, answered
    out = desk.say("ana", "João from our IT team says São Paulo sees error 42")
    assert "Added to incident #1." in out
    assert "Your incidents:" in desk.say("ana", "status")


def test_a_first_message_in_portuguese_is_answered_in_portuguese(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    assert "Olá! Este é o serviço de suporte comercial." in desk.say("maria", "Olá, preciso de ajuda com o meu NAS")


def test_a_strangers_commands_are_not_kept_as_the_text_of_their_incident(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    code = desk.engineer("/customer add Initech").split("Activation code: ")[1].split()[0]
    desk.engineer("/credits grant Initech 2")
    desk.say("rui", "olá, preciso de ajuda com o meu NAS")
    desk.say("rui", "status")
    desk.say("rui", "credits")
    desk.say("rui", "open o disco morreu")
    assert _draft(desk, "rui") == "olá, preciso de ajuda com o meu NAS\n\no disco morreu"
    desk.say("rui", f"ligar {code}")
    desk.say("rui", "abrir")
    assert desk.bodies(1) == ["olá, preciso de ajuda com o meu NAS\n\no disco morreu"]


def test_the_opening_answer_says_how_to_add_to_it_when_other_incidents_are_open(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    assert "Anything you write now is added to this incident." in desk.say("Acme", "open first")
    desk.say("Acme", "open another thing")
    out = desk.say("Acme", "open")
    assert "Incident #2 is open" in out
    assert "Anything you write now" not in out and 'To add to it, begin your message with "#2".' in out


def test_a_pack_dated_ahead_is_waited_for_not_sold_again(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme")
    desk.engineer("/credits grant Acme 3 2026-12-20")
    out = desk.say("Acme", "open my question")
    assert "Your support credits are valid from 20 Dec 2026." in out
    assert "no support credits yet" not in out
    assert _draft(desk, "Acme") == "my question"
    clock.advance(days=18)
    assert "Incident #1 is open" in desk.say("Acme", "open my question")


def test_help_for_someone_not_linked_lists_what_they_can_use(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    out = desk.say("stranger", "help")
    assert "• link <code>" in out and "• lang [en|pt]" in out
    assert "• open" not in out and "• status" not in out and "Any other message goes to your open incident" not in out
    assert "work once this account is linked" in out and "To buy incident-based support, see" in out
    desk.customer("Acme", credits=1)
    out = desk.say("Acme", "help")
    assert "• open [text]" in out and "• reopen <number> [text]" in out and "work once this account" not in out


def test_help_with_targets_per_severity_does_not_also_give_one_target(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, DESKBOT_RESPONSE_TARGET="1:1,2:2,3:2,4:3")
    desk.customer("Acme", credits=1)
    out = desk.say("Acme", "help")
    assert "We answer within" not in out
    assert "Service hours: Mon-Fri 08:00-18:00 (Lisbon time), except public holidays." in out
    assert "Response time by severity, in business days: 1 (critical) 1" in out


def test_a_case_number_with_a_full_stop_after_it_is_read(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open The NAS lost a disk")
    assert "#1" in desk.say("Acme", "status 1.") and "Unexpected" not in desk.say("Acme", "status 1?")


def test_the_customer_is_told_the_new_due_time_when_an_engineer_changes_the_severity(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, DESKBOT_RESPONSE_TARGET="1:1,2:2,3:2,4:3")
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open The NAS lost a disk")
    start = len(desk.out.getvalue())
    desk.engineer("/severity 1 1")
    told = desk.out.getvalue()[start:]
    assert "Our team set the severity of incident #1 to 1 (critical)." in told
    assert "We will answer by Thursday, 3 December 2026 at 10:00 (Lisbon time)." in told
    clock.advance(days=3)
    start = len(desk.out.getvalue())
    desk.engineer("/severity 1 2")  # the clock started on Wednesday: due on Friday, already past
    assert "Its answer is due now: the team has been told." in desk.out.getvalue()[start:]


def test_credits_count_the_days_to_a_packs_last_day(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2, purchased=clock.now.date().replace(year=2025, day=3))  # last day: 3 Dec
    assert "valid until 3 Dec 2026 inclusive — tomorrow is its last day" in desk.say("Acme", "credits")
    desk.customer("Cliente", credits=2, lang="pt", purchased=clock.now.date().replace(year=2025, day=12))
    assert "— o último dia é daqui a 10 dias" in desk.say("Cliente", "créditos")


def test_a_customer_linked_with_no_credit_is_not_told_zero_credits_left(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    code = desk.engineer("/customer add Initech").split("Activation code: ")[1].split()[0]
    out = desk.say("peter", f"link {code}")
    assert "You have no credit to use today" in out and "0 credits" not in out


def test_a_customer_who_types_an_engineers_sub_command_is_told_it_is_not_theirs(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    assert "You are not authorised to run engineer commands." in desk.say("Acme", "/credits grant Acme 100")
    assert "Credits left: 1" in desk.say("Acme", "/credits")  # their own `credits` still works
    desk.say("Acme", "open Broken")
    assert "Incident #1 now has severity 2" in desk.say("Acme", "/severity 1 2")


def test_a_burst_is_answered_once_per_person_and_again_after_the_teams_answer(engine, db_url, clock):
    """DESKBOT_ACK_QUIET_MINUTES (10): a message right after its sender's own on the case is added
    silently; a colleague's first one is answered, and so is the first after an engineer's answer."""
    desk = Desk(engine, db_url, clock)
    first = desk.engineer("/customer add Initech").split("Activation code: ")[1].split()[0]
    desk.engineer("/credits grant Initech 2")
    assert "linked" in desk.say("ana", f"link {first}")
    second = desk.engineer("/customer code Initech").split("New activation code for `Initech`: ")[1].split()[0]
    assert "linked" in desk.say("bruno", f"link {second}")
    desk.say("ana", "open The backup fails")
    clock.advance(minutes=1)
    assert "deskbot →" not in desk.say("ana", "It stops at 80%")  # the opening said so
    clock.advance(minutes=1)
    assert "deskbot → bruno:\n  Added to incident #1." in desk.say("bruno", "Here too, since Monday")
    clock.advance(minutes=9)
    assert "deskbot →" not in desk.say("bruno", "The log says disk full")  # 9 minutes after his own
    desk.engineer("/reply 1 Please free some space on the target.")
    assert "deskbot → ana:\n  Added to incident #1." in desk.say("ana", "Done, 40% free now")
    assert desk.bodies(1) == [
        "The backup fails",
        "It stops at 80%",
        "Here too, since Monday",
        "The log says disk full",
        "Please free some space on the target.",
        "Done, 40% free now",
    ]
