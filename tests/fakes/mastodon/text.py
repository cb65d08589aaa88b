"""What the fake server does with status text: find mentions, count, render HTML.

Deliberately written apart from the adapter's own rule (adapters/mastodon/
mentions.py, a compiled regex) so that a test compares two implementations
of Mastodon's rule, not one with itself: here mentions are found by a
hand-written scan.

Rule (Mastodon `StatusLengthValidator#countable_text`): the length is the
number of grapheme clusters of `spoiler_text + text`, where every URL counts
as 23 characters and every mention counts as `@username` (its `@domain` part
is free). Mentions are what `Account::MENTION_RE` matches, and each names a
recipient of the status:

    USERNAME_RE = /[a-z0-9_]+([.-]+[a-z0-9_]+)*/i
    MENTION_RE  = %r{(?<![=/[:word:]])@((#{USERNAME_RE})(?:@[[:word:]]+([.-]+[[:word:]]+)*)?)}

with Ruby's `[[:word:]]`, which is not Python's `\\w` (see `ruby_word`).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import NamedTuple

from mastodon._url_regex import url_regex as _twitter_text_url_regex

try:  # graphemeu: the `grapheme` extra of Mastodon.py; real grapheme clusters
    import grapheme as _grapheme

    def graphemes(text: str) -> int:
        return _grapheme.length(text)

except ImportError:  # code points: never fewer than grapheme clusters

    def graphemes(text: str) -> int:
        return len(text)


URL_PLACEHOLDER = "x" * 23
#: Latin letters in a circle or a square: Unicode's Other_Alphabetic symbols
#: (SQUARED LATIN SMALL LETTER D, U+1F1A5, is not one).
_LETTER_SYMBOL = re.compile(
    r"CIRCLED LATIN SMALL LETTER [A-Z]|(NEGATIVE )?(CIRCLED|SQUARED) LATIN CAPITAL LETTER [A-Z]"
)


def ruby_word(char: str) -> bool:
    """Ruby's `[[:word:]]`: Alphabetic | Mark | Decimal_Number | Connector_Punctuation.

    Python's `\\w` differs: it takes "²", "½", "௰" (numbers that are not
    decimal digits) and no combining marks.
    """
    category = unicodedata.category(char)
    if category.startswith(("L", "M")) or category in ("Nd", "Nl", "Pc"):
        return True
    return category == "So" and _LETTER_SYMBOL.fullmatch(unicodedata.name(char, "")) is not None


def _username_char(char: str) -> bool:
    # `[a-z0-9_]` under Onigmo's /i: also KELVIN SIGN and LONG S, which fold to k and s.
    return char.isascii() and (char.isalnum() or char == "_") or char in "\u212a\u017f"


def _run_end(text: str, start: int, is_char: Callable[[str], bool]) -> int:
    """Where the longest `C+([.-]+C+)*` from `start` ends (`start` when there is none)."""
    end = position = start
    while position < len(text):
        if is_char(text[position]):
            position += 1
            end = position
        elif text[position] in ".-" and end > start:
            position += 1
        else:
            break
    return end


class Mention(NamedTuple):
    start: int
    end: int
    handle: str  # user or user@domain
    username: str


def mention_spans(text: str) -> Iterator[Mention]:
    """Every match of MENTION_RE, left to right, as Ruby's `scan` finds them."""
    position = 0
    while (at := text.find("@", position)) >= 0:
        position = at + 1
        if at and (text[at - 1] in "=/" or ruby_word(text[at - 1])):
            continue
        username_end = _run_end(text, at + 1, _username_char)
        if username_end == at + 1:
            continue
        end = username_end
        if end < len(text) and text[end] == "@":
            domain_end = _run_end(text, end + 1, ruby_word)
            if domain_end > end + 1:
                end = domain_end
        yield Mention(at, end, text[at + 1 : end], text[at + 1 : username_end])
        position = end


#: URLs as Mastodon finds them: the twitter-text library's regex (Mastodon's
#: Extractor uses its Ruby port; Mastodon.py ships the same regex). Group 3 is
#: the URL, group 2 the character before it. A simpler pattern of our own
#: counted "¹https://…" as text where Mastodon counts a link.
URL_RE = _twitter_text_url_regex


def countable_length(text: str, spoiler_text: str = "") -> int:
    """How many characters Mastodon counts for this status."""
    countable = URL_RE.sub(lambda m: m.group(2) + URL_PLACEHOLDER, text)
    pieces: list[str] = []
    last = 0
    for mention in mention_spans(countable):
        pieces += [countable[last : mention.start], "@" + mention.username]
        last = mention.end
    return graphemes(spoiler_text + "".join(pieces) + countable[last:])


def find_mentions(text: str) -> list[str]:
    """The mentioned handles (`user` or `user@domain`) in order, without duplicates."""
    seen: list[str] = []
    for mention in mention_spans(text):
        if mention.handle.lower() not in (h.lower() for h in seen):
            seen.append(mention.handle)
    return seen


def _link_html(url: str) -> str:
    scheme, _, rest = url.partition("://")
    visible, hidden = rest[:30], rest[30:]
    ellipsis = "ellipsis" if hidden else ""
    return (
        f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener" translate="no">'
        f'<span class="invisible">{html.escape(scheme)}://</span>'
        f'<span class="{ellipsis}">{html.escape(visible)}</span>'
        f'<span class="invisible">{html.escape(hidden)}</span></a>'
    )


def mention_html(url: str, username: str) -> str:
    """A mention as Mastodon 4.x renders it."""
    return (
        f'<span class="h-card" translate="no"><a href="{html.escape(url)}" class="u-url mention">'
        f"@<span>{html.escape(username)}</span></a></span>"
    )


def render_html(text: str, resolve: Callable[[str], tuple[str, str] | None]) -> str:
    """Plain status text to Mastodon's HTML: paragraphs, <br />, links, mentions.

    `resolve(handle)` gives (profile url, username) for a mention that names a
    known account, or None to leave the text as it is.
    """

    def render_line(line: str) -> str:
        # Links and mentions as Mastodon's Extractor takes them: by position, the earlier of two overlapping wins.
        entities = sorted(
            [(m.start(3), m.end(3), m.group(3), None) for m in URL_RE.finditer(line)]
            + [(m.start, m.end, line[m.start : m.end], m.handle) for m in mention_spans(line)],
            key=lambda entity: entity[0],
        )
        out: list[str] = []
        last = 0
        for start, end, shown, handle in entities:
            if start < last:
                continue
            out.append(html.escape(line[last:start], quote=False))
            if handle is None:
                out.append(_link_html(shown))
            else:
                target = resolve(handle)
                out.append(mention_html(*target) if target else html.escape(shown, quote=False))
            last = end
        out.append(html.escape(line[last:], quote=False))
        return "".join(out)

    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join("<p>" + "<br />".join(render_line(line) for line in p.split("\n")) + "</p>" for p in paragraphs)
