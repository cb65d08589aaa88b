"""Drafts as customers live them, through the console desk, in English and Portuguese (SPEC §2: a
draft is used only by the answer it asked for, never glued onto other text, and expires after a
day): a polite "yes please, open it" is the answer, not a text that replaces the kept one; a text
that does replace a kept one says so; every answer that keeps a text says for how long."""

from __future__ import annotations

from bot.services import drafts
from tests.desk import Desk

KEPT = "I keep your message for 24 hours."
GUARDADA = "Guardo a sua mensagem durante 24 horas."


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_a_polite_yes_opens_the_kept_text_in_both_languages(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.customer("Cliente", credits=3, lang="pt")

    assert 'Reply "open" to open one with this message' in desk.say("Acme", "The disk is full")
    out = desk.say("Acme", "Yes please, open it")
    assert "Incident #1 is open: The disk is full" in out and "not included" not in out
    assert desk.bodies(1) == ["The disk is full"]

    assert "«abrir»" in desk.say("Cliente", "A impressora não imprime")
    out = desk.say("Cliente", "Sim, por favor abram o pedido.")
    assert "O incidente #2 foi aberto: A impressora não imprime" in out
    assert desk.bodies(2) == ["A impressora não imprime"]
    assert desk.credits_used() == 2


def test_open_with_only_polite_words_uses_the_kept_text(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.say("Acme", "my backup fails")
    out = desk.say("Acme", "open it, please")
    assert "Incident #1 is open: my backup fails" in out and "not included" not in out
    assert desk.bodies(1) == ["my backup fails"]
    # With nothing kept, the same words are an incident's text like any other `open <text>`.
    desk.customer("Other", credits=1)
    assert "Incident #2 is open: Another one" in desk.say("Other", "open Another one")


def test_a_polite_no_drops_the_kept_text(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Cliente", credits=3, lang="pt")
    desk.say("Cliente", "O disco está cheio")
    out = desk.say("Cliente", "Não, obrigado.")
    assert "Muito bem: não foi aberto nenhum incidente e a sua mensagem não foi guardada." in out
    assert "foi aberto" not in desk.say("Cliente", "abrir")  # nothing kept to open
    assert desk.incident_count() == 0 and desk.credits_used() == 0


def test_a_text_that_replaces_a_kept_one_says_so(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.customer("Cliente", credits=3, lang="pt")

    first = desk.say("Acme", "hello, my disk is full")
    assert "replaces" not in first  # nothing was kept before
    out = _flat(desk.say("Acme", "Could you also check the fan, it is very loud"))
    assert (
        'This message replaces the one I kept before ("hello, my disk is full"): "open" would now use this latest one.'
        in out
    )
    assert 'Reply "open" to open one with this message' in out
    out = desk.say("Acme", "open")
    assert "Incident #1 is open: Could you also check the fan" in out
    assert desk.bodies(1) == ["Could you also check the fan, it is very loud"]  # never joined

    desk.say("Cliente", "O disco está cheio")
    out = _flat(desk.say("Cliente", "E a ventoinha faz barulho"))
    assert "Esta mensagem substitui a que tinha guardado antes («O disco está cheio»)" in out
    assert "«abrir» usaria agora esta última" in out


def test_every_answer_that_keeps_a_text_says_for_how_long(engine, db_url, clock):
    assert drafts.MAX_AGE.total_seconds() == 24 * 3600  # the sentence is derived from it
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.customer("Broke")  # no credits
    desk.customer("Cliente", credits=3, lang="pt")

    assert KEPT in _flat(desk.say("Acme", "my disk is full"))  # no incident open
    assert KEPT in _flat(desk.say("Broke", "my disk is full"))  # no credit: kept for after buying
    assert KEPT in _flat(desk.say("Broke", "open my disk is full"))
    assert GUARDADA in _flat(desk.say("Cliente", "o disco está cheio"))

    desk.say("Acme", "open")
    out = _flat(desk.say("Acme", "open The fan is loud"))  # asked before a second credit
    assert 'reply "open" again within 15 minutes' in out and KEPT in out
    desk.say("Acme", "open")  # #2, confirmed
    out = _flat(desk.say("Acme", "which one?"))  # several open incidents: which one?
    assert "Which one is this about?" in out and KEPT in out

    desk.say("Cliente", "abrir")  # #3
    desk.engineer("/resolve 3")
    out = _flat(desk.say("Cliente", "voltou a falhar"))  # about a resolved incident
    assert "«reabrir 3»" in out and GUARDADA in out
    desk.say("Cliente", "fechar 3")
    out = _flat(desk.say("Cliente", "#3 continua a falhar"))  # a closed incident
    assert "está fechado" in out and GUARDADA in out

    # The limit is real: a day later the kept text is gone.
    clock.advance(hours=24, minutes=1)
    assert "Tell us what the incident is about" in desk.say("Broke", "open")


def test_on_console_a_text_joining_the_only_open_incident_gets_no_offer(engine, db_url, clock):
    """Chat DMs have no threads: a message joins the open incident as before, with no `open` offer."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.say("Acme", "open The NAS does not boot")
    out = desk.say("Acme", "The printer is broken too")
    # Soon after their own message: added quietly, as before (no offer to make it answered).
    assert "The printer is broken too" in out and "deskbot → Acme" not in out and "separate problem" not in out
    clock.advance(minutes=11)
    out = desk.say("Acme", "And the scanner")
    assert "Added to incident #1." in out and "separate problem" not in out
    assert "Tell us what the incident is about" in desk.say("Acme", "open")
