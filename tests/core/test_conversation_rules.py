"""Conversations as customers live them (issue 13, items 2-4; SPEC §2-§3), through the console desk,
in English and Portuguese: drafts used only by the answer the bot asked for, a second credit never
spent without asking, resolved incidents that stay resolved until reopened, and linking that keeps
the language chosen and mentions what was kept.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot.i18n import format_day, format_when
from bot.services import customers, drafts
from storage.db import transaction
from storage.models import Customer, Draft, Incident
from tests.desk import Desk


def _state(desk: Desk, number: int) -> str:
    with transaction(desk.engine) as s:
        return s.get(Incident, number).state


def _when(desk: Desk, moment, lang: str = "en") -> str:  # noqa: ANN001
    return format_when(moment, lang, desk.runtime.deployment.settings.calendar.tz)


# -- drafts (item 2) --------------------------------------------------------------------


def test_a_kept_text_is_never_glued_to_the_text_given_with_open(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    assert "to open one with this message" in desk.say("Acme", "thanks, all good now")
    out = desk.say("Acme", "open NFS broken")
    assert "Incident #1 is open: NFS broken" in out and "thanks" not in out
    assert desk.bodies(1) == ["NFS broken"]
    assert "Your earlier message, kept as a draft, was not included" in out
    assert "[#1 Acme: NFS broken]" in out  # the topic is named after the text given, not the draft
    # The dropped draft cannot come back with a later `open`.
    assert "Tell us what the incident is about" in desk.say("Acme", "open")

    desk.customer("Cliente", credits=1, lang="pt")
    desk.say("Cliente", "obrigado, já está tudo bem")
    out = desk.say("Cliente", "abrir NFS avariado")
    assert "O incidente #2 foi aberto: NFS avariado" in out and "não foi incluída" in out
    assert desk.bodies(2) == ["NFS avariado"]


def test_open_alone_uses_the_kept_text_it_was_offered_for(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "hello, my disk is full")
    desk.say("Acme", "it is the 4 TB one")  # a new question: only this text waits now
    out = desk.say("Acme", "open")
    assert "Incident #1 is open: it is the 4 TB one" in out and "not included" not in out
    assert desk.bodies(1) == ["it is the 4 TB one"]
    # `#N` alone was not what the bot asked for: nothing is added.
    desk.engineer("/resolve 1")
    desk.engineer("/reopen 1")
    assert "Write your message after the number" in desk.say("Acme", "#1")


def test_retyping_open_with_the_same_text_after_no_credit_does_not_add_it_twice(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme")
    out = desk.say("Acme", "open Backups fail every night")
    assert "You have no support credits yet." in out and "kept as a draft" in out
    desk.engineer("/credits grant Acme 2")
    out = desk.say("Acme", "open Backups fail every night")
    assert "Incident #1 is open: Backups fail every night" in out and "not included" not in out
    assert desk.bodies(1) == ["Backups fail every night"]

    desk.customer("Cliente", lang="pt")
    desk.say("Cliente", "abrir As cópias falham")
    desk.engineer("/credits grant Cliente 1")
    assert "O incidente #2 foi aberto" in desk.say("Cliente", "abrir  As cópias   falham")  # spacing aside
    assert desk.bodies(2) == ["As cópias falham"]


def test_a_draft_expires_after_a_day(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "my disk is full")
    clock.advance(hours=23, minutes=59)
    with transaction(desk.engine) as s:
        assert s.scalar(select(func.count()).select_from(Draft)) == 1
    clock.advance(minutes=2)
    assert "Tell us what the incident is about" in desk.say("Acme", "open")
    assert desk.incident_count() == 0 and desk.credits_used() == 0


def test_open_while_an_incident_is_open_asks_before_a_second_credit(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.say("Acme", "open NAS does not boot")
    out = desk.say("Acme", "open The fan is loud")
    assert "You already have an open incident: #1 NAS does not boot." in out
    assert 'reply "#1" to add it there' in out
    assert (
        'reply "open" again within 15 minutes to open a new incident with it: that uses one more credit (you have 2).'
        in out
    )
    assert desk.incident_count() == 1 and desk.credits_used() == 1

    # `#1` alone: it was about #1 after all; nothing charged.
    assert "Added to incident #1." in desk.say("Acme", "#1")
    assert desk.bodies(1) == ["NAS does not boot", "The fan is loud"] and desk.credits_used() == 1

    # `open` again (alone, or with the same text) within the window: a new incident, one more credit.
    desk.say("Acme", "open Printer offline")
    out = desk.say("Acme", "open Printer offline")
    assert "Incident #2 is open: Printer offline" in out and desk.credits_used() == 2
    assert desk.bodies(2) == ["Printer offline"]

    # Too late: asked again, nothing charged.
    desk.say("Acme", "open Scanner jams")
    clock.advance(minutes=16)
    out = desk.say("Acme", "open")
    assert "You already have open incidents: #1 NAS does not boot, #2 Printer offline." in out
    assert 'reply "#" and its number (for example "#1")' in out and desk.credits_used() == 2
    assert "Incident #3 is open: Scanner jams" in desk.say("Acme", "open")


def test_open_while_an_incident_is_open_in_portuguese_and_without_credit(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Cliente", credits=2, lang="pt")
    desk.say("Cliente", "abrir O NAS não arranca")
    out = desk.say("Cliente", "abrir A ventoinha faz barulho")
    assert "Já tem um incidente aberto: #1 O NAS não arranca." in out
    assert "responda «#1» para a adicionar lá" in out
    assert (
        "responda «abrir» novamente nos próximos 15 minutos" in out and "será utilizado mais um crédito (tem 1)." in out
    )
    assert "O incidente #2 foi aberto: A ventoinha faz barulho" in desk.say("Cliente", "abrir")

    # No credit left: nothing to confirm, the answer says why and the text is kept.
    out = desk.say("Cliente", "abrir Terceiro problema")
    assert "Já utilizou todos os seus créditos de suporte." in out
    assert "Já tem" not in out and desk.incident_count() == 2


def test_several_incidents_the_draft_goes_where_the_customer_says(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.say("Acme", "open One")
    desk.say("Acme", "open Two")
    desk.say("Acme", "open")
    out = desk.say("Acme", "which one gets this?")
    assert "You have several open incidents: #1 One, #2 Two." in out and "(it uses one credit)" in out
    # The question offered `open`: answering it opens a new incident with the text (one credit).
    out = desk.say("Acme", "open")
    assert "Incident #3 is open: which one gets this?" in out
    assert desk.credits_used() == 3


def test_the_colon_or_dash_after_an_incident_number_is_not_part_of_the_message(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.say("Acme", "open One")
    desk.say("Acme", "open Two")
    desk.say("Acme", "open")
    for text in ("#1: the disk is back", "#1 - it failed again", "#1. Logs attached", "#2) done", "#2 — ok"):
        clock.advance(minutes=10)  # each a message of its own, answered
        assert "Added to incident #" in desk.say("Acme", text)
    assert desk.bodies(1) == ["One", "the disk is back", "it failed again", "Logs attached"]
    # Only where it stands alone: a minus sign or a smiley is the customer's text.
    desk.say("Acme", "#2 -5 °C in the room :)")
    desk.say("Acme", "#2 :)")
    assert desk.bodies(2) == ["Two", "done", "ok", "-5 °C in the room :)", ":)"]
    assert "Write your message after the number" in desk.say("Acme", "#2:")
    # The same after a command's number: "/reply 1: text", "status #2:".
    assert "deskbot → Acme:\n  [#1] Restart the NAS, please." in desk.engineer("/reply 1: Restart the NAS, please.")
    assert "Incident #2: Two" in desk.say("Acme", "status #2:")


# -- resolved incidents (item 3) ------------------------------------------------------------


def test_a_message_on_a_resolved_incident_is_added_but_does_not_reopen_it(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open Shares are slow")
    desk.engineer("/reply 1 Fixed the MTU")
    out = desk.engineer("/resolve 1 MTU")
    assert 'you can reopen it at no charge with "reopen 1"' in out
    clock.advance(days=2)

    out = desk.say("Acme", "One share is still slow")
    until = _when(desk, clock.now.replace(day=9))  # 7 days after the resolution
    assert "Added to incident #1, which was resolved on 2 Dec 2026: it stays resolved." in out
    assert f'To reopen it at no charge until {until}, reply "reopen 1".' in out
    topic = [line for line in out.splitlines() if line.startswith("[#1 ")]
    assert "wrote:" in topic[0] and out.count("| One share is still slow") == 1  # shown in its topic
    assert "The case stays resolved: the customer was asked whether to reopen it" in topic[-1]
    assert _state(desk, 1) == "resolved" and desk.bodies(1)[-1] == "One share is still slow"
    with transaction(desk.engine) as s:
        assert s.get(Incident, 1).due_at is None  # no clock until it is reopened

    # `reopen 1`: open again at no charge; the customer is told the due time, the topic who reopened it.
    out = desk.say("Acme", "reopen 1")
    with transaction(desk.engine) as s:
        due = s.get(Incident, 1).due_at
    assert "Incident #1 is open again, at no charge." in out and f"We will answer by {_when(desk, due)}." in out
    assert "🔁 Reopened by the customer (`Acme`) · severity 3 · response due" in out
    assert _state(desk, 1) == "open" and desk.credits_used() == 1
    assert desk.bodies(1).count("One share is still slow") == 1  # the kept text was on the incident already
    assert "Tell us what the incident is about" in desk.say("Acme", "open")  # and it is used up
    assert "Incident #1 is already open." in desk.say("Acme", "reopen 1")


def test_a_thank_you_or_ok_with_no_incident_to_take_it_is_answered_and_kept_for_nothing(engine, db_url, clock):
    """After a credit reminder, or long after a resolution, "Thanks!" or "ok" is not the text of
    an incident: it is not kept (nor put in place of a text kept before), and "open" later asks
    what about instead of opening an incident called "Thanks!"."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    desk.customer("Cliente", credits=2, lang="pt")
    out = desk.say("Acme", "Thanks!")
    assert (
        'You are welcome! If you need help again, send "open" followed by what it is about (it uses one credit).' in out
    )
    assert "There is no incident to add your message to." in desk.say("Acme", "ok 👍")
    assert "Tell us what the incident is about" in desk.say("Acme", "open")
    assert "Não tem de quê! Se voltar a precisar de ajuda, envie «abrir» seguido do assunto" in desk.say(
        "Cliente", "Muito obrigada"
    )
    assert "Não há nenhum incidente ao qual adicionar a sua mensagem." in desk.say("Cliente", "não")
    assert desk.incident_count() == 0 and desk.credits_used() == 0
    with transaction(desk.engine) as s:
        assert s.scalar(select(func.count()).select_from(Draft)) == 0

    # A text kept before stays kept: the thank-you does not take its place.
    assert 'Reply "open" to open one with this message' in desk.say("Acme", "The backup disk is full")
    desk.say("Acme", "thanks")
    assert "Incident #1 is open: The backup disk is full" in desk.say("Acme", "open")


def _two_resolved(desk: Desk, summary: str = "") -> None:
    """Acme's incident #1 and the Portuguese customer Cliente's #2, both resolved now."""
    desk.customer("Acme", credits=2)
    desk.customer("Cliente", credits=2, lang="pt")
    desk.say("Acme", "open Shares are slow")
    desk.say("Cliente", "abrir Partilhas lentas")
    desk.engineer(f"/resolve 1 {summary}".rstrip())
    desk.engineer(f"/resolve 2 {summary}".rstrip())


def test_a_thank_you_for_a_resolved_incident_is_added_and_kept_for_nothing(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _two_resolved(desk, "MTU")
    until = _when(desk, clock.now.replace(day=9))

    out = desk.say("Acme", "Thanks a lot! 🙏")
    assert (
        "Thank you! Your message was added to incident #1, which stays resolved. If the problem comes back, reply"
        f' "reopen 1" to reopen it at no charge until {until}; for a new, separate issue, send "open" followed by'
        " what it is about (it uses one credit)." in out
    )
    assert "| Thanks a lot! 🙏" in out  # shown in the topic, as any message about a resolved incident
    assert desk.bodies(1)[-1] == "Thanks a lot! 🙏" and _state(desk, 1) == "resolved"
    # Nothing waits to be opened: "open" alone asks what about, and no credit goes on a thank-you.
    assert "Tell us what the incident is about" in desk.say("Acme", "open")
    assert desk.incident_count() == 2 and desk.credits_used() == 2

    out = desk.say("Cliente", "Muito obrigado!")
    assert "Obrigado! A sua mensagem foi adicionada ao incidente #2, que continua resolvido." in out
    assert "envie «abrir» seguido do assunto" in out

    # More than seven days after: no reopening offered, still nothing kept.
    clock.advance(days=8)
    out = desk.say("Acme", "#1 thanks")
    assert (
        'Thank you! Your message was added to incident #1, resolved on 2 Dec 2026. For a new issue, send "open"' in out
    )
    assert "Tell us what the incident is about" in desk.say("Acme", "open")
    # A thank-you with more to say is a message like any other.
    assert 'reply "open" to open a new incident with your message' in desk.say(
        "Acme", "#1 thanks, but the shares are slow again"
    )


def test_after_the_resolved_question_open_starts_a_new_incident_with_the_text(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Cliente", credits=2, lang="pt")
    desk.say("Cliente", "abrir Partilhas lentas")
    desk.engineer("/resolve 1")
    out = desk.say("Cliente", "Agora a impressora não imprime")
    assert f"Mensagem adicionada ao incidente #1, resolvido em {format_day(clock.now.date(), 'pt')}" in out
    assert "responda «reabrir 1»" in out and "responda «abrir»" in out
    out = desk.say("Cliente", "abrir")
    assert "O incidente #2 foi aberto: Agora a impressora não imprime" in out
    assert _state(desk, 1) == "resolved"


def test_after_seven_days_a_resolved_incident_cannot_be_reopened_for_free(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _two_resolved(desk)
    clock.advance(days=7, minutes=1)

    # Plain text is no longer taken for the old incident; `#1 text` is, and says why it stays shut.
    assert "You have no open incident." in desk.say("Acme", "hello again")
    out = desk.say("Acme", "#1 it is slow again")
    assert "Added to incident #1. It was resolved on 2 Dec 2026, more than 7 days ago" in out
    assert "cannot be reopened at no charge" in out and 'reply "open"' in out
    assert "it was resolved more than 7 days ago, so the customer was offered a new one" in out
    out = desk.say("Acme", "reopen 1")
    assert "Incident #1 was resolved on 2 Dec 2026, more than 7 days ago, so it cannot be reopened" in out
    assert _state(desk, 1) == "resolved"
    assert "Incident #3 is open: it is slow again" in desk.say("Acme", "open")

    out = desk.say("Cliente", "reabrir 2")
    resolved = format_day(clock.now.date().replace(day=2), "pt")
    assert f"O incidente #2 foi resolvido em {resolved}, há mais de 7 dias" in out
    assert "já não pode ser reaberto sem custos" in out


def test_an_engineer_reopen_tells_the_customer_and_the_topic_who(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Cliente", credits=1, lang="pt")
    desk.say("Cliente", "abrir Partilhas lentas")
    desk.engineer("/resolve 1")
    desk.say("Cliente", "fechar 1")
    out = desk.engineer("/reopen 1")
    with transaction(desk.engine) as s:
        due = s.get(Incident, 1).due_at
    assert "O incidente #1 foi reaberto pela nossa equipa." in out
    assert f"Responderemos até {_when(desk, due, 'pt')}." in out
    assert "🔁 Reopened by `engineer@console` · severity 3 · response due" in out
    assert "#1 is open again; next response due" in out  # asked outside the topic: answered too
    # A closed incident is not the customer's to reopen.
    desk.say("Cliente", "fechar 1")
    assert "O incidente #1 está fechado, por isso não pode ser reaberto." in desk.say("Cliente", "reabrir 1")


# -- linking (item 4) -------------------------------------------------------------------


def test_linking_keeps_the_language_chosen_and_mentions_the_kept_text(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    code = desk.engineer("/customer add Initech").split("Activation code: ")[1].split()[0]
    desk.engineer("/credits grant Initech 2")
    desk.say("newcomer", "idioma pt")
    desk.say("newcomer", "O meu NAS não arranca")
    out = desk.say("newcomer", f"ligar {code}")
    assert "Initech!" in out and "Welcome" not in out  # the welcome is in Portuguese
    assert "Antes da associação, escreveu: «O meu NAS não arranca». Guardei a mensagem durante um dia" in out
    assert "responda «abrir»" in out
    with transaction(desk.engine) as s:
        assert s.scalars(select(Customer.lang).where(Customer.name == "Initech")).one() == "pt"
    assert "O incidente #1 foi aberto: O meu NAS não arranca" in desk.say("newcomer", "abrir")
    assert "Os seus incidentes:" in desk.say("newcomer", "estado")


def test_linking_in_english_without_a_kept_text(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    code = desk.engineer("/customer add Initech").split("Activation code: ")[1].split()[0]
    out = desk.say("newcomer", f"link {code}")
    assert "Welcome, Initech!" in out and "Before linking" not in out
    with transaction(desk.engine) as s:
        # English, but not chosen: a plainly Portuguese message would still make it Portuguese.
        assert s.scalars(select(Customer.lang).where(Customer.name == "Initech")).one() is None
        assert s.scalar(select(func.count()).select_from(Draft)) == 0
    assert drafts.CONFIRM_WINDOW.total_seconds() == 15 * 60


def test_a_stranger_who_writes_portuguese_first_is_answered_in_portuguese_and_linking_keeps_it(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    code = desk.engineer("/customer add Initech").split("Activation code: ")[1].split()[0]
    desk.engineer("/credits grant Initech 2")
    out = desk.say("newcomer", "Olá, preciso de ajuda com o meu NAS")
    assert "Olá! Este é o serviço de suporte comercial." in out and "Hello" not in out
    assert "Comandos" in desk.say("newcomer", "help")  # remembered: the English word gets Portuguese too
    out = desk.say("newcomer", f"ligar {code}")
    assert "Initech!" in out and "Welcome" not in out
    with transaction(desk.engine) as s:
        assert s.scalars(select(Customer.lang).where(Customer.name == "Initech")).one() == "pt"

    # A Portuguese command word as a first message does the same; English stays English.
    assert "Comandos" in desk.say("visitante", "ajuda")
    assert "Hello! This is the commercial support desk." in desk.say("visitor", "Hello, I need help")
    assert "Commands" in desk.say("visitor", "help")
    # A language chosen is never overruled, nor a customer's.
    desk.say("chooser", "lang en")
    assert "Hello!" in desk.say("chooser", "Olá, bom dia")
    desk.customer("Acme", credits=1)
    assert "You have no open incident." in desk.say("Acme", "Olá, o disco não arranca")


def _lang_of(desk: Desk, name: str) -> str | None:
    with transaction(desk.engine) as s:
        return s.scalars(select(Customer.lang).where(Customer.name == name)).one()


def test_a_customer_added_without_a_language_gets_portuguese_once_they_write_it(engine, db_url, clock):
    """`/customer add` chooses no language: the customer is answered in English until they write
    plainly Portuguese, and in Portuguese from then on; a language chosen stays."""
    desk = Desk(engine, db_url, clock)
    code = desk.engineer("/customer add Initech").split("Activation code: ")[1].split()[0]
    assert "language not chosen (English until they write in Portuguese)" in desk.engineer("/customer show Initech")
    desk.engineer("/credits grant Initech 2")
    assert "Welcome, Initech!" in desk.say("ana", f"link {code}")
    assert "You have no open incident." in desk.say("ana", "My disk is full")
    assert _lang_of(desk, "Initech") is None  # English text chooses nothing

    out = desk.say("ana", "Olá, o NAS não arranca depois da atualização")
    assert "Não tem nenhum incidente aberto." in out and "You have" not in out
    assert _lang_of(desk, "Initech") == "pt"
    assert "Não tem incidentes abertos." in desk.say("ana", "status")
    assert "· language pt" in desk.engineer("/customer show Initech")
    # Chosen now: English text no longer changes it back, and `lang en` still does.
    assert "Não tem nenhum incidente aberto." in desk.say("ana", "My disk is full")
    desk.say("ana", "idioma en")
    assert "You have no open incident." in desk.say("ana", "Olá, bom dia")
    assert _lang_of(desk, "Initech") == "en"


def test_an_account_linked_by_an_engineer_keeps_the_language_it_wrote_in(engine, db_url, clock):
    """A stranger who wrote in Portuguese and is then linked by `/customer add NAME ADDRESS` (no
    activation code) makes the new customer Portuguese; a customer's own language is kept."""
    desk = Desk(engine, db_url, clock)
    desk.say("joao@example.pt", "Olá, preciso de ajuda")
    desk.engineer("/customer add Tejo")
    with transaction(desk.engine) as s:
        tejo = s.scalars(select(Customer).where(Customer.name == "Tejo")).one()
        customers.link_identity(s, tejo, "console", "joao@example.pt", clock())
    assert _lang_of(desk, "Tejo") == "pt"
    assert "Ainda não tem créditos de suporte." in desk.say("joao@example.pt", "credits")

    desk.say("maria", "Olá, bom dia")
    desk.customer("Douro", lang="en")
    with transaction(desk.engine) as s:
        douro = s.scalars(select(Customer).where(Customer.name == "Douro")).one()
        customers.link_identity(s, douro, "console", "maria", clock())
    assert _lang_of(desk, "Douro") == "en"


def test_yes_to_reply_open_opens_with_the_kept_text_and_no_drops_it(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.customer("Cliente", credits=3, lang="pt")
    assert 'Reply "open" to open one with this message' in desk.say("Acme", "My disk is full")
    out = desk.say("Acme", "Yes please!")
    assert "Incident #1 is open: My disk is full" in out
    assert desk.bodies(1) == ["My disk is full"] and desk.credits_used() == 1

    assert "«abrir»" in desk.say("Cliente", "O disco está cheio")
    out = desk.say("Cliente", "não, obrigado")
    assert "Muito bem: não foi aberto nenhum incidente e a sua mensagem não foi guardada." in out
    assert desk.incident_count() == 1
    assert "Diga-nos qual é o assunto do incidente" in desk.say("Cliente", "abrir")  # nothing kept to open
    with transaction(desk.engine) as s:
        assert s.scalar(select(func.count()).select_from(Draft)) == 0
    # With nothing asked, "yes" is what the customer says on their incident.
    clock.advance(minutes=10)
    assert "Added to incident #1." in desk.say("Acme", "yes")
    assert desk.bodies(1) == ["My disk is full", "yes"]


def test_a_yes_to_a_question_with_two_ways_asks_again_and_a_new_one_opens(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.say("Acme", "open The NAS does not boot")
    assert 'reply "#1" to add it there' in desk.say("Acme", "open The fan is loud")
    clock.advance(minutes=14)
    out = desk.say("Acme", "yes")
    assert 'To add your message to an incident, reply "#" and its number (for example "#1")' in out
    assert desk.bodies(1) == ["The NAS does not boot"] and desk.credits_used() == 1
    clock.advance(minutes=14)  # within 15 minutes of the question asked again
    out = desk.say("Acme", "A new one.")
    assert "Incident #2 is open: The fan is loud" in out and "not included" not in out
    assert desk.credits_used() == 2
    # "New …" with more words is text: it no longer opens (and charges) without asking.
    out = desk.say("Acme", "New error after the update")
    assert "Which one is this about?" in out and desk.incident_count() == 2


def test_a_bare_answer_about_a_resolved_incident_asks_again_and_nothing_is_dropped(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.say("Acme", "open The NAS does not boot")
    desk.engineer("/resolve 1")
    assert 'reply "reopen 1"' in desk.say("Acme", "It broke again")
    out = desk.say("Acme", "ok")
    assert 'To reopen incident #1 at no charge, reply "reopen 1"; to open a new incident' in out
    assert desk.bodies(1) == ["The NAS does not boot", "It broke again"]
    out = desk.say("Acme", "open The fan is loud")
    assert "Incident #2 is open: The fan is loud" in out
    # The kept text is on #1 already: nothing of it was left out.
    assert "not included" not in out


def test_a_yes_after_an_engineers_question_answers_the_engineer_not_the_bot(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.say("Acme", "open The NAS does not boot")
    assert 'reply "#1" to add it there' in desk.say("Acme", "open The fan is loud")  # a question waits
    clock.advance(minutes=2)
    desk.engineer("/reply 1 Did you try another power supply?")
    clock.advance(minutes=1)
    assert "Added to incident #1." in desk.say("Acme", "yes")
    assert desk.bodies(1)[-1] == "yes" and desk.incident_count() == 1


def test_status_says_when_an_incident_was_resolved_and_until_when_it_reopens_free(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.customer("Cliente", credits=1, lang="pt")
    desk.say("Acme", "open Shares are slow")
    desk.say("Acme", "open NFS broken")
    assert "Incident #2 is open: NFS broken" in desk.say("Acme", "open")  # a second incident, confirmed
    desk.say("Cliente", "abrir Partilhas lentas")
    desk.engineer("/resolve 1 Raised the NFS threads to 16")
    desk.engineer("/resolve 3")
    resolved_at = clock.now
    until = _when(desk, resolved_at.replace(day=9))
    clock.advance(days=1)

    out = desk.say("Acme", "status")
    assert (
        f'#1 Shares are slow — resolved on 2 Dec 2026, severity 3 (normal); "reopen 1" reopens it at no charge until {until}'
        in out
    )
    assert "#2 NFS broken — with the support team, severity 3 (normal); next answer due:" in out
    assert "next answer due: —" not in out
    out = desk.say("Acme", "status 1")
    assert f"Resolved: {_when(desk, resolved_at)}" in out
    assert f'You can reopen it at no charge until {until}: reply "reopen 1".' in out
    assert "Resolution: Raised the NFS threads to 16" in out
    assert "Next answer due" not in out
    # Its messages: the zone named once, in the heading, each line with a short date and time.
    with transaction(desk.engine) as session:
        opened = session.get(Incident, 1).opened_at.astimezone(desk.runtime.deployment.settings.calendar.tz)
    stamp = f"{format_day(opened.date(), 'en')}, {opened:%H:%M}"
    assert f"Latest messages (Lisbon time):\n  — you ({stamp}): Shares are slow" in out
    assert out.count("Lisbon time") == 4  # opened, resolved, the reopen offer, and the list once
    assert "Next answer due:" in desk.say("Acme", "status 2")

    out = desk.say("Cliente", "estado")
    assert f"resolvido em {format_day(resolved_at.date(), 'pt')}, gravidade 3 (normal); «reabrir 3» reabre-o" in out
    out = desk.say("Cliente", "estado 3")
    assert f"Resolvido: {_when(desk, resolved_at, 'pt')}" in out and "Pode reabri-lo sem custos até" in out
    assert "Resolução" not in out  # resolved without a summary

    # Past the seven days: when it was resolved, and no offer that would be refused.
    clock.advance(days=7)
    out = desk.say("Acme", "status")
    assert "#1 Shares are slow — resolved on 2 Dec 2026, severity 3 (normal)\n" in out + "\n" and "reopens" not in out
    out = desk.say("Acme", "status 1")
    assert f"Resolved: {_when(desk, resolved_at)}" in out and "reopen" not in out

    desk.say("Acme", "close 2")
    closed_at = clock.now
    out = desk.say("Acme", "status 2")
    assert "State: closed" in out and f"Closed: {_when(desk, closed_at)}" in out and "Next answer due" not in out


def test_a_message_for_a_closed_incident_waits_for_open_and_says_it_costs_a_credit(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    desk.customer("Cliente", credits=2, lang="pt")
    desk.say("Acme", "open Shares are slow")
    desk.say("Cliente", "abrir Partilhas lentas")
    desk.say("Acme", "close 1")
    desk.say("Cliente", "fechar 2")

    out = desk.say("Acme", "#1 still slow")
    assert (
        'Incident #1 is closed and takes no more messages, so I kept yours as a draft. Reply "open" to start a new'
        " incident with it (it uses one credit)." in out
    )
    assert "[#1 " not in out and desk.bodies(1) == ["Shares are slow"]  # not on the closed incident
    out = desk.say("Cliente", "#2 continua lento")
    assert "O incidente #2 está fechado e já não recebe mensagens" in out and "(utiliza um crédito)" in out
    assert "Incident #3 is open: still slow" in desk.say("Acme", "open")
    assert desk.credits_used() == 3


def test_a_thank_you_with_a_file_and_no_incident_is_kept_with_its_file(engine, db_url, clock):
    """ "Thanks, here is the log" may come as "Thanks!" and a file: the file is what matters, so
    the message is kept as any other, and opening an incident takes the file along."""
    import dataclasses
    import hashlib

    from adapters.channel import Attachment
    from adapters.console import console_line

    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    data = b"kernel: disk error\n" * 10
    log = Attachment("dmesg.txt", "text/plain", len(data), hashlib.sha256(data).hexdigest(), data)
    start = len(desk.out.getvalue())
    desk.runtime.intake.deliver(
        dataclasses.replace(console_line("Acme", "Thanks!", "with-file", clock()), attachments=(log,))
    )
    desk.runtime.dispatcher.drain("console")
    assert 'Reply "open" to open one with this message' in desk.out.getvalue()[start:]
    out = desk.say("Acme", "open")
    assert "Incident #1 is open: Thanks!" in out and "dmesg.txt" in out


def test_an_engineer_chooses_a_customers_language_and_the_next_answer_is_in_it(engine, db_url, clock):
    """`/customer lang pt NAME`: a customer stored as English (an old record, or a wrong choice) is
    answered in Portuguese from the next message; `auto` un-chooses it, and then a Portuguese
    message chooses Portuguese again, as for a customer added without one."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme Lda", lang="en")
    assert "You have no open incidents." in desk.say("Acme Lda", "status")

    assert "`Acme Lda` (id 1) is answered in Portuguese from now on." in desk.engineer("/customer lang pt Acme Lda")
    assert "Não tem incidentes abertos." in desk.say("Acme Lda", "status")
    assert _lang_of(desk, "Acme Lda") == "pt"

    out = desk.engineer("/cliente lang AUTO acme lda")
    assert "has no language chosen now: English until they write in Portuguese." in out
    assert _lang_of(desk, "Acme Lda") is None
    assert "You have no open incidents." in desk.say("Acme Lda", "status")
    assert "Não tem incidentes abertos." in desk.say("Acme Lda", "estado")
    assert _lang_of(desk, "Acme Lda") == "pt"

    # The customer's own choice still wins afterwards.
    desk.engineer("/customer lang en 1")
    desk.say("Acme Lda", "idioma pt")
    assert _lang_of(desk, "Acme Lda") == "pt"


def test_customer_lang_says_what_is_wrong_and_changes_nothing(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme Lda", lang="en")
    out = desk.engineer("/customer lang fr Acme Lda")
    assert "Language must be one of: en, pt, auto. Usage: /customer lang <en|pt|auto> <customer>" in out
    assert "No customer `Acme`. Did you mean `Acme Lda` (id 1)?" in desk.engineer("/customer lang pt Acme")
    assert "Missing <customer>." in desk.engineer("/customer lang pt")
    assert _lang_of(desk, "Acme Lda") == "en"
    # A sub-command nobody declared: the ones there are, not "did you mean /customer".
    out = desk.engineer("/customer language pt Acme Lda")
    assert '"/customer" is followed by one of: add, code, link, show, lang.' in out
