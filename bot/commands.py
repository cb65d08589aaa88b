"""Command declarations, and the parser, help and permission checks derived from them.

A command is declared once, with the `command` decorator on its handler: its name in
each language, other aliases, audience, whether an account not yet linked to a
customer may use it, whether it only reads (`read_only`; any other acts), arguments and
help text. The handler modules list their commands in help order (`COMMANDS`), and the
router builds one `Registry` of them when it starts.
`Registry.find` turns a command word into the declaration; `parse_args` turns the rest
of the line into the handler's arguments or a `ParseError` that already says what is wrong.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from bot.i18n import LANGUAGES, _, render
from bot.numbers import FIRST_DAY, LAST_DAY, day, whole_number

Audience = Literal["customer", "engineer"]
#: "name": one or more words, as many as the arguments after it leave (a customer's name with
#: spaces needs no quotes: "/credits grant Acme Lda 3"); quoted, exactly what the quotes hold.
ArgKind = Literal["case", "int", "word", "name", "text", "date", "choice"]


@dataclass(frozen=True)
class Arg:
    name: str
    kind: ArgKind
    required: bool = True
    choices: tuple[str, ...] = ()
    #: How the argument is named in help and errors (a catalogue msgid); `name` if unset.
    label: str | None = None
    #: A value for the examples of a command's errors ("severity 12 2"), where one helps.
    example: str | None = None
    #: A "choice"'s choices with their names (catalogue msgids): `(("2", "high"), …)`. The name in
    #: any language is taken for the choice ("high", "alta": the answers say "2 (high)", and people
    #: write back the word they read), and an error lists them: "1 (critical), 2 (high) …".
    labels: tuple[tuple[str, str], ...] = ()

    def usage(self, lang: str = "en") -> str:
        shown = "|".join(self.choices) if self.kind == "choice" else render(lang, self.label or self.name)
        return f"<{shown}>" if self.required else f"[{shown}]"


@dataclass(frozen=True)
class Command:
    #: The command's word per language ("en" always; a language without one uses English).
    names: Mapping[str, str]
    audience: Audience
    args: tuple[Arg, ...]
    help: str
    handler: Callable[..., Any] = field(compare=False)
    #: Other words that run it ("new", "?").
    aliases: tuple[str, ...] = ()
    #: Sub-commands ("/customer add", "/customer show") share a first word.
    sub: str | None = None
    #: May an account not linked to a customer use it (help, lang, link)?
    unlinked: bool = False
    #: It changes nothing and writes to nobody but the asker (`/case`, `/cases`). Any other command
    #: acts (on a case, or to a customer): in a case topic, a number written without `#` that names
    #: another case is not taken for it (`OtherCase`).
    read_only: bool = False

    @property
    def name(self) -> str:
        return self.names["en"]

    @property
    def words(self) -> tuple[str, ...]:
        """Every word that runs it: its names, then its aliases."""
        return tuple(dict.fromkeys([*self.names.values(), *self.aliases]))

    def name_in(self, lang: str) -> str:
        return self.names.get(lang, self.names["en"])

    def usage(self, slash: bool, lang: str = "en") -> str:
        head = ("/" if slash else "") + self.name_in(lang) + (f" {self.sub}" if self.sub else "")
        return " ".join([head, *(a.usage(lang) for a in self.args)])


def command(
    *,
    en: str,
    pt: str | None = None,
    aliases: tuple[str, ...] = (),
    audience: Audience,
    args: tuple[Arg, ...] = (),
    help: str,
    sub: str | None = None,
    unlinked: bool = False,
    read_only: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the decorated function as the handler of a command (its `command` attribute)."""

    def declare(handler: Callable[..., Any]) -> Callable[..., Any]:
        names = {"en": fold(en)} | ({"pt": fold(pt)} if pt else {})
        declared = Command(
            names, audience, args, help, handler, tuple(fold(a) for a in aliases), sub, unlinked, read_only
        )
        handler.command = declared  # type: ignore[attr-defined]
        return handler

    return declare


class Registry:
    """Every command the bot knows, built once from the handler modules' lists."""

    def __init__(self, handlers: Iterable[Callable[..., Any]]) -> None:
        self.all: tuple[Command, ...] = tuple(h.command for h in handlers)  # type: ignore[attr-defined]
        # Looked up for every message: indexed once, by audience and by word.
        self._of = {audience: [c for c in self.all if c.audience == audience] for audience in ("customer", "engineer")}
        self._by_word: dict[tuple[str, str], list[Command]] = {}
        for cmd in self.all:
            for word in cmd.words:
                self._by_word.setdefault((cmd.audience, word), []).append(cmd)

    def of(self, audience: Audience) -> list[Command]:
        return self._of[audience]

    def find(self, audience: Audience, word: str, rest: str) -> Command | None:
        """The command of `audience` called `word` (with its sub-command taken from `rest`)."""
        for cmd in self._by_word.get((audience, word), ()):
            if cmd.sub is None or fold(rest.split(" ", 1)[0]) == cmd.sub:
                return cmd
        return None

    def named(self, audience: Audience, name: str) -> Command:
        """The command of `audience` whose English name is `name` (it must exist)."""
        return next(c for c in self.of(audience) if c.name == name)

    def subs(self, audience: Audience, word: str) -> list[str]:
        """The sub-commands of the command word (`/customer`: add, code, show, lang), in declared order."""
        return [cmd.sub for cmd in self._by_word.get((audience, word), ()) if cmd.sub]

    def is_command_word(self, audience: Audience, word: str) -> bool:
        return (audience, word) in self._by_word

    def suggestions(self, audience: Audience, word: str, cutoff: float = 0.6) -> list[str]:
        """Commands whose name or alias is close to `word`, each named by the alias that matched."""
        owner = {n: c.name for c in self.of(audience) for n in c.words if n != "?"}
        found: list[str] = []
        for match in difflib.get_close_matches(word, sorted(owner), n=6, cutoff=cutoff):
            if all(owner[match] != owner[f] for f in found):
                found.append(match)
        return found[:3]

    def explained(self, audience: Audience, word: str, sub: str | None = None) -> list[Command]:
        """The commands `help <word> [sub]` is about: the one `word` names, or every sub-command of a
        word that has them unless `sub` names one. `word` is read as a command word is (any case,
        accents optional, a leading "/" or not, punctuation after it: "help status?"); empty if it is
        no command of `audience`."""
        found = self._by_word.get((audience, fold(_without_punctuation(word.removeprefix("/"))[0])), [])
        chosen = [cmd for cmd in found if sub is not None and cmd.sub == fold(sub)]
        return chosen or list(found)


class ParseError(Exception):
    """The line names a command but its arguments are wrong; `msgid` + `values` explain."""

    def __init__(self, msgid: str, **values: object) -> None:
        super().__init__(msgid)
        self.msgid = msgid
        self.values = values


@dataclass(frozen=True)
class OtherCase:
    """In a case topic, the number a command that acts begins with, written without `#`, when it
    names another case than the topic's (SPEC §3: there the number may be left out, so it may be
    the start of the command's own words). "/reply 2 things to try" in #1's topic is "2 things to
    try" for #1's customer, or "things to try" for #2's: not taken for either. The handler asks
    which was meant; `#2` says it plainly, as the topic's own number does."""

    command: Command = field(repr=False)
    number: int
    topic_case: int
    #: The arguments before the number, as written (none, for a command whose number comes first).
    before: str
    #: The rest of the line from the number on, as written ("2 things to try").
    after: str

    def for_number(self) -> str:
        """The arguments that run the command on the case the number names: "#2 things to try"."""
        return f"{self.before} #{self.after}".strip()

    def for_topic(self) -> str | None:
        """The arguments that run the command on the topic's case with the words as written,
        the number among them ("1 2 things to try"); None when they would not fit the command
        ("/severity 2 1" cannot be for #1 as written)."""
        arguments = f"{self.before} {self.topic_case} {self.after}".strip()
        try:
            parse_args(self.command, f"{self.command.sub or ''} {arguments}", None)
        except ParseError:
            return None
        return arguments


def fold(word: str) -> str:
    """Case- and accent-insensitive form of a command word ('Créditos' -> 'creditos')."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


#: Quotes around a command word, as the answers write them ("open", «abrir»): typed back, they are dropped.
_QUOTED_WORD = re.compile(
    r'^["\u201c\u00ab\u2018\']([^\s"\u201c\u201d\u00ab\u00bb\u2018\u2019\']+)["\u201d\u00bb\u2019\'](?=\s|$)'
)


#: Mentions of other people before what a message says ("@bob@remote.example open VPN drops": a
#: Mastodon composer puts the people a status mentions first).
_LEADING_MENTIONS = re.compile(r"^(?:@\S+\s+)+(?=\S)")


def without_leading_mentions(text: str) -> str:
    """`text` from its first word that is not a mention (all of it, if it is only mentions)."""
    return _LEADING_MENTIONS.sub("", text.strip(), count=1)


#: Punctuation a person puts after a word ("open: the AD join fails", "Status?", "créditos?"): not
#: part of a command word, nor of a number ("status 12.").
_AFTER_A_WORD = ":.,;!?"


def _without_punctuation(word: str) -> tuple[str, bool]:
    """`word` without the punctuation after it, and whether it had any. A word that is only
    punctuation stays whole: "?" is a command word itself (help)."""
    bare = word.rstrip(_AFTER_A_WORD)
    return (bare, bare != word) if bare else (word, False)


class CommandLine(NamedTuple):
    """A message read as a command: its first word, then the rest."""

    #: The first word folded (`fold`), without the punctuation after it: what is looked up.
    word: str
    rest: str
    #: It began with "/", which says a command was meant.
    slash: bool
    #: The first word as it was written (case, accents), without that punctuation: what an answer quotes back.
    typed: str
    #: Punctuation followed the first word ("Status: still down"), as in a sentence (`reads_as_prose`).
    punctuated: bool


def split_command(text: str) -> CommandLine:
    """The first word and the rest of `text`, mentions before them skipped."""
    stripped = _QUOTED_WORD.sub(r"\1", without_leading_mentions(text), count=1)
    slash = stripped.startswith("/")
    match = re.match(r"(\S*)\s*(.*)", stripped[1:] if slash else stripped, re.DOTALL)
    assert match is not None  # the pattern matches any string
    typed, punctuated = _without_punctuation(match.group(1))
    return CommandLine(fold(typed), match.group(2).strip(), slash, typed, punctuated)


#: After a customer's command word, this many words or more that do not fit the command are a
#: sentence that happens to begin with the word ("close to losing data here", "help me please, the
#: disk died"): the customer's text, not a mistyped command. Fewer ("severity high 1") are a command
#: written wrong, answered with its usage.
PROSE_WORDS = 3


def reads_as_prose(line: CommandLine) -> bool:
    """Is `line.rest`, the text after a command word whose arguments did not parse, a sentence
    rather than arguments? So it is when it is `PROSE_WORDS` words or more, or when punctuation
    followed the word: people write a command word bare, and a label with a colon ("Status: still
    down"). Never after a leading '/', which says a command was meant."""
    return not line.slash and (len(line.rest.split()) >= PROSE_WORDS or (line.punctuated and bool(line.rest)))


class WithWords(NamedTuple):
    """A customer's command followed by their words about the incident it names (`with_words`)."""

    #: The handler's keyword arguments.
    values: dict[str, Any]
    #: The incident the command names, which the words are about.
    number: int
    words: str


def with_words(cmd: Command, rest: str) -> WithWords | None:
    """`close 12 thanks, it works now`, `severity 12 1 production is down`: the command's arguments,
    read from the start of `rest` with an incident's number among them, and the words written after
    them. None when no incident's number is written, when the arguments do not parse, or when
    nothing but them is written; and when what is left has no letter ("severity 12 2 3": a command
    written wrong, answered with its usage). A command ending in free text (`reopen N [text]`) takes
    the words itself, and has none left."""
    case = next((arg for arg in cmd.args if arg.kind == "case"), None)
    if case is None:
        return None
    try:
        values, words = _parsed(cmd, rest, None, "en")  # an error's wording is not needed here
    except ParseError:
        return None
    if values[case.name] is None or not any(ch.isalpha() for ch in words):
        return None
    return WithWords(values, values[case.name], words)


def parse_args(cmd: Command, rest: str, topic_case: int | None, lang: str = "en") -> dict[str, Any]:
    """The handler's keyword arguments from the text after the command word."""
    values, left = _parsed(cmd, rest, topic_case, lang)
    if left:
        raise ParseError(_('Unexpected text: "{text}".'), text=left[:40])
    return values


def _parsed(cmd: Command, rest: str, topic_case: int | None, lang: str) -> tuple[dict[str, Any], str]:
    """The handler's keyword arguments from the start of `rest`, and what is left after them."""
    if cmd.sub:
        rest = _first_word(rest)[1]
    values: dict[str, Any] = {}
    #: The arguments read so far, as written (an `OtherCase` writes them again).
    written: list[str] = []
    for arg in cmd.args:
        if arg.kind == "text":
            if arg.required and not rest:
                raise ParseError(_("Missing {arg}."), arg=arg.usage(lang))
            values[arg.name] = rest or None
            rest = ""
            continue
        if arg.kind == "name" and rest[:1] not in ('"', "\u201c"):
            rest = _split_name(arg, cmd.args[cmd.args.index(arg) + 1 :], rest, lang)
        rest = rest.strip()
        token, remainder = _first_word(rest)
        if arg.kind == "case":
            number = whole_number(token.removeprefix("#").rstrip(_AFTER_A_WORD)) if token else None
            bare = number is not None and topic_case is not None and not token.startswith("#")
            if bare:
                # In a case topic the number may be left out: "/severity 2" there gives the level only.
                later = cmd.args[cmd.args.index(arg) + 1 :]
                if all(a.kind != "text" for a in later) and len(rest.split()) <= sum(a.required for a in later):
                    number = None
            if number is not None:
                if bare and number != topic_case and not cmd.read_only:
                    assert topic_case is not None  # `bare` says so
                    values[arg.name] = OtherCase(cmd, number, topic_case, " ".join(written), rest)
                else:
                    values[arg.name] = number
                written.append(rest[: len(rest) - len(remainder)].strip())
                rest = remainder.strip()
            elif topic_case is not None:
                values[arg.name] = topic_case
            elif not arg.required:
                values[arg.name] = None
            elif cmd.audience == "customer":
                raise ParseError(
                    _('Which incident? Give its number, for example: "{example}".'), example=example(cmd, lang)
                )
            else:
                raise ParseError(
                    _('Which case? Give its number, for example: "{example}".'), example="/" + example(cmd, lang)
                )
            continue
        if not token:
            if arg.required:
                raise ParseError(_("Missing {arg}."), arg=arg.usage(lang))
            values[arg.name] = None
            continue
        values[arg.name] = _convert(arg, token, lang)
        written.append(rest[: len(rest) - len(remainder)].strip())
        rest = remainder.strip()
    return values, rest


def _split_name(arg: Arg, later: tuple[Arg, ...], rest: str, lang: str) -> str:
    """`rest` with the name's words quoted: the longest run of leading words that leaves, after
    it, words every later argument takes (all of them, or at least the required ones). Where no
    split fits, the split whose later words go furthest before one does not fit, so that the later
    arguments say what is wrong with the word that is wrong ("Acme Lda 3 2026-02-30": the date;
    "Acme 3 2026-01-05 x": "x"); among equals, one whose wrong word has digits (meant as a number
    or a date: "Acme Lda 3.5"), else the longest name ("Acme Lda": <n> is missing)."""
    words = rest.split()
    if not words:
        return rest
    needed = sum(a.required for a in later)
    for taken in range(min(len(later), len(words) - 1), needed - 1, -1):
        tail = words[len(words) - taken :]
        if all(_fits(a, word, lang) for a, word in zip(later, tail, strict=False)):
            return _quoted_name(words, len(words) - taken)

    def reach(start: int) -> int:
        """How many of the words from `start` on the later arguments take, in order."""
        return next(
            (i for i, (a, word) in enumerate(zip(later, words[start:], strict=False)) if not _fits(a, word, lang)),
            min(len(later), len(words) - start),
        )

    def rank(end: int) -> tuple[int, bool, int]:
        taken, tail = reach(end), words[end:]
        wrong = tail[taken] if taken < min(len(later), len(tail)) else ""
        return taken, any(ch.isdigit() for ch in wrong), end

    return _quoted_name(words, max(range(1, len(words) + 1), key=rank))


def _quoted_name(words: list[str], end: int) -> str:
    """The words with the first `end` of them quoted as one name."""
    return " ".join(['"' + " ".join(words[:end]) + '"', *words[end:]])


def _fits(arg: Arg, token: str, lang: str) -> bool:
    try:
        _convert(arg, token, lang)
    except ParseError:
        return False
    return True


def example(cmd: Command, lang: str, case: str = "12") -> str:
    """The command written out with sample arguments, no leading "/": "severity 12 2", "reply 12
    <text>", "credits grant <customer> 3". A case is `case` (12; "#12" as written in another case's
    topic), a whole number 3; any other argument is its declared `example`, else, when it is
    required, its first choice or its name in <>. An optional argument with no example is left out
    ("status 12" shows the number, "open <text>" its text)."""
    words = [cmd.name_in(lang), *([cmd.sub] if cmd.sub else [])]
    for arg in cmd.args:
        if arg.example:
            words.append(arg.example)
        elif arg.kind == "case":
            words.append(case)
        elif arg.kind == "int" and arg.required:
            words.append("3")
        elif arg.kind == "choice" and arg.required:
            words.append(arg.choices[0])
        elif arg.required or arg.kind == "text":
            words.append(f"<{render(lang, arg.label or arg.name)}>")
    return " ".join(words)


def _first_word(text: str) -> tuple[str, str]:
    """The first token, where "double quotes" keep a name with spaces together."""
    text = text.strip()
    if text[:1] in ('"', "\u201c"):
        end = re.search(r'["\u201d]', text[1:])
        if end:
            return text[1 : end.start() + 1], text[end.start() + 2 :].strip()
    parts = text.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def _convert(arg: Arg, token: str, lang: str) -> Any:
    if arg.kind == "int":
        number = whole_number(token)
        if number is None:
            raise ParseError(_("{arg} must be a whole number."), arg=arg.usage(lang))
        return number
    if arg.kind == "date":
        parsed = day(token)
        if parsed is None:
            raise ParseError(
                _("{arg} must be a date from {first} to {last}, like 2026-03-31."),
                arg=arg.usage(lang),
                first=FIRST_DAY.isoformat(),
                last=LAST_DAY.isoformat(),
            )
        return parsed
    if arg.kind == "choice":
        # fold() maps "²" to "2": a choice written in digits is read as a number, like any other. The
        # punctuation of a sentence may follow it ("severity 12 critical, production is down").
        token = _without_punctuation(token)[0]
        folded = fold(token) if not token.isdigit() else str(whole_number(token))
        named = {fold(render(language, label)): choice for choice, label in arg.labels for language in LANGUAGES}
        folded = named.get(folded, folded)
        if folded not in arg.choices:
            labels = dict(arg.labels)
            raise ParseError(
                _("{arg} must be one of: {choices}."),
                arg=render(lang, arg.label or arg.name),
                choices=", ".join(f"{c} ({render(lang, labels[c])})" if c in labels else c for c in arg.choices),
            )
        return folded
    return token
