"""HTML as the plain text a support case stores: Mastodon statuses and HTML-only mail.

One converter for every channel that receives HTML. It reads markup with a
real HTML parser, Python's `html.parser`, and writes text as the parser's
events arrive (a tag opened, a tag closed, text), with no document tree and
never with regular expressions over markup:

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
* what is not content is left out: comments, `<script>` and `<style>` (and
  `<template>`, ruby `<rt>`/`<rp>`), and the document's `<head>` (a mail's
  `<title>` and meta tags).

Markup need not be balanced: an end tag closes the nearest open element of
its name and every element opened inside it since; an end tag that matches
no open element is ignored; void elements (`<br>`, `<img>`, …) are never
open; what is still open at the end is closed there, so a link left open
takes the text up to the end of its enclosing element, or of the markup.
Markup of any depth is followed with an explicit stack of open elements,
never recursion, in time linear in its size. A tag, comment or declaration
left unfinished, with more than `_UNFINISHED` characters after it, ends the
markup there, as the end of input does in HTML5 (see `_Converter.convert`).
Character references are decoded as HTML5 says (an unknown `&name;` stays as
written); markup `html.parser` rejects (a broken declaration such as `<![ x`)
is read again with its `<!` as text.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from typing import Any

log = logging.getLogger("deskbot.adapters.html")

_BLOCKS = {
    *("p", "ul", "ol", "blockquote", "pre", "li", "h1", "h2", "h3", "h4", "h5", "h6", "div"),
    # Mail clients lay out with tables and rule off quoted history with <hr>.
    *("table", "tr", "hr"),
}
#: A table cell: separated from the next one on its row by a space.
_CELLS = {"td", "th"}
#: Not content: a mail's document head (its <title>, meta tags), skipped with all inside them.
_SKIPPED = {"head", "title"}
#: Elements whose text is not content, however deep in them (html.parser hands over <script> and
#: <style> text like any other); the markup inside them is still followed.
_NOT_TEXT = {"script", "style", "template", "rt", "rp"}
#: Void elements: never open, whatever follows them; an end tag of theirs is ignored.
_VOID = {
    *("area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "menuitem", "meta"),
    *("param", "source", "track", "wbr", "basefont", "bgsound", "command", "frame", "image", "isindex"),
    *("nextid", "spacer"),
}
#: Line breaks in the HTML source, outside <pre>: whitespace like any other.
_SOURCE_BREAKS = str.maketrans("\r\n\f", "   ")
#: Runs of blanks in a line of text: one space.
_BLANKS = re.compile(r"[ \t]+")
#: The most markup left to `html.parser`'s end of input after a construct it found unfinished
#: (`_Converter.convert`): about 10 ms of its quadratic retries at worst.
_UNFINISHED = 1024
#: Characters and tags of HTML a channel converts of one message (`bounded`): it comes from anyone
#: (a mail's sender, a remote Mastodon server), and is read on the thread that receives every other
#: message. The converter's time grows with the tags (html.parser takes some microseconds for each:
#: a MiB of `<b>`, 350,000 of them, took 1-5 s), its memory with the tags left open. A person's HTML
#: has a tag in every 15 to 30 characters (in tests/email/corpus: Gmail's 19, Outlook's 24 to 28; a
#: Mastodon status's paragraphs, links and mentions, more): MAX_HTML_TAGS of it are 750 KB or more,
#: far over any message a person writes, and a longer message's text is in its start. At worst
#: (tags by the 50,000, nested or not, quotes) about 0.5 s and 20 MB.
MAX_HTML = 2**20
MAX_HTML_TAGS = 50_000


def bounded(html: str, limit: int = MAX_HTML, tags: int = MAX_HTML_TAGS) -> str:
    """At most `limit` characters of `html` and `tags` tags (each "<" counts), cut before a tag: what
    a channel hands `html_to_text` of a message from outside (see MAX_HTML). Never raises; what is
    cut is logged, the text before it kept."""
    if len(html) > limit:
        log.info("HTML of %d characters: only the first %d are read", len(html), limit)
        cut = html.rfind("<", 0, limit)
        html = html[: cut if cut > 0 else limit]
    if html.count("<") > tags:
        log.info("HTML of more than %d tags: only the first %d are read", tags, tags)
        beyond = html.split("<", tags + 1)[-1]  # what follows the "<" of the first tag not read
        html = html[: len(html) - len(beyond) - 1]
    return html


def html_to_text(content: str, mentions: Iterable[Mapping[str, Any]] = (), own_account_id: str | None = None) -> str:
    """`content` (HTML) as plain text; never raises on any markup, however deep. It reads all of
    `content`, in time linear in its size: a channel bounds what it hands over (`bounded`).

    `mentions` and `own_account_id` are a Mastodon status's: without them a
    mention link is written as its text."""
    index = _Mentions(mentions)
    own_id = str(own_account_id) if own_account_id is not None else None
    # Python's html.parser gives up on some broken declarations ("<![ x" raises AssertionError):
    # read every "<!" as text; should even that fail, read all of it as text (no "<" is left
    # for the parser to reject). Each attempt starts over, with nothing of the one before.
    # Anything else raised is a fault of this module: logged, and the text still kept, since
    # the message it is part of would otherwise be skipped.
    for attempt in (content, content.replace("<!", "&lt;!")):
        try:
            return _Converter(index, own_id).convert(attempt)
        except AssertionError:
            continue
        except Exception:
            log.exception("HTML could not be converted; its markup is kept as text")
            break
    return _Converter(index, own_id).convert(html.escape(content))


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
        if not self.current:
            return  # nothing written since the last block ended (`<p>` after `</p>`, `<div><div>` …)
        block = "".join(self.current)
        self.current = []
        # Whitespace around lines is layout, not content (a removed mention leaves some).
        lines = [_BLANKS.sub(" ", line).strip() for line in block.split("\n")]
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
            if quote is None:  # no quote: the block as it is, after a blank line
                if number:
                    lines.append("")
                lines.append(block)
                previous = None
                continue
            if number:
                lines.append(_quoted("", _common_depth(previous, quote)))
            depth = _depth(quote)
            lines.extend(_quoted(line, depth) for line in block.split("\n"))
            previous = quote
        return "\n".join(lines)


def _classes(attrs: list[tuple[str, str | None]]) -> list[str]:
    value = None
    for name, attr_value in attrs:
        if name == "class":
            value = attr_value  # the last one counts, as in a browser's DOM
    return value.split() if value else []


# What closing an element does (the second item of an open element on the stack).
_NOTHING, _END_BLOCK, _CLOSE_QUOTE, _END_CELL, _END_LINK, _END_SKIPPED = range(6)
# What an open element is (the third item, bits).
_PRE, _NOT_TEXT_BIT, _INVISIBLE = 1, 2, 4


class _Link:
    """An `<a>` being read: its text is kept until its end tag (or whatever closes it)."""

    __slots__ = ("classes", "href", "shown", "visible")

    def __init__(self, classes: list[str], href: str) -> None:
        self.classes = classes
        self.href = href
        self.shown: list[str] = []  # all its text
        self.visible: list[str] = []  # its text outside elements of class "invisible"


class _Converter(HTMLParser):
    """Writes text as html.parser reports tags and text, keeping the open elements on a stack.

    No recursion, no tree: each event costs constant time, but for an end tag,
    which closes the elements opened since its own (each element is closed once)."""

    def __init__(self, mentions: _Mentions, own_id: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.out = _Writer()
        self.mentions = mentions
        self.own_id = own_id
        #: The open elements, innermost last: (name, what closing it does, what it is).
        self.stack: list[tuple[str, int, int]] = []
        #: How many elements of each name are open: an end tag nothing matches costs nothing.
        self.open_names: dict[str, int] = {}
        self.preformatted = 0  # open <pre> elements
        self.not_text = 0  # open elements whose text is not content (_NOT_TEXT)
        self.skipped = 0  # open <head>/<title> outside a link: nothing in them is written
        self.link: _Link | None = None  # the <a> whose text is being read

    def convert(self, content: str) -> str:
        self.feed(content)
        # `feed` stops at the first tag, comment or declaration that nothing after it finishes
        # (`<a href="x` whose quote never closes, `</b` with no ">", `<!--` with no "-->") and keeps
        # the rest. At the end of input `close` reads that construct as text up to the next ">" and
        # tries again at every "<" after it, each time to the end: quadratic, cubic in some shapes
        # (64 KiB of `<a '` took 46 s, and an HTML mail is read up to a MiB). HTML5 ends the markup at
        # an unfinished tag or comment, nothing after it read, and so does `html.parser` from Python
        # 3.11.14, 3.12.12 and 3.13.6 (CVE-2025-6069); a short rest is still left to `close`.
        rest = self.rawdata  # html.parser's unread input
        if not (rest.startswith("<") and len(rest) > _UNFINISHED):
            self.close()
        while self.stack:  # what is still open ends with the markup
            self._pop()
        return self.out.text()

    # -- html.parser's events -----------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            if self.link is None and not self.skipped:
                if tag == "br":
                    self.out.line_break()
                elif tag == "hr":
                    self.out.end_block()
            return
        self._push(tag, attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <p/>, <a href="…"/>: an element opened and closed at once.
        if tag in _VOID:
            self.handle_starttag(tag, attrs)
        else:
            self._push(tag, attrs)
            self._pop()

    def handle_endtag(self, tag: str) -> None:
        if not self.open_names.get(tag):
            return  # nothing open of that name: a stray end tag
        while self._pop() != tag:
            pass  # elements left open inside it end with it

    def handle_data(self, data: str) -> None:
        if self.not_text or self.skipped:
            return
        if not self.preformatted:
            # A line break in the source is a space, as a browser shows it (mail HTML is
            # wrapped at 76 characters), except in <pre>.
            data = data.translate(_SOURCE_BREAKS)
        if self.link is None:
            self.out.write(data)
        else:
            self._link_text(data)

    def unknown_decl(self, data: str) -> None:
        # A CDATA section is foreign to HTML and left out, but in a link it counts as its text.
        if self.link is not None and data[:6].upper() == "CDATA[":
            self._link_text(data[6:] if self.preformatted else data[6:].translate(_SOURCE_BREAKS))

    # Comments, doctypes and processing instructions: html.parser's handlers, which do nothing.

    def _link_text(self, text: str) -> None:
        link = self.link
        if link is not None:
            link.shown.append(text)
            if not self.stack[-1][2] & _INVISIBLE:  # in an element of class "invisible": not shown
                link.visible.append(text)

    # -- the open elements ----------------------------------------------------------------------

    def _push(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind = 0
        if tag == "pre":
            kind = _PRE
            self.preformatted += 1
        elif tag in _NOT_TEXT:
            kind = _NOT_TEXT_BIT
            self.not_text += 1
        action = _NOTHING
        out = self.out
        if self.link is not None:
            if attrs and "invisible" in _classes(attrs):
                kind |= _INVISIBLE
        elif self.skipped:
            pass
        elif tag == "a":
            classes = _classes(attrs)
            href = ""
            for name, value in attrs:
                if name == "href":
                    href = value or ""
            self.link = _Link(classes, href)
            action = _END_LINK
            if "invisible" in classes:
                kind |= _INVISIBLE
        elif tag in _SKIPPED:
            self.skipped += 1
            action = _END_SKIPPED
        elif tag == "blockquote":
            out.open_quote()
            action = _CLOSE_QUOTE
        elif tag in _BLOCKS:
            out.end_block()
            if tag == "li":
                out.write("- ")
            action = _END_BLOCK
        elif tag in _CELLS:
            action = _END_CELL
        self.stack.append((tag, action, kind))
        self.open_names[tag] = self.open_names.get(tag, 0) + 1

    def _pop(self) -> str:
        """Closes the innermost open element; its name."""
        tag, action, kind = self.stack.pop()
        self.open_names[tag] -= 1
        if kind & _PRE:
            self.preformatted -= 1
        elif kind & _NOT_TEXT_BIT:
            self.not_text -= 1
        if action == _NOTHING:
            pass
        elif action == _END_BLOCK:
            self.out.end_block()
        elif action == _CLOSE_QUOTE:
            self.out.close_quote()
        elif action == _END_CELL:
            self.out.write(" ")
        elif action == _END_LINK:
            self._write_link()
        else:  # _END_SKIPPED
            self.skipped -= 1
        return tag

    def _write_link(self) -> None:
        link, self.link = self.link, None
        if link is None:
            return
        out = self.out
        href = link.href
        shown = "".join(link.shown)
        # A mention link; or, from a server that does not mark mentions with the class, a link to
        # the very profile page of an account the status mentions (`@deskbot status` from such a
        # server would otherwise keep the bot's name, and the command would be lost).
        if ("mention" in link.classes or href in self.mentions.by_url) and "hashtag" not in link.classes:
            mention = self.mentions.find(href, shown)
            if mention is not None:
                if self.own_id is not None and str(mention.get("id")) == self.own_id:
                    return
                out.write("@" + str(mention.get("acct")))
                return
            out.write(shown)
            return
        if "hashtag" in link.classes or not href:
            out.write(shown)
            return
        visible = "".join(link.visible).strip()
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
