"""The pt_PT catalogue covers every `_("...")` and `n_("...", "...")` in the code, and rendering
picks the recipient's language and, for a number, the right plural form.

No database: the msgids are extracted from bot/ and adapters/ at test time, so a
new English sentence without a Portuguese translation fails here. To fix:

    .venv/bin/python -m bot.locale_tools --check

then fill the empty `msgstr` (or every `msgstr[N]` of a plural) in
bot/locale/pt_PT/LC_MESSAGES/deskbot.po.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot import i18n
from bot.i18n import _, format_day, format_when, n_, quoted, render, render_plural, zone_time
from bot.locale_tools import extract, forms, placeholders_of, po_path, problems, translation_problem

LISBON = ZoneInfo("Europe/Lisbon")
#: English command word -> the Portuguese alias a Portuguese reader is told to type.
ALIASES = {
    "help": "ajuda",
    "open": "abrir",
    "status": "estado",
    "credits": "creditos",
    "close": "fechar",
    "link": "ligar",
    "lang": "idioma",
}
_ALIAS_RE = "|".join(ALIASES)
#: Where an English sentence tells the reader to type a command word ("reply "open"", "send "link <code>"").
TYPED_COMMAND = re.compile(rf"\b(?i:reply|write|send|sends|type)\b:?\s+(\"?)({_ALIAS_RE})\b")
#: Brazilian Portuguese words with a different European form (the catalogue is pt_PT).
BRAZILIAN = re.compile(r"\b(arquivo|usuári[oa]s?|equipe|celular|contato|registro|você|vocês|time de)\b", re.IGNORECASE)
#: A number put before a plural noun in a sentence without plural forms ("one of your {left} credits").
COUNTED_NOUN = re.compile(r"\{(?:n|left|days|count|total)\} (?:\w+ )?(?:credits|days|incidents|cases|messages|hours)\b")
#: What the European Portuguese review of issue 13 replaced.
REVIEWED_AWAY = (
    "do nosso lado",
    "Boas-vindas",
    "está agora associada",
    "dentro de uma hora",
    "Qual é o caso",
    "Se não estiver",
)


@pytest.fixture(scope="module")
def source():
    return {m.id: m for m in extract() if m.id}


@pytest.fixture(scope="module")
def catalogue():
    with po_path("pt_PT").open("rb") as handle:
        return read_po(handle, locale="pt_PT", domain=i18n.DOMAIN)


def _where(message) -> str:
    return ", ".join(f"{f}:{n}" for f, n in message.locations)


def _strings(catalogue):
    """(English forms, Portuguese forms) of every translated entry."""
    return [(forms(m.id), forms(m.string)) for m in catalogue if m.id and any(forms(m.string))]


def test_extraction_finds_the_code_strings_and_their_plural_forms(source) -> None:
    assert "{city} time" in source
    assert ("{day} at {time} ({zone})", "{day} at {time} ({zone})") in source
    plural = next(m for m in source.values() if forms(m.id)[0].startswith("{left} credit left, valid until"))
    assert plural.pluralizable
    assert forms(plural.id)[1].startswith("{left} credits left, valid until")
    assert len(source) > 50


def test_catalogue_is_european_portuguese(catalogue) -> None:
    assert str(catalogue.locale) == "pt_PT"
    assert catalogue.num_plurals == 2
    assert catalogue.plural_expr == "(n != 1)"


def test_every_msgid_has_a_portuguese_translation_in_every_plural_form(source, catalogue) -> None:
    missing = []
    for msgid, message in sorted(source.items(), key=lambda item: forms(item[0])):
        problem = translation_problem(message, catalogue.get(msgid, message.context), catalogue.num_plurals)
        if problem is not None:
            missing.append(f"{problem}: {msgid!r} ({_where(message)})")
    assert not missing, "run `python -m bot.locale_tools` and translate:\n" + "\n".join(missing)


def test_translations_keep_the_placeholders(catalogue) -> None:
    wrong = [
        f"{english!r}: {sorted(placeholders_of(english))} -> {portuguese!r}: {sorted(placeholders_of(portuguese))}"
        for english, portuguese in _strings(catalogue)
        if placeholders_of(english) != placeholders_of(portuguese)
    ]
    assert not wrong, "\n".join(wrong)


def test_msgids_are_valid_format_strings(source) -> None:
    for msgid in source:
        placeholders_of(msgid)  # raises ValueError on an unbalanced brace


def test_a_number_before_a_plural_noun_goes_through_plural_forms(source) -> None:
    """No "one of your 1 credits": a sentence that counts something is an n_(...) with both forms."""
    wrong = [
        f"{msgid!r} ({_where(m)})"
        for msgid, m in source.items()
        if isinstance(msgid, str) and COUNTED_NOUN.search(msgid)
    ]
    assert not wrong, "use n_(singular, plural) and render_plural:\n" + "\n".join(wrong)


def test_typed_command_words_are_quoted_and_portuguese_ones_are_the_aliases(catalogue) -> None:
    wrong = []
    for english_forms, portuguese_forms in _strings(catalogue):
        for english, portuguese in zip(english_forms, portuguese_forms, strict=False):
            for found in TYPED_COMMAND.finditer(english):
                quote, word = found.groups()
                if not quote:
                    wrong.append(f"{english!r}: quote the command word {word!r}")
                if f"«{ALIASES[word]}" not in portuguese:
                    wrong.append(f"{english!r} -> {portuguese!r}: expected «{ALIASES[word]}…» for {word!r}")
    assert not wrong, "\n".join(wrong)


def test_no_brazilian_words(catalogue) -> None:
    wrong = [f"{e!r} -> {p!r}" for e, p in _strings(catalogue) if any(BRAZILIAN.search(form) for form in p)]
    assert not wrong, "\n".join(wrong)


def test_the_european_portuguese_review_is_applied(catalogue) -> None:
    wrong = [f"{p!r}" for _e, p in _strings(catalogue) for form in p for phrase in REVIEWED_AWAY if phrase in form]
    assert not wrong, "\n".join(wrong)
    apology = "Sorry, something went wrong on our side. Your message is saved and the team has been told."
    assert "da nossa parte" in render("pt", apology)
    assert render("pt", _("Missing {arg}."), arg="<número>") == "Falta indicar <número>."
    assert render("pt", _("Too many wrong codes: you can try again after {when}."), when="x").endswith(
        "pode tentar novamente depois de x."
    )
    codes = [p[0] for e, p in _strings(catalogue) if "Activation code" in e[0] or "New activation code" in e[0]]
    assert len(codes) == 2 and all("válido durante 14 dias" in text and "«ligar {code}»" in text for text in codes)


def test_catalogue_has_no_stale_entries(source, catalogue) -> None:
    stale = sorted(forms(m.id) for m in catalogue if m.id and m.id not in source)
    assert not stale, "run `python -m bot.locale_tools` to drop: " + repr(stale)


def test_render_portuguese_and_english() -> None:
    msgid = _("You have no incident #{number}.")
    assert render("pt", msgid, number=7) == "Não tem nenhum incidente #7."
    assert render("pt-PT", msgid, number=7) == "Não tem nenhum incidente #7."
    assert render("en", msgid, number=7) == "You have no incident #7."
    assert render("fr", msgid, number=7) == "You have no incident #7."
    assert render("pt", _("Your incidents:")) == "Os seus incidentes:"
    assert render("en", _("Your incidents:")) == "Your incidents:"


def test_render_plural_picks_the_form_of_the_number() -> None:
    message = n_(
        "{left} credit left, valid until {expiry} inclusive.",
        "{left} credits left, valid until {expiry} inclusive.",
    )
    said = {n: render_plural("pt", n, message, left=n, expiry="4 de dezembro de 2026") for n in (0, 1, 3)}
    assert said[1] == "Resta 1 crédito, válido até 4 de dezembro de 2026, inclusive."
    assert said[3].startswith("Restam 3 créditos, válidos")
    assert said[0].startswith("Restam 0 créditos")
    assert render_plural("en", 1, message, left=1, expiry="4 Dec 2026").startswith("1 credit left,")
    assert render_plural("en", 3, message, left=3, expiry="4 Dec 2026") == (
        "3 credits left, valid until 4 Dec 2026 inclusive."
    )
    with pytest.raises(TypeError):
        render("en", message)  # type: ignore[arg-type]


def test_a_singular_form_may_leave_the_number_out() -> None:
    message = n_(
        'You have no open incident. Reply "open" to open one with this message: it uses your last credit, valid until {expiry} inclusive.',
        'You have no open incident. Reply "open" to open one with this message: it uses a credit from the pack valid until {expiry} inclusive (you have {left} credits).',
    )
    assert "o seu último crédito" in render_plural("pt", 1, message, left=1, expiry="x")
    assert "(tem 2 créditos)" in render_plural("pt", 2, message, left=2, expiry="x")
    assert "one of your 1 credits" not in render_plural("en", 1, message, left=1, expiry="x")


def test_quoted_command_words() -> None:
    assert quoted("en", "open") == '"open"'
    assert quoted("pt", "abrir") == "«abrir»"


def test_format_when_in_portuguese_in_full() -> None:
    moment = datetime(2026, 12, 9, 18, 0, tzinfo=UTC)  # a Wednesday, 18:00 in Lisbon (WET)
    assert format_when(moment, "pt", LISBON) == "quarta-feira, 9 de dezembro de 2026, às 18:00 (hora de Lisboa)"
    one_o_clock = datetime(2026, 12, 10, 1, 30, tzinfo=UTC)
    assert format_when(one_o_clock, "pt", LISBON) == "quinta-feira, 10 de dezembro de 2026, à 01:30 (hora de Lisboa)"


def test_format_when_in_english_in_full() -> None:
    moment = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert format_when(moment, "en", LISBON) == "Tuesday, 1 December 2026 at 10:00 (Lisbon time)"
    summer = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)  # WEST: 10:00 in Lisbon
    assert format_when(summer, "en", LISBON) == "Wednesday, 1 July 2026 at 10:00 (Lisbon time)"


def test_format_day_and_zone() -> None:
    assert format_day(date(2027, 3, 10), "pt") == "10 de março de 2027"
    assert format_day(date(2027, 3, 10), "en") == "10 Mar 2027"
    assert zone_time(LISBON, "en") == "Lisbon time"
    assert zone_time(LISBON, "pt") == "hora de Lisboa"


def test_the_checker_finds_a_missing_plural_form_and_a_foreign_placeholder() -> None:
    template = Catalog(locale=None)
    template.add(("{n} credit", "{n} credits"))
    template.add("Hello {name}")
    catalog = Catalog(locale="pt_PT")
    catalog.add(("{n} credit", "{n} credits"), string=("{n} crédito", ""))
    catalog.add("Hello {name}", string="Olá {nome}")
    found = problems(template, catalog)
    assert any(line.startswith("untranslated plural form (2 needed)") for line in found)
    assert any(line.startswith("placeholders differ: 'Hello {name}'") for line in found)
    catalog.get("{n} credit").string = ("um crédito", "{n} créditos")
    catalog.get("Hello {name}").string = "Olá {name}"
    assert problems(template, catalog) == []


def test_no_sentence_makes_a_hashtag_on_mastodon(catalogue) -> None:
    # Mastodon links "#" followed by a word with a letter in it ("#N") to that hashtag's page;
    # "#12" and "#<number>" stay text. Customers on Mastodon read these sentences.
    tagged = [
        form
        for entry, translated in _strings(catalogue)
        for form in (*entry, *translated)
        if re.search(r"#[^\W\d_]|#[0-9_]*[^\W\d_]", form.replace("{", " {"))
    ]
    assert not tagged, "\n".join(tagged)
