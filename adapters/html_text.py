"""HTML as the plain text a support case stores: Mastodon statuses and HTML-only mail.

One converter for every channel that receives HTML, walking it with a real
HTML parser (BeautifulSoup over `html.parser`), never with regular
expressions over markup:

* paragraphs and other blocks (table rows too) become blank-line separated,
  `<br>` a line break, table cells of one row are separated by a space; a line
  break in the source is a space, as a browser shows it, except in `<pre>`;
* `<blockquote>` becomes `> ` quoting, one mark per level up to a bound;
* a link becomes its URL (Mastodon shortens the visible text with
  `invisible`/`ellipsis` spans); a link whose text says something else keeps
  both, as `text (url)`;
* a Mastodon mention is looked up in the status's `mentions` list by its
  `href` (falling back to the shown username when the href is an
  ActivityPub URI): the bot's own mention, matched by account id, is
  removed; any other is written as `@acct`;
* what is not content is left out: comments, `<script>` and `<style>`, and
  the document's `<head>` (a mail's `<title>` and meta tags).

Markup of any depth is walked with an explicit stack, in time linear in its
size.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from bs4 import BeautifulSoup, NavigableString, PageElement, ParserRejectedMarkup, Tag

_BLOCKS = {
    *("p", "ul", "ol", "blockquote", "pre", "li", "h1", "h2", "h3", "h4", "h5", "h6", "div"),
    # Mail clients lay out with tables and rule off quoted history with <hr>.
    *("table", "tr", "hr"),
}
#: A table cell: separated from the next one on its row by a space.
_CELLS = {"td", "th"}
#: Not content: a mail's document head (its <title>, meta tags). <script> and <style> text is
#: never written anyway (bs4 gives it its own string types).
_SKIPPED = {"head", "title"}
#: Line breaks in the HTML source, outside <pre>: whitespace like any other.
_SOURCE_BREAKS = str.maketrans("\r\n\f", "   ")


def html_to_text(content: str, mentions: Iterable[Mapping[str, Any]] = (), own_account_id: str | None = None) -> str:
    """`content` (HTML) as plain text; never raises on any markup, however deep.

    `mentions` and `own_account_id` are a Mastodon status's: without them a
    mention link is written as its text."""
    soup = _parse(content)
    out = _Writer()
    _walk(soup, out, _Mentions(mentions), str(own_account_id) if own_account_id is not None else None)
    return out.text()


def _parse(content: str) -> BeautifulSoup:
    try:
        return BeautifulSoup(content, "html.parser")
    except ParserRejectedMarkup:
        pass
    # Python's html.parser gives up on some broken declarations ("<![ x"):
    # read every "<!" as text; should even that fail, read all of it as text.
    try:
        return BeautifulSoup(content.replace("<!", "&lt;!"), "html.parser")
    except ParserRejectedMarkup:
        return BeautifulSoup(html.escape(content), "html.parser")


#: Quotes deeper than this are marked as this deep: all their text stays, and
#: a line of text can never turn into a page of `> > > …`.
MAX_QUOTE_DEPTH = 10


class _Quote:
    """One `<blockquote>`: blocks inside it are written with a `> ` per enclosing quote."""

    def __init__(self, parent: _Quote | None) -> None:
        self.parent = parent
        self.depth = parent.depth + 1 if parent else 1


def _depth(quote: _Quote | None) -> int:
    return quote.depth if quote else 0


def _common_depth(a: _Quote | None, b: _Quote | None) -> int:
    """How many quotes enclose both blocks. Walking up costs at most the
    quotes opened or closed between two consecutive blocks, so the whole
    text costs no more than the number of quotes in it."""
    while _depth(a) > _depth(b):
        a = a.parent if a else None
    while _depth(b) > _depth(a):
        b = b.parent if b else None
    while a is not b:
        a = a.parent if a else None
        b = b.parent if b else None
    return _depth(a)


def _quoted(line: str, depth: int) -> str:
    marks = "> " * min(depth, MAX_QUOTE_DEPTH)
    return marks + line if line else marks.rstrip()


class _Writer:
    """Collects text with block structure: paragraphs, line breaks and quotes.

    A block remembers the quote it is in; `text` marks each line with one
    `> ` per enclosing quote, and the blank line between two blocks with the
    quotes they share.
    """

    def __init__(self) -> None:
        self.blocks: list[tuple[_Quote | None, str]] = []
        self.current: list[str] = []
        self.quote: _Quote | None = None

    def write(self, text: str) -> None:
        self.current.append(text)

    def line_break(self) -> None:
        self.current.append("\n")

    def end_block(self) -> None:
        block = "".join(self.current)
        self.current = []
        # Whitespace around lines is layout, not content (a removed mention leaves some).
        lines = [re.sub(r"[ \t]+", " ", line).strip() for line in block.split("\n")]
        block = "\n".join(lines).strip("\n")
        if block:
            self.blocks.append((self.quote, block))

    def open_quote(self) -> None:
        self.end_block()
        self.quote = _Quote(self.quote)

    def close_quote(self) -> None:
        self.end_block()
        self.quote = self.quote.parent if self.quote else None

    def text(self) -> str:
        self.end_block()
        lines: list[str] = []
        previous: _Quote | None = None
        for number, (quote, block) in enumerate(self.blocks):
            if number:
                lines.append(_quoted("", _common_depth(previous, quote)))
            depth = _depth(quote)
            lines.extend(_quoted(line, depth) for line in block.split("\n"))
            previous = quote
        return "\n".join(lines)


def _classes(tag: Tag) -> set[str]:
    value = tag.get("class") or []
    return set(value.split() if isinstance(value, str) else value)


def _walk(root: Tag, out: _Writer, mentions: _Mentions, own_id: str | None) -> None:
    # An explicit stack, not recursion: remote servers send HTML nested
    # thousands of levels deep, and Python's recursion limit would skip the DM.
    # Each entry: the children still to visit, and what to do once they are.
    stack: list[tuple[Iterator[PageElement], Callable[[], None] | None]] = [(iter(root.children), None)]
    preformatted = 0  # how many <pre> enclose the current element

    def end_pre() -> None:
        nonlocal preformatted
        preformatted -= 1
        out.end_block()

    while stack:
        children, when_done = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if when_done is not None:
                when_done()
            continue
        if isinstance(child, NavigableString):
            if type(child) is NavigableString:  # not a comment, doctype, CDATA, script, style
                # A line break in the source is a space, as a browser shows it (mail HTML is
                # wrapped at 76 characters), except in <pre>.
                out.write(str(child) if preformatted else str(child).translate(_SOURCE_BREAKS))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name
        if name in _SKIPPED:
            continue
        if name == "br":
            out.line_break()
        elif name == "a":
            _write_link(child, out, mentions, own_id)
        elif name == "blockquote":
            out.open_quote()
            stack.append((iter(child.children), out.close_quote))
        elif name == "pre":
            out.end_block()
            preformatted += 1
            stack.append((iter(child.children), end_pre))
        elif name in _BLOCKS:
            out.end_block()
            if name == "li":
                out.write("- ")
            stack.append((iter(child.children), out.end_block))
        elif name in _CELLS:
            stack.append((iter(child.children), lambda: out.write(" ")))
        else:
            stack.append((iter(child.children), None))


def _write_link(link: Tag, out: _Writer, mentions: _Mentions, own_id: str | None) -> None:
    classes = _classes(link)
    href = str(link.get("href") or "")
    shown = link.get_text()
    if "mention" in classes and "hashtag" not in classes:
        mention = mentions.find(href, shown)
        if mention is not None:
            if own_id is not None and str(mention.get("id")) == own_id:
                return
            out.write("@" + str(mention.get("acct")))
            return
        out.write(shown)
        return
    if "hashtag" in classes or not href:
        out.write(shown)
        return
    visible = "".join(
        str(s)
        for s in link.find_all(string=True)
        if not (isinstance(s.parent, Tag) and "invisible" in _classes(s.parent))
    ).strip()
    if not visible or _same_link(visible, href):
        out.write(href)
    else:
        out.write(f"{shown.strip()} ({href})")


def _same_link(visible: str, href: str) -> bool:
    bare = re.sub(r"^[a-z][a-z0-9+.-]*://", "", href, flags=re.IGNORECASE)
    visible = visible.rstrip("…").strip()
    return href.startswith(visible) or bare.startswith(visible)


class _Mentions:
    """The status's `mentions`, indexed once: a status may carry thousands of
    mention links, each looked up here."""

    def __init__(self, mentions: Iterable[Mapping[str, Any]]) -> None:
        self.by_url: dict[str, Mapping[str, Any]] = {}
        self.by_username: dict[str, list[Mapping[str, Any]]] = {}
        for mention in mentions:
            url = mention.get("url")
            if isinstance(url, str) and url:
                self.by_url.setdefault(url, mention)
            self.by_username.setdefault(str(mention.get("username", "")).lower(), []).append(mention)

    def find(self, href: str, shown: str) -> Mapping[str, Any] | None:
        if href in self.by_url:
            return self.by_url[href]
        # Some servers link the ActivityPub URI instead of the profile page: fall
        # back to the username shown, but only when it names exactly one mention.
        username = shown.strip().lstrip("@").split("@")[0].lower()
        candidates = self.by_username.get(username, [])
        return candidates[0] if len(candidates) == 1 else None
