"""A customer's command with words after it, and a command word with punctuation after it, through
the real runtime (console channel, the default quiet window for acknowledgements).

`severity 1 1 production is down`: the arguments fit, then the customer explains; the command runs
and the words join the incident (bot.router `_run_with_words`). `open: second issue`, `Status?`,
`créditos?`: the punctuation a person puts after a word is not part of the command word."""

from __future__ import annotations

import pytest

from bot.commands import split_command, with_words
from bot.handlers.customer import close, set_severity, show_credits, status
from storage.db import transaction
from storage.models import Incident
from tests.desk import Desk


def _desk(engine, db_url, clock, lang: str = "en") -> Desk:  # noqa: ANN001
    """Acme with incident #1 open, which they wrote about a minute ago (the quiet window runs)."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3, lang=lang)
    desk.say("Acme", "open The NAS lost a disk")
    clock.advance(minutes=1)
    return desk


def _incident(desk: Desk, number: int) -> Incident:
    with transaction(desk.engine) as session:
        incident = session.get(Incident, number)
        assert incident is not None
        session.expunge(incident)
        return incident


# -- reading (pure) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "rest", "values", "words"),
    [
        (set_severity, "1 1 production is down, all users affected!!", {"number": 1, "severity": "1"},
         "production is down, all users affected!!"),
        (set_severity, "12 critical, production is down", {"number": 12, "severity": "1"}, "production is down"),
        (status, "#3: any news? it is getting worse", {"number": 3}, "any news? it is getting worse"),
        (close, "1 thanks", {"number": 1}, "thanks"),
    ],
)  # fmt: skip
def test_the_words_after_a_commands_arguments_are_read_apart(cmd, rest, values, words):
    said = with_words(cmd.command, rest)
    assert said is not None and (said.values, said.number, said.words) == (values, values["number"], words)


@pytest.mark.parametrize(
    ("cmd", "rest"),
    [
        (status, "of the array is degraded now"),  # no incident's number
        (close, "to losing data here"),
        (set_severity, "high 1 please"),  # the arguments do not fit
        (set_severity, "12 2 3"),  # no word: a command written wrong
        (status, "12"),  # nothing after the arguments
        (show_credits, "please, and thanks"),  # a command without an incident
    ],
)
def test_no_words_after_arguments_that_do_not_fit_or_name_no_incident(cmd, rest):
    assert with_words(cmd.command, rest) is None


@pytest.mark.parametrize(
    ("text", "word", "typed", "punctuated"),
    [
        ("open: second issue", "open", "open", True),
        ("Status?", "status", "Status", True),
        ("créditos?!", "creditos", "créditos", True),
        ("/Close. 12", "close", "Close", True),
        ("?", "?", "?", False),  # help's own word
        ("Status", "status", "Status", False),
    ],
)
def test_punctuation_after_the_first_word_is_not_part_of_it(text, word, typed, punctuated):
    line = split_command(text)
    assert (line.word, line.typed, line.punctuated) == (word, typed, punctuated)


# -- A: a command, then words ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("severity 1 1 production is down, all users affected!!", "production is down, all users affected!!"),
        ("gravidade 1 1 produção parada, todos os utilizadores afetados!!", "produção parada, todos os utilizadores afetados!!"),
        ("severity 1 critical, production is down", "production is down"),
    ],
)  # fmt: skip
def test_severity_with_an_explanation_raises_it_and_adds_the_explanation(engine, db_url, clock, text, words):
    desk = _desk(engine, db_url, clock)
    out = desk.say("Acme", text)
    assert _incident(desk, 1).severity == 1
    assert desk.bodies(1)[-1] == words
    assert "Incident #1 now has severity 1 (critical)." in out and "Added to incident #1." in out
    # The engineers read the explanation before the change that calls them to the case.
    assert out.index(words) < out.index("Severity now 1 (critical)")


def test_status_with_words_answers_within_the_quiet_window_and_adds_them(engine, db_url, clock):
    desk = _desk(engine, db_url, clock)
    out = desk.say("Acme", "status 1 any news? it is getting worse")
    assert "Incident #1: The NAS lost a disk" in out and "Added to incident #1." in out
    assert desk.bodies(1)[-1] == "any news? it is getting worse"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("close 1 thanks, it works now after reboot", "thanks, it works now after reboot"),
        ("fechar 1 obrigada, já funciona depois de reiniciar", "obrigada, já funciona depois de reiniciar"),
        ("close 1: thanks!", "thanks!"),
        ("/close 1 thanks, it works now", "thanks, it works now"),  # "/" says a command: it runs all the same
    ],
)
def test_close_with_thanks_adds_them_then_closes(engine, db_url, clock, text, words):
    desk = _desk(engine, db_url, clock)
    out = desk.say("Acme", text)
    assert _incident(desk, 1).state == "closed"
    assert desk.bodies(1)[-1] == words
    assert "Added to incident #1." in out and "Incident #1 is closed. Thank you!" in out
    # On the case before it closes: the engineers see the thanks, then the close.
    assert out.index(words) < out.index("The customer closed this case.")
    assert "Usage" not in out


def test_close_with_thanks_on_a_resolved_case_adds_them_without_asking_or_keeping_them(engine, db_url, clock):
    # The common end of a case: the engineer resolves it, the customer closes it with their thanks.
    desk = _desk(engine, db_url, clock)
    desk.engineer("/resolve 1 Disk replaced")
    clock.advance(minutes=5)
    out = desk.say("Acme", "close 1 thanks, it works now after reboot")
    assert _incident(desk, 1).state == "closed"
    assert desk.bodies(1)[-1] == "thanks, it works now after reboot"
    assert "Added to incident #1." in out and "Incident #1 is closed. Thank you!" in out
    # Not asked whether to reopen it or open another with the thanks, which the close answers.
    assert "reopen" not in out and "soon after" not in out
    # Nothing kept: a later bare "open" opens no incident with the thanks (and spends no credit).
    clock.advance(minutes=1)
    desk.say("Acme", "open")
    assert desk.incident_count() == 1


def test_words_after_a_number_that_is_not_their_incident_stay_their_text(engine, db_url, clock):
    desk = _desk(engine, db_url, clock)
    desk.customer("Other", credits=1)
    desk.say("Other", "open Their printer")
    # "3 servers", not incident #3; #2 is another customer's: the sentence goes to their open #1.
    for text in ("status 3 servers are down since the update", "close 2 thanks, it works now after reboot"):
        out = desk.say("Acme", text)
        assert "You have no incident" not in out and desk.bodies(1)[-1] == text
    assert _incident(desk, 2).state == "open" and desk.bodies(2) == ["Their printer"]
    # Their own incident, named: the command runs with the words.
    assert "Incident #1 is closed" in desk.say("Acme", "close 1 thanks, it works now")


# -- B: a command word with punctuation after it -------------------------------------


@pytest.mark.parametrize(
    "text",
    ["open: second issue, AD join fails", "abrir: problema novo com o AD", "Open, the AD join fails", "OPEN! AD join"],
)
def test_open_with_punctuation_asks_before_a_second_credit(engine, db_url, clock, text):
    desk = _desk(engine, db_url, clock)
    out = desk.say("Acme", text)
    assert "You already have an open incident: #1" in out and 'reply "open" again' in out
    assert desk.bodies(1) == ["The NAS lost a disk"] and desk.credits_used() == 1


# -- C: "Status?", "créditos?" --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Status?", "Your incidents:"),
        ("credits?", "Credits left: 2"),
        ("créditos?", "Credits left: 2"),
        ("help status?", "status [number] — your incidents, or one incident in detail"),
    ],
)
def test_a_command_word_with_a_question_mark_runs_the_command(engine, db_url, clock, text, answer):
    desk = _desk(engine, db_url, clock)
    out = desk.say("Acme", text)
    assert answer in out and "Unknown command" not in out


def test_a_label_with_a_colon_that_does_not_fit_the_command_is_still_text(engine, db_url, clock):
    desk = _desk(engine, db_url, clock)
    assert "Usage" not in desk.say("Acme", "Status: still down")
    assert desk.bodies(1)[-1] == "Status: still down"
    assert "Your incidents:" in desk.say("Acme", "Status:")  # the word alone is the command


@pytest.mark.parametrize(
    ("lang", "text", "answer"),
    [
        ("en", "Créditoss", 'Unknown command "Créditoss". Did you mean "creditos"?'),
        ("pt", "créditoss?", "Comando desconhecido: «créditoss». Queria dizer «creditos»?"),
        ("en", "/Stauts 1", 'Unknown command "Stauts". Did you mean "status"?'),
    ],
)
def test_an_unknown_word_is_quoted_as_typed(engine, db_url, clock, lang, text, answer):
    desk = _desk(engine, db_url, clock, lang=lang)
    assert answer in desk.say("Acme", text)
