"""Message catalogues, chosen per recipient (not per process).

Every customer-facing sentence is written in code as `_("English {name}")`
(the marker only tags it for extraction) and rendered with `render(lang, msgid,
**values)`, which looks it up in the recipient's catalogue. Catalogues are the
Babel `.po` files under `bot/locale/`, read directly so no compile step is
needed at install time.

    pybabel extract -k _ -o bot/locale/deskbot.pot bot/
    pybabel update -i bot/locale/deskbot.pot -d bot/locale -D deskbot
"""

from __future__ import annotations

import gettext
from datetime import date, datetime
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, get_day_names, get_timezone_location

from bot.policy.calendar import ServiceHours

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "deskbot"
#: The customer-facing language codes and the Babel locale behind each.
LANGUAGES = {"en": "en", "pt": "pt_PT"}
DEFAULT_LANG = "en"


def _(msgid: str) -> str:
    """Mark `msgid` for extraction; translation happens in `render`, per recipient."""
    return msgid


def normalise_lang(code: str | None) -> str:
    """Map 'pt', 'pt-PT', 'pt_BR', 'PT' … to 'pt'; anything unknown to English."""
    if not code:
        return DEFAULT_LANG
    short = code.replace("-", "_").split("_")[0].lower()
    return short if short in LANGUAGES else DEFAULT_LANG


@cache
def _catalogue(lang: str) -> gettext.NullTranslations:
    locale = LANGUAGES[lang]
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang == DEFAULT_LANG or not po_path.exists():
        return gettext.NullTranslations()
    # Babel's catalogue reader is needed once per language, the first time someone is answered in it.
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def render(lang: str, msgid: str, /, **values: object) -> str:
    """`msgid` in `lang`, with `{placeholders}` filled from `values`."""
    text = _catalogue(normalise_lang(lang)).gettext(msgid)
    return text.format(**values) if values else text


@lru_cache(maxsize=1024)
def format_when(moment: datetime, lang: str, tz: ZoneInfo) -> str:
    """A date and time in the service time zone, with the zone shown: 'Tue 1 Dec 2026, 10:00 (Lisbon time)'.

    Kept for the last thousand moments: every `status` shows the due time of each open
    incident, and CLDR formatting is the costliest part of composing that answer.
    """
    locale = Locale.parse(LANGUAGES[normalise_lang(lang)])
    when = format_datetime(moment.astimezone(tz), "EEE d MMM y, HH:mm", tzinfo=tz, locale=locale)
    city = get_timezone_location(tz, locale=locale, return_city=True)
    return render(lang, _("{when} ({city} time)"), when=when, city=city)


def format_day(day: date, lang: str) -> str:
    """A calendar date: '10 Mar 2027' / '10/03/2027'-style per language."""
    return format_date(day, "d MMM y", locale=Locale.parse(LANGUAGES[normalise_lang(lang)]))


def format_hours(hours: ServiceHours, lang: str) -> str:
    """Service hours with day names in the recipient's language: 'Mon-Fri 08:00-18:00' / 'seg.-sex. …'."""
    names = get_day_names("abbreviated", locale=Locale.parse(LANGUAGES[normalise_lang(lang)]))
    return hours.describe([names[day] for day in range(7)])
