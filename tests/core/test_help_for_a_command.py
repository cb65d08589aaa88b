"""`help <command>` through the real runtime (console desk): one command's usage in the asker's
language, what it does, its name in the other language and an example, all derived from the
declarations; sub-commands listed; an unknown word answered with the closest commands; someone
not linked yet told when a command works only once linked; `help` alone says that it exists."""

from __future__ import annotations

import pytest

from bot.handlers import registry
from tests.desk import Desk


def test_help_open_gives_that_command_alone_in_english(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    out = desk.say("Acme", "help open")
    assert "open [text] — open a new incident with this text (uses one credit)" in out
    assert "In Portuguese: abrir" in out
    assert "For example: open <text>" in out
    # That command alone: not the whole list, nor the service hours.
    assert "status" not in out and "Service hours" not in out and "Usage" not in out


@pytest.mark.parametrize("text", ["ajuda abrir", "/ajuda ABRIR", "ajuda /abrir"])
def test_ajuda_abrir_answers_in_portuguese(engine, db_url, clock, text):
    desk = Desk(engine, db_url, clock)
    desk.customer("Cliente", credits=1, lang="pt")
    out = desk.say("Cliente", text)
    assert "abrir [texto] — abrir um novo incidente com este texto (utiliza um crédito)" in out
    assert "Em inglês: open" in out
    assert "Por exemplo: abrir <texto>" in out
    assert "Comandos" not in out


@pytest.mark.parametrize("text", ["help ABRIR", "help Créditos", "/help creditos", "? OPEN"])
def test_either_languages_name_in_any_case_with_or_without_accents(engine, db_url, clock, text):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    out = desk.say("Acme", text)
    # Answered in the asker's language (English), whichever language's word they asked about.
    assert "For example:" in out and "In Portuguese:" in out
    assert out.count(" — ") == 1 and "Commands" not in out


def test_help_abrir_from_an_english_customer_is_answered_in_english(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    out = desk.say("Acme", "help ABRIR")
    assert "open [text] — open a new incident" in out and "In Portuguese: abrir" in out


def test_help_for_a_command_with_a_case_and_a_choice(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    out = desk.say("Acme", "help severity")
    assert "severity <number> <1|2|3|4> — set an incident's severity" in out
    assert "In Portuguese: gravidade" in out and "For example: severity 12 2" in out


def test_help_hash_explains_adding_to_an_incident(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.customer("Cliente", credits=1, lang="pt")
    out = desk.say("Acme", "help #")
    assert "#<number> <text> — add a message to that incident" in out and "For example: #12 <text>" in out
    out = desk.say("Cliente", "ajuda #")
    assert "Por exemplo: #12 <texto>" in out
    assert desk.incident_count() == 0


def test_an_unlinked_account_may_ask_about_any_command_and_is_told_it_needs_linking(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    out = desk.say("stranger", "help open")
    assert "open [text] — open a new incident" in out and "For example: open <text>" in out
    assert "It works once this account is linked to your customer record." in out
    assert "I don't know this account yet" not in out
    out = desk.say("stranger", "help link")
    assert "link <code> — link this account" in out and "For example: link <code>" in out
    assert "works once this account is linked" not in out  # linking is what an unlinked account does
    out = desk.say("forasteiro", "ajuda estado")
    assert "estado [número]" in out and "Funciona depois de associar esta conta" in out
    assert desk.incident_count() == 0


@pytest.mark.parametrize(("who", "lang", "text"), [("Acme", "en", "help frobnicate"), ("Cliente", "pt", "ajuda xyz")])
def test_an_unknown_word_gets_a_short_answer_and_help_alone(engine, db_url, clock, who, lang, text):
    desk = Desk(engine, db_url, clock)
    desk.customer(who, credits=1, lang=lang)
    out = desk.say(who, text)
    if lang == "en":
        assert 'Unknown command "frobnicate". Send "help" for the list. Usage: help [command]' in out
    else:
        assert "Comando desconhecido: «xyz». Envie «ajuda» para ver a lista. Utilização: ajuda [comando]" in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 2  # the console's header, one line


def test_an_unknown_word_close_to_a_command_names_it(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    out = desk.say("Acme", "help stauts")
    assert 'Unknown command "stauts". Did you mean "status"? Send "help" for the list.' in out


def test_a_sentence_after_help_is_still_the_customers_text(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open The NAS lost a disk")
    out = desk.say("Acme", "help me please, the second disk also died")
    assert "Unknown command" not in out and "Usage" not in out
    assert desk.bodies(1)[-1] == "help me please, the second disk also died"


@pytest.mark.parametrize(
    ("who", "lang", "word", "line"),
    [
        ("Acme", "en", "help", 'Send "help <command>" for the details of one command, for example "help open".'),
        (
            "Cliente",
            "pt",
            "ajuda",
            "Envie «ajuda <comando>» para ver os pormenores de um comando, por exemplo «ajuda abrir».",
        ),
    ],
)
def test_help_alone_keeps_its_list_and_ends_saying_help_command_exists(engine, db_url, clock, who, lang, word, line):
    desk = Desk(engine, db_url, clock)
    desk.customer(who, credits=1, lang=lang)
    out = desk.say(who, word)
    assert out.rstrip().splitlines()[-1].endswith(line)
    assert "Service hours" in out or "Horário" in out


def test_help_alone_for_an_unlinked_account_gives_an_example_it_can_use(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    out = desk.say("stranger", "help")
    assert out.rstrip().endswith('for the details of one command, for example "help link".')


# -- engineers (console engineer: the same runtime, the engineer's audience) --------------------------


def test_engineer_help_reply(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    out = desk.engineer("/help reply")
    assert "`/reply <number> <text>` — send text to the customer on their latest channel" in out
    assert "In Portuguese: `/responder`" in out and "For example: `/reply 12 <text>`" in out
    assert "/note" not in out


def test_engineer_help_in_portuguese_words(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    out = desk.engineer("/ajuda responder")
    assert "`/reply <number> <text>` — send text to the customer" in out and "`/responder`" in out


def test_engineer_help_for_a_command_with_sub_commands_lists_them(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    out = desk.engineer("/help customer")
    subs = registry().subs("engineer", "customer")
    assert len(subs) >= 4 and f"`/customer {'|'.join(subs)}`" in out
    for usage in ("/customer add <name> [email]", "/customer code <who>", "/customer show <who>"):
        assert f"• `{usage}` — " in out
    assert out.count("• ") == len(subs)
    assert "In Portuguese: `/cliente`" in out and "For one of them alone: `/help customer add`" in out


def test_engineer_help_for_one_sub_command(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    out = desk.engineer("/help credits grant")
    assert "`/credits grant <customer> <n> [purchased]` — add a pack of n credits" in out
    assert "For example: `/credits grant <customer> 3`" in out
    assert "cancel" not in out
    out = desk.engineer("/help cliente ADD")
    assert "`/customer add <name> [email]` — create a customer" in out and "/customer show" not in out


def test_engineer_help_unknown_word(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    out = desk.engineer("/help rply")
    assert 'Unknown command "rply". Did you mean "/reply"? Send "/help" for the list.' in out
    assert "Usage: /help [command] [subcommand]" in out


def test_engineer_help_alone_ends_saying_help_command_exists(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    out = desk.engineer("/help")
    assert "• `/reply <number> <text>`" in out
    assert out.rstrip().splitlines()[-1].strip() == (
        "Send `/help <command>` for the details of one command, for example `/help reply`."
    )
