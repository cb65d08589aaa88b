"""Keep the message catalogues in step with the code (no compile step: `bot.i18n` reads the .po).

    .venv/bin/python -m bot.locale_tools           # re-extract, update the .pot and pt_PT .po, report
    .venv/bin/python -m bot.locale_tools --check   # also exit 1 if a msgid is untranslated, fuzzy or
                                                   # its translation has other {placeholders}

Extraction takes only the `_("...")` and `n_("singular", "plural")` markers
(not gettext's default keywords) from bot/ and adapters/; a plural sentence
becomes a msgid with a msgid_plural and one msgstr per plural form of the
language (the .po's Plural-Forms header: two for pt_PT, one for 1 and one for
every other number). Both files are written sorted by msgid and without
source locations, so moving code around or two people adding strings at once
does not reshuffle the catalogue. New msgids arrive with an empty msgstr;
msgids no longer in the code are dropped. Nothing is fuzzy-matched: a changed
English sentence needs a fresh translation.
"""

from __future__ import annotations

import string
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, LANGUAGES, LOCALE_DIR

ROOT = LOCALE_DIR.parent.parent
SOURCE_DIRS = ("bot", "adapters")
KEYWORDS = {"_": None, "n_": (1, 2)}
POT_PATH = LOCALE_DIR / f"{DOMAIN}.pot"
PROJECT = "deskbot"
HEADER = {"version": "1", "copyright_holder": "the deskbot authors", "msgid_bugs_address": "the deskbot maintainers"}
TEAMS = {"pt_PT": "Portuguese (Portugal)"}
WIDTH = 100


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def _wanted_directory(path: str) -> bool:
    """Babel's default skips every `_private` folder too; only caches and dot-folders are skipped here."""
    name = Path(path).name
    return name != "__pycache__" and not name.startswith(".")


def extract(root: Path = ROOT) -> Catalog:
    """Every `_("...")` and `n_("...", "...")` msgid under bot/ and adapters/, with where it is used (in memory only)."""
    template = Catalog(project=PROJECT, domain=DOMAIN, charset="utf-8", fuzzy=False, **HEADER)
    for folder in SOURCE_DIRS:
        found = extract_from_dir(
            root / folder,
            method_map=[("**.py", "python")],
            keywords=KEYWORDS,
            comment_tags=("TRANSLATORS:",),
            strip_comment_tags=True,
            directory_filter=_wanted_directory,
        )
        for filename, lineno, message, comments, context in found:
            if (isinstance(message, str) and message) or (isinstance(message, tuple) and all(message)):
                template.add(
                    message, locations=[(f"{folder}/{filename}", lineno)], auto_comments=comments, context=context
                )
    return template


def placeholders(text: str) -> set[str]:
    """The `{names}` in a str.format template ('{a} {b!r:>3}' -> {'a', 'b'})."""
    return {field for _literal, field, _spec, _conv in string.Formatter().parse(text) if field is not None}


def forms(text: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """A msgid or msgstr as its forms: one for a plain sentence, one per plural form otherwise
    (a msgstr not translated yet is one empty form)."""
    if text is None:
        return ("",)
    return (text,) if isinstance(text, str) else tuple(text)


def placeholders_of(text: str | tuple[str, ...] | list[str]) -> set[str]:
    """The `{names}` of every form of a msgid or msgstr."""
    return set().union(*(placeholders(form) for form in forms(text)))


def translation_problem(message: Message, translated: Message | None, num_plurals: int) -> str | None:
    """What is wrong with `translated` as the translation of the template `message`, or None.

    A plural translation needs every form of its language; one of its forms may leave a
    placeholder out ("resta um crédito"), but none may bring one the English does not have.
    """
    if translated is None or not any(form.strip() for form in forms(translated.string)):
        return "untranslated"
    if translated.fuzzy:
        return "fuzzy"
    if isinstance(message.id, tuple) != isinstance(translated.id, tuple):
        return "plural forms differ"
    if isinstance(message.id, tuple):
        strings = forms(translated.string)
        if len(strings) != num_plurals or not all(form.strip() for form in strings):
            return f"untranslated plural form ({num_plurals} needed)"
        return "placeholders differ" if placeholders_of(strings) != placeholders_of(message.id) else None
    if placeholders(message.id) != placeholders(translated.string):
        return "placeholders differ"
    return None


def problems(template: Catalog, catalog: Catalog) -> list[str]:
    """What stops `catalog` from covering `template`: missing, empty, fuzzy, wrong placeholders or plural forms."""
    found = []
    for message in template:
        if not message.id:
            continue
        where = ", ".join(f"{f}:{n}" for f, n in message.locations)
        translated = catalog.get(message.id, message.context)
        problem = translation_problem(message, translated, catalog.num_plurals)
        if problem is not None:
            shown = f" -> {translated.string!r}" if problem == "placeholders differ" and translated else ""
            found.append(f"{problem}: {message.id!r}{shown} ({where})")
    return found


def _ids(catalog: Iterable) -> list[tuple[tuple[str, ...], object]]:
    return sorted((forms(m.id), m.context or "") for m in catalog if m.id)


def _write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(
            handle,
            catalog,
            width=WIDTH,
            no_location=True,
            omit_header=False,
            sort_output=True,
            ignore_obsolete=True,
            include_previous=False,
        )


def _read(path: Path, locale: str | None = None) -> Catalog | None:
    if not path.exists():
        return None
    with path.open("rb") as handle:
        return read_po(handle, locale=locale, domain=DOMAIN)


def update(now: datetime | None = None) -> tuple[Catalog, dict[str, Catalog]]:
    """Re-extract into the .pot and merge it into each language's .po; files change only if the msgids did."""
    now = now or datetime.now().astimezone()
    template = extract()
    old_pot = _read(POT_PATH)
    if old_pot is None or _ids(old_pot) != _ids(template):
        template.creation_date = now
        _write(POT_PATH, template)
    else:
        template.creation_date = old_pot.creation_date
    catalogs = {}
    for lang, locale in LANGUAGES.items():
        if locale == LANGUAGES["en"]:
            continue  # English is the msgid itself
        path = po_path(locale)
        catalog = _read(path, locale) or Catalog(
            locale=locale,
            domain=DOMAIN,
            project=PROJECT,
            creation_date=now,
            fuzzy=False,
            **HEADER,
            language_team=TEAMS.get(locale, locale),
            last_translator="the deskbot team",
        )
        before = [(forms(m.id), forms(m.string), m.fuzzy) for m in catalog if m.id] if path.exists() else None
        catalog.update(template, no_fuzzy_matching=True, update_header_comment=False, update_creation_date=False)
        catalog.obsolete.clear()
        after = [(forms(m.id), forms(m.string), m.fuzzy) for m in catalog if m.id]
        if before is None or sorted(before) != sorted(after):
            catalog.revision_date = now
            _write(path, catalog)
        catalogs[lang] = catalog
    return template, catalogs


def main(argv: list[str]) -> int:
    template, catalogs = update()
    count = len([m for m in template if m.id])
    print(f"{count} msgids in {POT_PATH.relative_to(ROOT)}")
    failed = False
    for lang, catalog in catalogs.items():
        found = problems(template, catalog)
        print(f"{LANGUAGES[lang]}: {count - len(found)}/{count} translated")
        for line in found:
            print(f"  {line}")
        failed = failed or bool(found)
    return 1 if failed and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
