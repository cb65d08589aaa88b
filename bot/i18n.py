"""Message catalogues, chosen per recipient (not per process).

Every customer-facing sentence is written in code as `_("English {name}")`
(the marker only tags it for extraction) and rendered with `render(lang, msgid,
**values)`, which looks it up in the recipient's catalogue. A sentence whose
words change with a number is written `n_("{n} credit left", "{n} credits left")`
and rendered with `render_plural(lang, n, message, **values)`: gettext's
`ngettext` picks the form the recipient's language needs for `n` (English and
European Portuguese: one form for 1, another for everything else, 0 included).
Catalogues are the Babel `.po` files under `bot/locale/`, read directly so no
compile step is needed at install time; `python -m bot.locale_tools` keeps
them in step with the code.

Dates and times are written out as a person would: "Wednesday, 9 December 2026
at 18:00 (Lisbon time)" / "quarta-feira, 9 de dezembro de 2026, às 18:00 (hora
de Lisboa)"; a day alone as "9 Dec 2026" / "9 de dezembro de 2026".
"""

from __future__ import annotations

import gettext
from datetime import date, datetime
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, get_day_names, get_timezone_location

from bot.policy.calendar import ServiceHours

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "deskbot"
#: The customer-facing language codes and the Babel locale behind each.
LANGUAGES = {"en": "en", "pt": "pt_PT"}
DEFAULT_LANG = "en"
#: How each language writes a day in full, and a date alone (CLDR patterns; English as in Britain,
#: day before month, as Lisbon's clock is shown).
_FULL_DAY = {"en": "EEEE, d MMMM y", "pt": "EEEE, d 'de' MMMM 'de' y"}
_DAY = {"en": "d MMM y", "pt": "d 'de' MMMM 'de' y"}


class Plural(NamedTuple):
    """A sentence in its singular and plural English forms (`n_`), rendered with `render_plural`."""

    singular: str
    plural: str


def _(msgid: str) -> str:
    """Mark `msgid` for extraction; translation happens in `render`, per recipient."""
    return msgid


def n_(singular: str, plural: str) -> Plural:
    """Mark a sentence whose form depends on a number; `render_plural` picks the form per recipient."""
    return Plural(singular, plural)


def language_tag(lang: str) -> str:
    """The BCP 47 tag of one of our languages, as a platform or a mail header takes it: 'en', 'pt-PT'."""
    return LANGUAGES[normalise_lang(lang)].replace("_", "-")


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
    if isinstance(msgid, Plural):
        raise TypeError(f"{msgid.singular!r} has plural forms: render it with render_plural")
    text = _catalogue(normalise_lang(lang)).gettext(msgid)
    return text.format(**values) if values else text


def render_plural(lang: str, n: int, message: Plural, /, **values: object) -> str:
    """`message` in `lang`, in the form `n` asks for, with `{placeholders}` filled from `values`."""
    text = _catalogue(normalise_lang(lang)).ngettext(message.singular, message.plural, n)
    return text.format(**values) if values else text


def zone_time(tz: ZoneInfo, lang: str) -> str:
    """What clock a time is on, as a person says it: 'Lisbon time' / 'hora de Lisboa'."""
    city = get_timezone_location(tz, locale=_locale(lang), return_city=True)
    return render(lang, _("{city} time"), city=city)


@lru_cache(maxsize=1024)
def format_when(moment: datetime, lang: str, tz: ZoneInfo) -> str:
    """A date and time in the service time zone, written out with the zone:
    'Wednesday, 9 December 2026 at 18:00 (Lisbon time)' /
    'quarta-feira, 9 de dezembro de 2026, às 18:00 (hora de Lisboa)'.

    Kept for the last thousand moments: every `status` shows the due time of each open
    incident, and CLDR formatting is the costliest part of composing that answer.
    """
    lang = normalise_lang(lang)
    local = moment.astimezone(tz)
    day = format_date(local.date(), _FULL_DAY[lang], locale=_locale(lang))
    # TRANSLATORS: the number choosing the form is the hour (0-23): Portuguese writes "à 01:00" but "às 13:00".
    message = n_("{day} at {time} ({zone})", "{day} at {time} ({zone})")
    return render_plural(lang, local.hour, message, day=day, time=local.strftime("%H:%M"), zone=zone_time(tz, lang))


def format_moment(moment: datetime, lang: str, tz: ZoneInfo) -> str:
    """A date and time in the service time zone, short, for a list whose heading names the zone:
    '7 Dec 2026, 09:49' / '7 de dezembro de 2026, 09:49'."""
    local = moment.astimezone(tz)
    return f"{format_day(local.date(), lang)}, {local.strftime('%H:%M')}"


def format_day(day: date, lang: str) -> str:
    """A calendar date: '10 Mar 2027' / '10 de março de 2027'."""
    lang = normalise_lang(lang)
    return format_date(day, _DAY[lang], locale=_locale(lang))


def format_hours(hours: ServiceHours, lang: str) -> str:
    """Service hours with day names in the recipient's language: 'Mon-Fri 08:00-18:00' / 'segunda-sexta …'."""
    names = get_day_names("abbreviated", locale=_locale(lang))
    return hours.describe([names[day] for day in range(7)])


def load(tz: ZoneInfo) -> None:
    """Read every language's catalogue and the CLDR data its dates are written with, now.

    Called at start (bot.runtime): a desk answers in both languages from its first hours, so
    the first answer in each no longer waits for its files (about 40 ms of CLDR data and the
    `.po` parsed, for Portuguese), and the memory they take (about 4.6 MiB) counts from the
    start rather than as growth while running (issue 15, item 9: growth after 10,000 DMs
    1.14x -> 1.09x the start).
    """
    moment = datetime(2026, 1, 1, 12, tzinfo=tz)
    for lang in LANGUAGES:
        _catalogue(lang)
        format_when.__wrapped__(moment, lang, tz)  # past the cache: a made-up moment takes no place in it
        format_day(moment.date(), lang)


def _locale(lang: str) -> Locale:
    return Locale.parse(LANGUAGES[normalise_lang(lang)])


def quoted(lang: str, words: str) -> str:
    """Words to type, quoted as the language quotes them: '"open"' / '«abrir»'."""
    return render(lang, _('"{words}"'), words=words)
