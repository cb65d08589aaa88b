"""`help <command>`: one command explained to the asker, every word of it derived from the
command declarations (bot.commands), none written per command."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.commands import Arg, Audience, Command, Registry, example, fold
from bot.i18n import LANGUAGES, _, quoted, render

#: `help`'s arguments: the command to explain ("help open", "/help credits grant"). Words, not free
#: text: a sentence after "help" ("help me please, the disk died") does not parse, and so stays the
#: customer's text (bot.router), while a word or two ask about a command.
HELP_TOPIC = Arg("topic", "word", required=False, label=_("command"))
HELP_SUBCOMMAND = Arg("subcommand", "word", required=False, label=_("subcommand"))
#: "In Portuguese: abrir": a command's name in another language, said in the asker's.
_NAMED_IN = {"en": _("In English: {name}"), "pt": _("In Portuguese: {name}")}


def explain(registry: Registry, commands: Sequence[Command], lang: str, code: Callable[[str], str] = str) -> list[str]:
    """`help <command>`'s answer in `lang` (`commands`: one of `explained`'s answers): the usage
    and what it does (of each sub-command, if several), its name in the other languages and an
    example; `code` marks what is typed (an engineer's Zulip shows it as code)."""
    first = commands[0]
    slash = first.audience == "engineer"
    prefix = "/" if slash else ""
    if len(commands) == 1:
        lines = [f"{code(first.usage(slash, lang))} — {render(lang, first.help)}"]
    else:
        lines = [code(f"{prefix}{first.name_in(lang)} {'|'.join(c.sub or '' for c in commands)}")]
        lines += [f"• {code(c.usage(slash, lang))} — {render(lang, c.help)}" for c in commands]
    lines += [
        render(lang, _NAMED_IN[other], name=code(prefix + first.name_in(other)))
        for other in LANGUAGES
        if other != lang and first.name_in(other) != first.name_in(lang)
    ]
    lines.append(render(lang, _("For example: {example}"), example=code(prefix + example(first, lang))))
    if slash and any(arg.kind == "case" for arg in first.args):
        lines.append(_in_a_case_topic(first, lang, code))
    if len(commands) > 1:
        one = f"{_help_word(registry, first.audience, lang)} {first.name_in(lang)} {first.sub}"
        lines.append(render(lang, _("For one of them alone: {example}"), example=code(one)))
    return lines


def _in_a_case_topic(cmd: Command, lang: str, code: Callable[[str], str]) -> str:
    """How an engineer's command names its case in a case topic (SPEC §3): the number may be left out;
    a command that acts takes another case's number only written with # (`bot.commands.OtherCase`)."""
    if cmd.read_only:
        return render(lang, _("In a case topic the number may be left out."))
    return render(
        lang,
        _("In a case topic the number may be left out; there, another case's number is written with #: {example}"),
        example=code("/" + example(cmd, lang, case="#12")),
    )


def unknown_topic(registry: Registry, audience: Audience, word: str, shown: str, lang: str) -> str:
    """The answer to `help <word>` when `word` is no command: the closest ones, and `help` alone
    (`shown`: the word as the answer may show it)."""
    prefix = "/" if audience == "engineer" else ""
    help_word = _help_word(registry, audience, lang)
    close = registry.suggestions(audience, fold(word.removeprefix("/")))
    if close:
        unknown = render(
            lang,
            _("Unknown command {word}. Did you mean {suggestions}? Send {help} for the list."),
            word=quoted(lang, shown),
            suggestions=" / ".join(quoted(lang, prefix + c) for c in close),
            help=quoted(lang, help_word),
        )
    else:
        unknown = render(
            lang,
            _("Unknown command {word}. Send {help} for the list."),
            word=quoted(lang, shown),
            help=quoted(lang, help_word),
        )
    usage = registry.named(audience, "help").usage(slash=audience == "engineer", lang=lang)
    return unknown + " " + render(lang, _("Usage: {usage}"), usage=usage)


def details_line(
    registry: Registry,
    audience: Audience,
    lang: str,
    usable: Callable[[Command], bool] = lambda cmd: True,
    code: Callable[[str], str] | None = None,
) -> str:
    """The last line of `help` alone: `help <command>` gives one command's details, with an
    example on the first listed command other than help that the asker may use (`usable`);
    `code` marks what is typed (quoted as `lang` quotes, unless given)."""
    code = code or (lambda words: quoted(lang, words))
    help_cmd = registry.named(audience, "help")
    help_word = _help_word(registry, audience, lang)
    sample = next(c for c in registry.of(audience) if c is not help_cmd and usable(c))
    return render(
        lang,
        _("Send {usage} for the details of one command, for example {example}."),
        usage=code(f"{help_word} <{render(lang, HELP_TOPIC.label or HELP_TOPIC.name)}>"),
        example=code(f"{help_word} {sample.name_in(lang)}"),
    )


def _help_word(registry: Registry, audience: Audience, lang: str) -> str:
    return ("/" if audience == "engineer" else "") + registry.named(audience, "help").name_in(lang)
