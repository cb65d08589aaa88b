"""What Zulip would make active in a message body the bot writes (a test helper; no network).

Follows the server's renderer closely enough to judge the bot's own messages:

1. A message that starts with `/poll`, `/todo` or `/me ` becomes a widget or a
   status (zerver/lib/widget.py).
2. Fenced blocks go first (zerver/lib/markdown/fenced_code.py): a line of
   three or more backticks or tildes opens one, the line equal to that fence
   closes it. A plain or `text` block is code; `quote`, `spoiler`, `math`,
   `latex` blocks render their contents, so they count as active.
3. In each paragraph, code spans are found before anything else, as
   Python-Markdown's BACKTICK_RE finds them (Zulip's `backtick` pattern has
   the highest inline priority, 105): leftmost first, each match replaced by
   a placeholder before the search goes on, as the inline processor does.
4. What is left is searched with the server's mention patterns
   (zerver/lib/mention.py, with the characters allowed before `@` of old and
   new servers), stream links, links and images, bare URLs and emails
   (zerver's web link regex, with a short list of top-level domains), TeX,
   emoji codes, timestamps, avatars, and block quotes (whose mentions would
   only be silenced).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: markdown.inlinepatterns.BACKTICK_RE (Python-Markdown 3), which Zulip's BacktickInlineProcessor uses.
BACKTICK_RE = re.compile(r"(?:(?<!\\)((?:\\{2})+)(?=`+)|(?<!\\)(`+)(.+?)(?<!`)\2(?!`))", re.DOTALL | re.UNICODE)
PLACEHOLDER = "\x02"
_BEFORE = r"(?<![^\s'\"\(,:<\{\[/])"  # BEFORE_MENTION_ALLOWED_REGEX, old and new servers together
_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})[ ]*\{?\.?(?P<info>[^`~]*?)\}?\s*$")
_RENDERED_FENCES = ("quote", "spoiler", "math", "latex")
_TLDS = "com|org|net|io|pt|co|uk|de|info|app|dev|example|test|evil|is|me|ly|sh"
ACTIVE = {
    "mention": re.compile(_BEFORE + r"@_?\*\*[^*]+\*\*"),
    "group mention": re.compile(_BEFORE + r"@_?\*[^*]+\*"),
    "stream link": re.compile(_BEFORE + r"#\*\*[^*]+\*\*"),
    "link": re.compile(r"\[[^\]]*\]\([^)]*\)"),
    "image": re.compile(r"!\[[^\]]*\]\("),
    "url": re.compile(r"(?<![^\s'\"\(,:<])(?:https?://|ftp://|mailto:|www\.)\S"),
    "domain": re.compile(rf"(?<![^\s'\"\(,:<])(?:[\w-]+\.)+(?:{_TLDS})(?=[!:;?),.'\">]*(?:\Z|\s|/))"),
    "email": re.compile(r"[\w.-]+@[\w.-]+\.\w+"),
    "tex": re.compile(r"\$\$[^\n]+?\$\$"),
    "emoji": re.compile(r":[\w\-+]+:"),
    "timestamp": re.compile(r"<time:[^>]*>"),
    "avatar": re.compile(r"!(?:gr)?avatar\("),
    "quote": re.compile(r"(?m)^\s{0,3}>"),
}


@dataclass
class Rendered:
    active: list[str]  # "kind: text" of everything that would act
    code: list[str]  # the text of each code span, in order


def render(content: str) -> Rendered:
    active: list[str] = []
    if content.startswith(("/poll", "/todo", "/me ")):
        active.append(f"widget: {content.splitlines()[0]}")
    code: list[str] = []
    text_lines: list[str] = []
    lines = content.split("\n")
    i = 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if opened is None:
            text_lines.append(lines[i])
            i += 1
            continue
        if opened.group("info").strip().lower().startswith(_RENDERED_FENCES):
            active.append(f"fenced block: {lines[i]}")
        i += 1
        while i < len(lines) and lines[i].rstrip() != opened.group("fence"):
            i += 1
        i += 1
        text_lines.append("")
    for paragraph in re.split(r"\n[ \t]*\n", "\n".join(text_lines)):
        rest = _take_code_spans(paragraph, code)
        for kind, pattern in ACTIVE.items():
            active += [f"{kind}: {m.group()}" for m in pattern.finditer(rest)]
    return Rendered(active, code)


def _take_code_spans(paragraph: str, code: list[str]) -> str:
    start = 0
    while (m := BACKTICK_RE.search(paragraph, start)) is not None:
        if m.group(2):
            code.append(m.group(3))
        paragraph = paragraph[: m.start()] + PLACEHOLDER + paragraph[m.end() :]
        start = m.start() + 1
    return paragraph


def active_markup(content: str) -> list[str]:
    """Everything in `content` that Zulip would render as a mention, link, image, widget, TeX …"""
    return render(content).active


#: Values that would act in Zulip markdown if written as is: mentions, links, TeX, widgets, fences, and
#: the ways out of a code span. Every value the bot writes among its own markup must survive them.
HOSTILE = [
    "@**all** look at this",
    "@**everyone** @**stream** @**channel** @**topic**",
    "@*support-team* ping the group",
    "@_**Erin Engineer|10** silent",
    "[click here](https://evil.example/login)",
    "![pixel](https://evil.example/p.png)",
    "https://evil.example/phish and evil.com",
    "$$\\href{https://evil.example}{x}$$",
    ":bomb: <time:2030-01-01T00:00:00Z> !avatar(eng@example.com)",
    "#**support>another topic**",
    "`@**all**`",
    "`` ` ``@**all**",
    "\\`@**all**`",
    "ends with a backtick `",
    "x``` ```@**all**",
    "/poll Which one?\nred\nblue",
    "```spoiler open me\n@**all**\n```",
    "> @**all** quoted",
    "two\n\n@**all** paragraphs",
    "\x1b[31m@**everyone**\x07 colours",
    "**x**",
    "mallory@**all**.example",
]
