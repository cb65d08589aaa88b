"""A status's HTML as the plain text a support case stores.

Mastodon sends sanitised HTML (`<p>`, `<br>`, `<a>`, `<span>`, and since 4.2
lists, quotes, code). This walks it with a real HTML parser (BeautifulSoup
over `html.parser`), never with regular expressions over markup:

* paragraphs become blank-line separated, `<br>` a line break;
* a link becomes its URL (Mastodon shortens the visible text with
  `invisible`/`ellipsis` spans); a link whose text says something else keeps
  both, as `text (url)`;
* a mention is looked up in the status's `mentions` list by its `href`
  (falling back to the shown username when the href is an ActivityPub URI):
  the bot's own mention, matched by account id, is removed; any other is
  written as `@acct`;
* media attachments are appended, one URL a line (`remote_url` where `url`
  is missing, as for remote media not cached yet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from bs4 import BeautifulSoup, NavigableString, Tag

_BLOCKS = {"p", "ul", "ol", "blockquote", "pre", "li", "h1", "h2", "h3", "h4", "h5", "h6", "div"}


def status_to_text(status: Mapping[str, Any], own_account_id: str | None) -> str:
    """The status's content and media as plain text, without the bot's own mention."""
    text = html_to_text(status.get("content") or "", status.get("mentions") or [], own_account_id)
    media = list(media_urls(status.get("media_attachments") or []))
    if media:
        text = (text + "\n\n" if text else "") + "\n".join(media)
    return text


def media_urls(attachments: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    for attachment in attachments:
        url = attachment.get("url") or attachment.get("remote_url")
        if url:
            yield str(url)


def html_to_text(content: str, mentions: Iterable[Mapping[str, Any]], own_account_id: str | None) -> str:
    mentions = list(mentions)
    soup = BeautifulSoup(content, "html.parser")
    out = _Writer()
    _walk(soup, out, mentions, str(own_account_id) if own_account_id is not None else None)
    return out.text()


class _Writer:
    """Collects text with block structure: paragraphs and line breaks."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.current: list[str] = []

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
            self.blocks.append(block)

    def text(self) -> str:
        self.end_block()
        return "\n\n".join(self.blocks)


def _classes(tag: Tag) -> set[str]:
    value = tag.get("class") or []
    return set(value.split() if isinstance(value, str) else value)


def _walk(node: Tag, out: _Writer, mentions: list[Mapping[str, Any]], own_id: str | None) -> None:
    for child in node.children:
        if isinstance(child, NavigableString):
            if type(child) is NavigableString:  # not a comment, doctype, CDATA
                out.write(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name
        if name == "br":
            out.line_break()
        elif name == "a":
            _write_link(child, out, mentions, own_id)
        elif name in _BLOCKS:
            out.end_block()
            if name == "li":
                out.write("- ")
            if name == "blockquote":
                inner = _Writer()
                _walk(child, inner, mentions, own_id)
                quoted = inner.text()
                out.write("\n".join("> " + line if line else ">" for line in quoted.split("\n")))
            else:
                _walk(child, out, mentions, own_id)
            out.end_block()
        else:
            _walk(child, out, mentions, own_id)


def _write_link(link: Tag, out: _Writer, mentions: list[Mapping[str, Any]], own_id: str | None) -> None:
    classes = _classes(link)
    href = str(link.get("href") or "")
    shown = link.get_text()
    if "mention" in classes and "hashtag" not in classes:
        mention = _find_mention(href, shown, mentions)
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


def _find_mention(href: str, shown: str, mentions: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for mention in mentions:
        if href and href == mention.get("url"):
            return mention
    # Some servers link the ActivityPub URI instead of the profile page: fall
    # back to the username shown, but only when it names exactly one mention.
    username = shown.strip().lstrip("@").split("@")[0].lower()
    candidates = [m for m in mentions if str(m.get("username", "")).lower() == username]
    return candidates[0] if len(candidates) == 1 else None
