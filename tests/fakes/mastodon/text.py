"""What the fake server does with status text: find mentions, count, render HTML.

Deliberately written apart from the adapter's own counting so that a test
compares two implementations of Mastodon's rule, not one with itself.

Rule (Mastodon `StatusLengthValidator#countable_text`): the length is the
number of grapheme clusters of `spoiler_text + text`, where every URL counts
as 23 characters and every mention counts as `@username` (its `@domain` part
is free). Mentions are found with `Account::MENTION_RE`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

try:  # graphemeu: the `grapheme` extra of Mastodon.py; real grapheme clusters
    import grapheme as _grapheme

    def graphemes(text: str) -> int:
        return _grapheme.length(text)

except ImportError:  # code points: never fewer than grapheme clusters

    def graphemes(text: str) -> int:
        return len(text)


URL_PLACEHOLDER = "x" * 23

#: Account::MENTION_RE, in Python's dialect.
MENTION_RE = re.compile(
    r"(?<![=/\w])@(([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)(?:@[\w.-]+\w+)?)",
    re.IGNORECASE,
)
#: A URL with a protocol; trailing sentence punctuation is not part of it.
URL_RE = re.compile(r"(?<![\w@/])https?://[^\s<>\"']+?(?=[.,;:!?)\]]*(?:\s|$|[<>\"']))", re.IGNORECASE)


def countable_length(text: str, spoiler_text: str = "") -> int:
    """How many characters Mastodon counts for this status."""
    countable = URL_RE.sub(URL_PLACEHOLDER, text)
    countable = MENTION_RE.sub(lambda m: "@" + m.group(2), countable)
    return graphemes(spoiler_text + countable)


def find_mentions(text: str) -> list[str]:
    """The mentioned handles (`user` or `user@domain`) in order, without duplicates."""
    seen: list[str] = []
    for match in MENTION_RE.finditer(text):
        handle = match.group(1)
        if handle.lower() not in (h.lower() for h in seen):
            seen.append(handle)
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
    pattern = re.compile(f"(?P<url>{URL_RE.pattern})|(?P<mention>{MENTION_RE.pattern})", re.IGNORECASE)

    def render_line(line: str) -> str:
        out: list[str] = []
        last = 0
        for match in pattern.finditer(line):
            out.append(html.escape(line[last : match.start()], quote=False))
            if match.group("url"):
                out.append(_link_html(match.group("url")))
            else:
                handle = match.group("mention")[1:]
                target = resolve(handle)
                out.append(mention_html(*target) if target else html.escape(match.group("mention"), quote=False))
            last = match.end()
        out.append(html.escape(line[last:], quote=False))
        return "".join(out)

    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join("<p>" + "<br />".join(render_line(line) for line in p.split("\n")) + "</p>" for p in paragraphs)
