"""A customer's command in the mail thread of one of their incidents, through the real runtime
(intake, router, store) on SQLite and PostgreSQL: the incident a command needs and was not given is
the thread's (bot.router `Router._in_thread`), and a command word whose arguments do not fit is
answered with its usage while its text is kept, never filed as text alone.

The mail is handed to intake as the email channel hands it over: a reply to the bot's mail about
the incident (`replies_to`, which the bot's sent mail is recorded under), or a new mail whose
subject carries the incident's `[#N]` (`case_hint`). What the bot writes back is read from the
outbox (tests/email has the real mail server).
"""

from __future__ import annotations

import itertools
from datetime import UTC

import pytest

from adapters.channel import Inbound
from bot.services import customers
from storage.db import transaction
from storage.models import Customer, Incident, PostedMessage
from tests.desk import Desk

ANA = "ana@acme.example"
RUI = "rui@beta.example"
#: The Message-ID of the bot's opening answer, as the email channel records it once sent.
OPENING = "<deskbot.opening@support.example>"
_ids = itertools.count(1)


def _acme(desk: Desk, lang: str = "en") -> None:
    """Acme (Ana's address) with incident #1 opened by mail, whose opening answer was sent (a reply
    to it is in #1's thread), and a few minutes on (a message of hers is a burst of its own)."""
    assert "created" in desk.engineer(f"/customer add Acme Lda {ANA}")
    desk.engineer("/credits grant 1 3")
    if lang == "pt":
        desk.engineer("/customer lang pt 1")
    desk.mail(ANA, "open\nThe NAS lost a disk", subject="NAS")
    with transaction(desk.engine) as session:
        session.add(PostedMessage(channel="email", platform_id=OPENING, incident_id=1))
    desk.clock.advance(minutes=15)


def _reply(desk: Desk, text: str, *, to: str = OPENING, sender: str = ANA) -> str:
    """A reply of `sender`'s to the bot's mail `to`; what the engineers' topics printed."""
    return _deliver(desk, sender, text, replies_to=(to,))


def _tagged(desk: Desk, text: str, number: int, sender: str = ANA) -> str:
    """A new mail of `sender`'s whose subject names incident `number` (`[#N] …`)."""
    return _deliver(desk, sender, text, case_hint=number)


def _deliver(desk: Desk, sender: str, text: str, **thread: object) -> str:
    start = len(desk.out.getvalue())
    n = next(_ids)
    desk.runtime.intake.deliver(
        Inbound(
            channel="email",
            sender=sender,
            conversation=f"<thread{n}@acme.example>",
            text=text,
            message_id=f"<reply{n}@acme.example>",
            received_at=desk.clock().astimezone(UTC),
            subject_hint="NAS",
            **thread,  # type: ignore[arg-type]
        )
    )
    desk.runtime.dispatcher.drain("console")
    return desk.out.getvalue()[start:]


def _answers(desk: Desk, since: int, address: str = ANA) -> str:
    """What the bot wrote to `address` after its first `since` mails, joined."""
    return "\n".join(text for _subject, _lang, text in desk.mails_to(address)[since:])


def _incident(desk: Desk, number: int = 1) -> Incident:
    with transaction(desk.engine) as session:
        incident = session.get(Incident, number)
        assert incident is not None
        session.expunge(incident)
        return incident


# -- the opening answer --------------------------------------------------------------


def test_the_opening_answer_names_the_level_apart_from_the_incidents_number(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    (opening,) = _answers(desk, 0).splitlines()[2:3]
    # "<1-4>" after the number was read as the level: it is named, with every level's name.
    assert opening == (
        'Severity: 3 (normal). To change it, send "severity 1 <level>" (1 = critical, 2 = high, 3 = normal, 4 = low).'
    )


# -- the thread's incident is the one a command needs --------------------------------


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("severity 1", "Incident #1 now has severity 1 (critical)."),  # the one number is the level
        ("Severity 2", "Incident #1 now has severity 2 (high)."),
        ("/severity 4", "Incident #1 now has severity 4 (low)."),
        ("severity critical", "Incident #1 now has severity 1 (critical)."),
        ("Severity: high", "Incident #1 now has severity 2 (high)."),
        # A Portuguese word answers in Portuguese (nobody chose a language for Acme yet).
        ("gravidade crítica", "O incidente #1 tem agora a gravidade 1 (crítica)."),
    ],
)
def test_severity_with_the_level_alone_in_the_thread_sets_the_threads_incident(engine, db_url, clock, text, said):
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    sent = len(desk.mails_to(ANA))
    topics = _reply(desk, text)
    answer = _answers(desk, sent)
    level = int(said.split("severity ")[-1].split("gravidade ")[-1][0])
    assert _incident(desk).severity == level
    assert said in answer and "Added to incident" not in answer and "Usage" not in answer
    assert f"Severity now {level}" in topics
    assert desk.bodies(1) == ["The NAS lost a disk"]  # a command, not text for the incident


def test_severity_with_the_level_and_words_in_the_thread_raises_it_and_adds_them(engine, db_url, clock):
    desk = Desk(engine, db_url, clock, DESKBOT_RESPONSE_TARGET="1:1,2:2,3:2,4:3")
    _acme(desk)
    sent = len(desk.mails_to(ANA))
    due = _incident(desk).due_at
    topics = _reply(desk, "Severity: critical, production is down")
    answer = _answers(desk, sent)
    incident = _incident(desk)
    assert incident.severity == 1 and incident.due_at is not None and incident.due_at < due
    assert "Added to incident #1." in answer and "Incident #1 now has severity 1 (critical)." in answer
    assert desk.bodies(1)[-1] == "production is down"
    # The engineers read why before the change that calls them.
    assert topics.index("production is down") < topics.index("Severity now 1 (critical)")

    # The number, then the words: the number is still the level.
    _reply(desk, "severity 2 production is back, but slow")
    assert _incident(desk).severity == 2 and desk.bodies(1)[-1] == "production is back, but slow"


def test_a_number_of_theirs_that_fits_as_written_is_still_theirs_to_name(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    desk.mail(ANA, "open", subject="Printer")  # asked first: a second credit
    desk.mail(ANA, "open\nThe printer jams", subject="Printer")
    desk.mail(ANA, "open", subject="Printer")
    assert desk.incident_count() == 2
    _reply(desk, "severity 2 1")  # in #1's thread, about #2
    assert (_incident(desk, 1).severity, _incident(desk, 2).severity) == (3, 1)
    _tagged(desk, "severity 2", 2)  # the subject names #2: the one number is the level
    assert _incident(desk, 2).severity == 2


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("reopen", None),
        ("Reopen!", None),
        ("/reopen", None),
        ("Reabrir, por favor. Voltou a falhar.", "por favor. Voltou a falhar."),
        ("reopen it failed again tonight", "it failed again tonight"),
    ],
)
def test_reopen_in_the_thread_of_a_resolved_incident_reopens_it(engine, db_url, clock, text, words):
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    desk.engineer("/resolve 1 Disk replaced")
    clock.advance(hours=2)
    sent = len(desk.mails_to(ANA))
    topics = _reply(desk, text)
    answer = _answers(desk, sent)
    assert _incident(desk).state == "open" and _incident(desk).due_at is not None
    # "Reabrir" answers in Portuguese (nobody chose a language for Acme yet).
    assert "Incident #1 is open again, at no charge." in answer or "O incidente #1 foi reaberto, sem custos." in answer
    assert "stays resolved" not in answer and "continua resolvido" not in answer
    assert "Reopened by the customer" in topics
    if words is None:
        assert desk.bodies(1) == ["The NAS lost a disk"]
    else:
        assert desk.bodies(1)[-1] == words


@pytest.mark.parametrize(("text", "thanks"), [("close", None), ("Fechar.", None), ("Close, thanks!", "thanks!")])
def test_close_in_the_thread_closes_the_threads_incident(engine, db_url, clock, text, thanks):
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    desk.engineer("/resolve 1 Disk replaced")
    sent = len(desk.mails_to(ANA))
    _reply(desk, text)
    assert _incident(desk).state == "closed"
    answer = _answers(desk, sent)
    assert "Incident #1 is closed. Thank you!" in answer or "O incidente #1 está fechado. Obrigado!" in answer
    assert desk.bodies(1)[-1] == (thanks or "The NAS lost a disk")


def test_a_tagged_subject_is_a_thread_too(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    _tagged(desk, "severity 1", 1)
    assert _incident(desk).severity == 1


def test_another_customers_incident_is_no_thread(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    assert "created" in desk.engineer(f"/customer add Beta {RUI}")
    desk.engineer("/credits grant 2 1")
    sent = len(desk.mails_to(RUI))
    _reply(desk, "severity 1", sender=RUI)  # Ana's mail forwarded to Rui, who replies to it
    _tagged(desk, "severity 1", 1, sender=RUI)
    assert _incident(desk).severity == 3
    # Read as written, as anywhere else: "1" is the incident's number, which is not Rui's to change.
    assert _answers(desk, sent, RUI).count("Missing <1|2|3|4>. Usage: severity <number> <1|2|3|4>") == 2


# -- what stays text in the thread -----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Status: still rebooting every hour.",
        "close to losing data here, the second disk clicks",
        "Help! server down",
        "Status of my order? It was due on Monday.",
    ],
)
def test_a_sentence_that_begins_with_a_command_word_stays_text_for_the_threads_incident(engine, db_url, clock, text):
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    sent = len(desk.mails_to(ANA))
    _reply(desk, text)
    answer = _answers(desk, sent)
    assert desk.bodies(1)[-1] == text and _incident(desk).state == "open"
    assert "Added to incident #1." in answer and "Usage" not in answer


def test_status_alone_in_the_thread_lists_the_incidents_and_with_courtesy_shows_the_threads(engine, db_url, clock):
    # `status` needs no number (SPEC §2: the customer's incidents): none is missing to fill in.
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    sent = len(desk.mails_to(ANA))
    _reply(desk, "status")
    assert "Your incidents:" in _answers(desk, sent)
    # Words that only ask politely say nothing else: the thread's incident is the one asked about.
    sent = len(desk.mails_to(ANA))
    _reply(desk, "Status, please")
    assert "Incident #1: NAS" in _answers(desk, sent)


# -- a command written wrong: its usage, and its text kept ---------------------------------


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("severity urgent", "Severity must be one of: 1 (critical), 2 (high), 3 (normal), 4 (low)."),
        ("severity", "Missing <1|2|3|4>."),
        ("/severity 9", "Severity must be one of: 1 (critical), 2 (high), 3 (normal), 4 (low)."),
        # A sentence, but it goes on as the command does (a level after a number): the command was meant.
        (
            "severity 5 high, all users are down",
            "Severity must be one of: 1 (critical), 2 (high), 3 (normal), 4 (low).",
        ),
    ],
)
def test_a_command_written_wrong_in_the_thread_gets_its_usage_and_its_text_is_kept(engine, db_url, clock, text, wrong):
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    sent = len(desk.mails_to(ANA))
    topics = _reply(desk, text)
    answer = _answers(desk, sent)
    assert _incident(desk).severity == 3
    assert f"{wrong} Usage: severity <number> <1|2|3|4>" in answer
    assert "Added to incident #1." in answer  # where the text went, that the customer not wait for more
    assert desk.bodies(1)[-1] == text and text in topics


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("Severity: critical, production is down", 'Which incident? Give its number, for example: "severity 12 2".'),
        ("severity 1, production is down", "Severity must be one of: 1 (critical), 2 (high), 3 (normal), 4 (low)."),
        # No incident #7 of theirs: a number, then the level.
        ("severity 7 critical, production is down", 'Unexpected text: "production is down".'),
    ],
)
def test_outside_a_thread_a_severity_sentence_with_a_level_gets_the_usage_and_is_kept(
    engine, db_url, clock, text, wrong
):
    # A new mail (no thread, no tag) with one incident open: "any other text" goes there, but the
    # customer meant the command, so they are told how to write it as well as where the text went.
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    desk.mail(ANA, "the fan is loud too", subject="Fan")
    clock.advance(minutes=1)  # within the quiet window: still said where the text went
    sent = len(desk.mails_to(ANA))
    desk.mail(ANA, text, subject="Urgent")
    answer = _answers(desk, sent)
    assert _incident(desk).severity == 3
    assert f"{wrong} Usage: severity <number> <1|2|3|4>" in answer and "Added to incident #1." in answer
    assert desk.bodies(1)[-1] == text


def test_in_a_direct_message_the_usage_comes_with_where_the_text_went_even_soon_after(engine, db_url, clock):
    # No thread, no offer of a new incident (a chat has one conversation): within the quiet window a
    # text would be added without an answer; told only the usage, the customer would not know it
    # was kept.
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open The NAS lost a disk")
    clock.advance(minutes=1)
    out = desk.say("Acme", "Severity: critical, production is down")
    assert "Added to incident #1." in out and "Usage: severity <number> <1|2|3|4>" in out
    assert desk.bodies(1)[-1] == "Severity: critical, production is down"
    # A sentence about severity that does not go on as the command does is text, as before.
    clock.advance(minutes=1)
    out = desk.say("Acme", "Severity is high here, please help")
    assert "Usage" not in out and desk.bodies(1)[-1] == "Severity is high here, please help"


def test_in_portuguese_the_usage_is_portuguese(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _acme(desk, lang="pt")
    sent = len(desk.mails_to(ANA))
    _reply(desk, "gravidade urgente")
    answer = _answers(desk, sent)
    assert "Utilização: gravidade <número> <1|2|3|4>" in answer
    assert "Mensagem adicionada ao incidente #1." in answer
    assert desk.bodies(1)[-1] == "gravidade urgente"


# -- no thread: unchanged ----------------------------------------------------------------


def test_a_direct_message_has_no_thread_and_a_command_still_needs_its_number(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open The NAS lost a disk")
    assert "Missing <1|2|3|4>. Usage: severity <number> <1|2|3|4>" in desk.say("Acme", "severity 1")
    assert "Which incident? Give its number" in desk.say("Acme", "severity critical")
    assert "Which incident? Give its number" in desk.say("Acme", "reopen")
    assert desk.bodies(1) == ["The NAS lost a disk"]


def test_a_mastodon_dm_answering_the_bots_status_about_an_incident_is_in_its_thread(engine, db_url, clock):
    # The router knows threads, not channels: a DM that answers one of the bot's statuses about #1
    # joins #1 as a mail in its thread does (README), so its command takes #1 too. A DM that answers
    # nothing has no thread: the number is still needed.
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open The NAS lost a disk")
    account = "ana@social.example"
    with transaction(desk.engine) as session:
        customer = session.get(Customer, 1)
        assert customer is not None
        customers.link_identity(session, customer, "mastodon", account, clock())
        session.add(PostedMessage(channel="mastodon", platform_id="110000000000000001", incident_id=1))

    def dm(text: str, replies_to: tuple[str, ...]) -> None:
        n = next(_ids)
        desk.runtime.intake.deliver(
            Inbound(
                channel="mastodon",
                sender=account,
                conversation=f"1100000000000001{n:02d}",
                text=text,
                message_id=f"1100000000000001{n:02d}",
                received_at=clock().astimezone(UTC),
                replies_to=replies_to,
            )
        )

    dm("severity 2", ())
    assert _incident(desk).severity == 3
    dm("severity 2", ("110000000000000001",))
    assert _incident(desk).severity == 2
