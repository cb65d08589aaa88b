"""Portuguese and plurals as customers read them (issue 13, item 9): plural forms by number,
command words quoted («abrir» / "open"), dates written out in full, "Lisbon time" rather than a
zone id, and the corrections of the European Portuguese review. Through the console desk, on
SQLite and PostgreSQL."""

from __future__ import annotations

from bot.services import customers
from storage.db import transaction
from tests.desk import Desk


def _acme_and_cliente(engine, db_url, clock) -> Desk:  # noqa: ANN001
    """A desk with an English customer (Acme) and a Portuguese one (Cliente), one credit each."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.customer("Cliente", credits=1, lang="pt")
    return desk


def test_opening_counts_credits_in_the_right_form_and_dates_in_full(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Cliente", credits=3, lang="pt")
    out = desk.say("Cliente", "o disco está cheio")
    assert "Não tem nenhum incidente aberto. Responda «abrir» para abrir um com esta mensagem" in out
    assert "será utilizado um crédito do pacote válido até 2 de dezembro de 2027, inclusive (tem 3 créditos)." in out

    out = desk.say("Cliente", "«abrir»")  # the quoted command word, typed back as shown, works
    assert "O incidente #1 foi aberto: o disco está cheio" in out
    assert (
        "Foi utilizado um crédito do pacote válido até 2 de dezembro de 2027, inclusive. Restam 2 créditos, válidos até 2 de dezembro de 2027, inclusive."
        in out
    )
    assert "Responderemos até sexta-feira, 4 de dezembro de 2026, às 10:00 (hora de Lisboa)." in out

    desk.customer("Outro", credits=2, lang="pt")
    assert "Resta 1 crédito, válido até 2 de dezembro de 2027, inclusive." in desk.say("Outro", "abrir Outro problema")
    out = desk.say("Cliente", "estado 1")
    assert "Aberto: quarta-feira, 2 de dezembro de 2026, às 10:00 (hora de Lisboa)" in out


def test_the_last_credit_is_not_one_of_one(engine, db_url, clock):
    desk = _acme_and_cliente(engine, db_url, clock)
    out = desk.say("Acme", "my disk is full")
    assert (
        'You have no open incident. Reply "open" to open one with this message: it uses your last credit,'
        " valid until 2 Dec 2027 inclusive." in out
    )
    assert "one of your 1 credits" not in out
    out = desk.say("Cliente", "o disco está cheio")
    assert "será utilizado o seu último crédito, válido até 2 de dezembro de 2027, inclusive." in out
    out = desk.say("Acme", '"open"')
    assert "Incident #1 is open: my disk is full" in out
    assert "One credit used, from the pack valid until 2 Dec 2027 inclusive. No credits left." in out
    assert "We will answer by Friday, 4 December 2026 at 10:00 (Lisbon time)." in out


def test_help_names_lisbon_time_and_counts_business_days(engine, db_url, clock):
    desk = _acme_and_cliente(engine, db_url, clock)
    out = desk.say("Acme", "help")
    assert "Service hours: Mon-Fri 08:00-18:00 (Lisbon time), except public holidays." in out
    assert "We answer within 2 business days." in out and "Europe/Lisbon" not in out
    out = desk.say("Cliente", "ajuda")
    assert "(hora de Lisboa), exceto feriados. Respondemos no prazo de 2 dias úteis." in out
    assert "Europe/Lisbon" not in out


def test_usage_errors_name_the_incident_and_the_arguments_in_portuguese(engine, db_url, clock):
    desk = _acme_and_cliente(engine, db_url, clock)
    assert "Que incidente? Indique o número, por exemplo: «fechar 12». Utilização: fechar <número>" in desk.say(
        "Cliente", "fechar"
    )
    assert 'Which incident? Give its number, for example: "close 12". Usage: close <number>' in desk.say(
        "Acme", "close"
    )
    # Where more follows the number, the example has it too.
    assert "por exemplo: «gravidade 12 2». Utilização: gravidade <número> <1|2|3|4>" in desk.say("Cliente", "gravidade")
    assert 'for example: "severity 12 2". Usage: severity <number> <1|2|3|4>' in desk.say("Acme", "severity high 1")
    assert 'Which case? Give its number, for example: "/assign 12 me".' in desk.engineer("/assign me")
    assert "Idioma tem de ser um dos seguintes: en, pt. Utilização: idioma [en|pt]" in desk.say("Cliente", "idioma fr")
    assert "Respondo-lhe em português. Para mudar, envie «idioma en»." in desk.say("Cliente", "idioma")
    assert 'I answer you in English. To change it, send "lang pt".' in desk.say("Acme", "lang")
    assert "Falta indicar <código>." in desk.say("Cliente", "ligar")
    out = desk.say("Cliente", "estdo")
    assert "Comando desconhecido: «estdo». Queria dizer «estado»? Envie «ajuda» para ver a lista." in out
    assert 'Unknown command "stauts". Did you mean "status"? Send "help" for the list.' in desk.say("Acme", "stauts")


def test_no_credits_bought_says_buy_credits_and_used_up_says_buy_more(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Cliente", lang="pt")
    assert "Ainda não tem créditos de suporte. Compre créditos em https://" in desk.say("Cliente", "créditos")
    out = desk.say("Cliente", "abrir Pergunta")
    assert "Ainda não tem créditos de suporte." in out
    assert "Compre créditos em https://" in out and "e depois responda «abrir»." in out
    desk.engineer("/credits grant Cliente 1")
    desk.say("Cliente", "abrir")
    out = desk.say("Cliente", "abrir Outra pergunta")
    assert "Já utilizou todos os seus créditos de suporte." in out and "Compre mais créditos em https://" in out


def test_associar_links_an_account_and_the_welcome_counts_credits(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    with transaction(desk.engine) as s:
        _customer, code = customers.create_customer(s, "Cliente", None, "pt", clock())
    out = desk.engineer("/credits grant Cliente 1")
    assert "Pack 1: 1 credit for `Cliente`, bought 2 Dec 2026, valid until 2 Dec 2027 inclusive." in out
    out = desk.say("maria", f"associar {code}")
    assert (
        "Olá, Cliente! Esta conta ficou associada. Tem 1 crédito disponível. Escreva «ajuda» para ver o que posso fazer."
        in out
    )


def test_activation_code_texts_read_alike(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    out = desk.engineer("/customer add Initech")
    code = out.split("Activation code: ")[1].split()[0]
    assert f'(single use, valid for 14 days; the customer sends "link {code}")' in out
    out = desk.engineer("/customer code Initech")
    code = out.split("New activation code for `Initech`: ")[1].split()[0]
    assert f'(single use, valid for 14 days; the customer sends "link {code}")' in out
    assert "Welcome, Initech! This account is now linked. You have no credit to use today" in desk.say(
        "peter", f'"link" {code}'
    )


def test_a_message_over_the_size_limit_with_no_named_file_is_named_in_the_readers_language(engine, db_url, clock):
    # A mail too large to read whose parts name no file lists the message itself as the refused
    # file (adapters.email.structure): its name is the customer's language, never English text.
    import dataclasses

    from adapters.channel import WHOLE_MESSAGE, Attachment
    from adapters.console import console_line

    desk = _acme_and_cliente(engine, db_url, clock)
    whole = Attachment(WHOLE_MESSAGE, "message/rfc822", 3 * 2**20, None, refused_over=2**20)
    told = {}
    for who in ("Cliente", "Acme"):
        desk.say(who, "open The disk is full")
        line = console_line(who, "", f"big-{who}", clock())
        start = len(desk.out.getvalue())
        desk.runtime.intake.deliver(dataclasses.replace(line, too_large=True, attachments=(whole,)))
        desk.runtime.dispatcher.drain("console")
        told[who] = desk.out.getvalue()[start:]
    assert "— a mensagem inteira (3.0 MB): não encaminhado, excede o limite de 1.0 MB" in told["Cliente"]
    assert "— the whole message (3.0 MB): not passed on, over the limit of 1.0 MB" in told["Acme"]
    # The customers' answers never show the stored name; the engineers' case topics do.
    answers, in_answer = [], False
    for line in "".join(told.values()).splitlines():
        in_answer = line.startswith("deskbot → ") or (in_answer and line.startswith("  "))
        if in_answer:
            answers.append(line)
    assert len(answers) > 4 and not any(WHOLE_MESSAGE in line for line in answers)
    assert "+ file '(the whole message)' (3.0 MB, not kept: over the limit)" in told["Acme"]


def test_outside_service_hours_the_opening_says_when_the_team_is_back(engine, db_url, clock):
    desk = _acme_and_cliente(engine, db_url, clock)
    out = desk.say("Acme", "open Quota warning")
    assert "away" not in out  # Wednesday 10:00: the team is in
    desk.customer("Beta", credits=1)
    clock.advance(days=3)  # Saturday 5 December 10:00; Tuesday 8 December is a holiday
    out = desk.say("Beta", "open The NAS does not boot")
    assert "We will answer by Wednesday, 9 December 2026 at 18:00 (Lisbon time)." in out
    assert "The team is away now and back on Monday, 7 December 2026 at 08:00 (Lisbon time)." in out
    out = desk.say("Cliente", "abrir O disco está cheio")
    assert "Responderemos até quarta-feira, 9 de dezembro de 2026, às 18:00 (hora de Lisboa)." in out
    assert (
        "A equipa não está disponível neste momento. Regresso previsto: segunda-feira, 7 de dezembro de 2026,"
        " às 08:00 (hora de Lisboa)." in out
    )
    # Before opening on a working day, "today", not the day's full date.
    clock.advance(days=2, hours=-3)  # Monday 7 December 07:00
    desk.customer("Gama", credits=1)
    out = desk.say("Gama", "open The printer jams")
    assert "The team is away now and back today at 08:00 (Lisbon time)." in out
    desk.customer("Cliente Dois", credits=1, lang="pt")
    out = desk.say("Cliente Dois", "abrir A impressora encrava")
    assert "Regresso previsto: hoje, às 08:00 (hora de Lisboa)." in out
