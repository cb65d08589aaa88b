"""The pt_PT catalogue covers every `_("...")` in the code, and rendering picks the recipient's language.

No database: the msgids are extracted from bot/ and adapters/ at test time, so a
new English sentence without a Portuguese translation fails here. To fix:

    .venv/bin/python -m bot.locale_tools --check

then fill the empty `msgstr` in bot/locale/pt_PT/LC_MESSAGES/deskbot.po.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from babel.messages.pofile import read_po

from bot import i18n
from bot.i18n import _, format_day, format_when, render
from bot.locale_tools import extract, placeholders, po_path

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
#: Where an English sentence tells the reader to type a command word ("reply open", "send: link <code>").
_ALIAS_RE = "|".join(ALIASES)
TYPED_COMMAND = re.compile(rf"\b(?i:reply|write|send|sends|type)\b:?\s+({_ALIAS_RE})\b|\b({_ALIAS_RE})\s+[<{{]")
#: Brazilian Portuguese words with a different European form (the catalogue is pt_PT).
BRAZILIAN = re.compile(r"\b(arquivo|usuári[oa]s?|equipe|celular|contato|registro|você|vocês|time de)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def source():
    return {m.id: m for m in extract() if m.id}


@pytest.fixture(scope="module")
def catalogue():
    with po_path("pt_PT").open("rb") as handle:
        return read_po(handle, locale="pt_PT", domain=i18n.DOMAIN)


def _where(message) -> str:
    return ", ".join(f"{f}:{n}" for f, n in message.locations)


def test_extraction_finds_the_code_strings(source) -> None:
    assert "{when} ({city} time)" in source
    assert len(source) > 50


def test_catalogue_is_european_portuguese(catalogue) -> None:
    assert str(catalogue.locale) == "pt_PT"
    assert catalogue.num_plurals == 2
    assert catalogue.plural_expr == "(n != 1)"


def test_every_msgid_has_a_portuguese_translation(source, catalogue) -> None:
    missing = []
    for msgid, message in sorted(source.items()):
        translated = catalogue.get(msgid, message.context)
        if translated is None or not translated.string or not translated.string.strip():
            missing.append(f"untranslated {msgid!r} ({_where(message)})")
        elif translated.fuzzy:
            missing.append(f"fuzzy {msgid!r} ({_where(message)})")
    assert not missing, "run `python -m bot.locale_tools` and translate:\n" + "\n".join(missing)


def test_translations_keep_the_placeholders(catalogue) -> None:
    wrong = [
        f"{m.id!r}: {sorted(placeholders(m.id))} -> {m.string!r}: {sorted(placeholders(m.string))}"
        for m in catalogue
        if m.id and m.string and placeholders(m.id) != placeholders(m.string)
    ]
    assert not wrong, "\n".join(wrong)


def test_msgids_are_valid_format_strings(source) -> None:
    for msgid in source:
        placeholders(msgid)  # raises ValueError on an unbalanced brace


def test_typed_command_words_use_the_portuguese_alias(catalogue) -> None:
    wrong = []
    for m in catalogue:
        if not (m.id and m.string):
            continue
        for found in TYPED_COMMAND.finditer(m.id):
            word = found.group(1) or found.group(2)
            if not re.search(rf"\b{ALIASES[word]}\b", m.string):
                wrong.append(f"{m.id!r} -> {m.string!r}: expected {ALIASES[word]!r} for {word!r}")
    assert not wrong, "\n".join(wrong)


def test_no_brazilian_words(catalogue) -> None:
    wrong = [f"{m.id!r} -> {m.string!r}" for m in catalogue if m.string and BRAZILIAN.search(m.string)]
    assert not wrong, "\n".join(wrong)


def test_catalogue_has_no_stale_entries(source, catalogue) -> None:
    stale = sorted(m.id for m in catalogue if m.id and m.id not in source)
    assert not stale, "run `python -m bot.locale_tools` to drop: " + repr(stale)


def test_render_portuguese_and_english() -> None:
    msgid = _("You have no incident #{number}.")
    assert render("pt", msgid, number=7) == "Não tem nenhum incidente #7."
    assert render("pt-PT", msgid, number=7) == "Não tem nenhum incidente #7."
    assert render("en", msgid, number=7) == "You have no incident #7."
    assert render("fr", msgid, number=7) == "You have no incident #7."
    assert render("pt", _("Your incidents:")) == "Os seus incidentes:"
    assert render("en", _("Your incidents:")) == "Your incidents:"


def test_render_points_a_portuguese_reader_at_the_portuguese_command() -> None:
    text = render("pt", _("Buy more at {url}, then reply open."), url="https://example.com/buy")
    assert text == "Compre mais em https://example.com/buy e depois responda abrir."


def test_format_when_in_portuguese() -> None:
    moment = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Lisbon (WET)
    text = format_when(moment, "pt", LISBON)
    assert "terça" in text
    assert "dez." in text
    assert "2026" in text and "10:00" in text
    assert text.endswith("(hora de Lisboa)")
    assert "Lisbon" not in text and "Tue" not in text


def test_format_when_in_english() -> None:
    moment = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert format_when(moment, "en", LISBON) == "Tue 1 Dec 2026, 10:00 (Lisbon time)"


def test_format_day_in_portuguese() -> None:
    assert format_day(datetime(2027, 3, 10).date(), "pt") == "10 mar. 2027"
