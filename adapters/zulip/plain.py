"""An engineer's words written in Zulip, as the customer reads them (SPEC §2: customers never see
the bot's internal references or markup meant for Zulip).

Engineers answer in Zulip's markup, and some of it points into the organisation:

* links to a channel, a topic or a message: `#**support>#12 Acme: VPN**` (with `@message-id`),
  `#**support**`, and Markdown links or bare addresses to the web app's views (`#narrow/…`,
  `/#narrow/…`, `https://chat.example/#narrow/…`: Zulip writes `[#support > topic](#narrow/…)`
  for a topic whose name its short form cannot hold, and "quote and reply" puts one before a quote);
* mentions of people and groups (`@**Erin Engineer|12**`, `@_**Ana**`, `@*support*`, `@_*support*`):
  these are written as the name alone (an engineer's name is no secret), a wildcard (`@**all**`) not
  at all.

The links' words are names inside the organisation: the private support stream, and other customers'
topics, named after those customers and their subjects. A customer can open none of them. So each
goes with its words, on every channel (Zulip included): never shown as text. Topic names are
customers' subjects and may hold `*`, `>`, `[`, `]`, `)` or backticks, so these are parsed by hand
(`_internal_link_start`, `_double_star_end`), and where Zulip's syntax leaves a link's end in
doubt, the longer reading goes: a few of the engineer's words lost beat a name shown.

Off Zulip (`on_zulip` False) the customer reads plain text (email goes as text/plain), so the rest
of Zulip's Markdown is parsed (markdown-it, set to Zulip's dialect) and written plainly:
emphasis, `~~struck~~` words and code without their marks (Zulip reads `_x_` as the word with
its underscores, as in snake_case), code blocks indented, quotes and quote blocks as "> " lines,
lists kept, a table's rows with " | " between cells, a link as its words and address, a time its
ISO form, TeX its source, a spoiler its title and text, and an emoji name (Zulip's picker writes
`:smile:`) as the character (names Zulip shares with the common emoji sets; another, such as an
organisation's own emoji, stays as written).

Pure: the server's address comes from the caller.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.rules_inline import StateInline
    from markdown_it.tree import SyntaxTreeNode

#: Where a link into the organisation was (a character no Zulip message has: see `_without_gone`).
_GONE = "\x00"
#: The start of a channel, topic or message link (`#**`) or of a mention (`@**`, silent `@_**`):
#: where it ends is `_double_star_end`'s to find.
_DOUBLE_STAR = re.compile(r"#\*\*|@_?\*\*")
_STARS = re.compile(r"\*\*")
#: The words Zulip gives a link to a topic whose name its short form cannot hold.
_ZULIPS_WORDS = re.compile(r"\[#[^\n]*? > ")
#: A link's address after its `(`: spaces, `<`, the address (with one level of parentheses), `>`.
_ADDRESS = re.compile(r"[ \t]*<?((?:[^\s()<>]|\([^\s()]*\))*)>?")
_GROUP_MENTION = re.compile(r"@_?\*[^*\n]+\*")
#: Mentions of everyone in a channel or topic (Zulip's wildcards), not of a person.
_WILDCARDS = frozenset({"all", "everyone", "channel", "stream", "topic"})
_INLINE_MATH = re.compile(r"\$\$([^\n$](?:\\\$|[^$\n])*)\$\$")
_TIME = re.compile(r"<time:([^>\n]{1,100})>")
#: A code span on one line, and what stands for a `|` in one while a table is parsed (Zulip's
#: tables, unlike CommonMark's, do not split a cell at a `|` inside backticks).
_CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_PIPE = "\ue000"
#: Quote and spoiler blocks inside each other, at most (Zulip's quote and reply nests one a time).
_DEEPEST = 8
#: `:name:` standing alone: not the middle of "a:b:c" or "10:30:45".
_EMOJI = re.compile(r"(?<![\w:]):([a-z0-9_+\-]{1,60}):(?![\w:])")
#: Names Zulip gives emoji that the common sets (`emoji`'s aliases) spell otherwise.
_ZULIP_EMOJI = {
    "slight_smile": "🙂",
    "big_smile": "😄",
    "check": "✅",
    "working_on_it": "🛠️",
    "upside_down": "🙃",
    "thumbs_down": "👎",
}


def for_customer(text: str, site: str, *, on_zulip: bool) -> str:
    """`text` as the customer reads it: without links into the organisation at `site` (the
    server's URL, or "" when unknown: then only relative links are known as the organisation's);
    off Zulip (`on_zulip` False), as plain text."""
    text = _without_gone(_without_organisation_links(text.replace(_GONE, ""), site))
    # Off Zulip, code at the start keeps its indent: only blank lines go.
    return text.strip() if on_zulip else _plain(text).lstrip("\n").rstrip()


# -- links into the organisation ---------------------------------------------------------------


def _without_organisation_links(text: str, site: str) -> str:
    """`text` with `_GONE` for each link into the organisation, its words with it."""
    text = _without_internal_links(text, site)
    position = 0
    while (opener := _DOUBLE_STAR.search(text, position)) is not None:
        end = _double_star_end(text, opener.start(), opener.end())
        said = _GONE if opener.group().startswith("#") else _mentioned(text[opener.end() : end])
        text = text[: opener.start()] + said + text[end:]
        position = opener.start() + len(said)
    text = _GROUP_MENTION.sub(lambda found: _mentioned(found.group()[found.group().index("*") + 1 :]), text)
    return _bare_internal_addresses(site).sub(lambda found: _unless_elsewhere(found, site), text)


def _mentioned(name: str) -> str:
    """A mention as the customer reads it: the person's or group's name ("thanks to Erin Engineer",
    as in a signature: engineers' names are no secret), without Zulip's `|id` and marks; a
    wildcard (`@**all**`, `@**topic**` …) says nothing to a customer and goes."""
    name = name.removesuffix("**").removesuffix("*").split("|", 1)[0].strip()
    return _GONE if not name or name.lower() in _WILDCARDS else name


def _without_internal_links(text: str, site: str) -> str:
    """`text` with each Markdown link or image to an address inside the organisation gone."""
    position = 0
    while (bracket := text.find("](", position)) != -1:
        address, end = _destination(text, bracket + 2)
        if _internal(address, site):
            start = _internal_link_start(text, bracket)
            text = text[:start] + _GONE + text[end:]
            position = start + 1
        else:
            position = bracket + 2
    return text


def _destination(text: str, start: int) -> tuple[str, int]:
    """The address of a link whose `(` ends just before `start`, and where the link ends: at its
    `)` (a pair of parentheses inside the address kept, as CommonMark has it), or, where the
    address stops at a space (a title, or a hand-written address Zulip's renderer still takes),
    at the next `)` on the line."""
    found = _ADDRESS.match(text, start)
    assert found is not None  # every part of the pattern may be empty
    if text.startswith(")", found.end()):
        return found.group(1), found.end() + 1
    close = text.find(")", found.end(), _line_end(text, found.end()))
    return found.group(1), close + 1 if close != -1 else found.end()


def _internal(address: str, site: str) -> bool:
    """Whether `address` is a view of the organisation's web app: relative (`#narrow/…`,
    `/#narrow/…`), or the site's own page with a fragment (any scheme: a pasted address)."""
    if address.startswith(("#", "/#")):
        return True
    try:
        parts, ours = urlsplit(address), urlsplit(site)
    except ValueError:  # a malformed address (an unclosed "[" in its host) is nobody's
        return False
    return (
        bool(site and parts.fragment)
        and parts.netloc.lower() == ours.netloc.lower()
        and parts.path in ("", "/")
        and parts.scheme in ("http", "https")
    )


def _internal_link_start(text: str, bracket: int) -> int:
    """Where the words of the link whose `](` is at `bracket` start (an image's `!` included).
    A topic name in them may hold brackets of its own, so: the earliest `[` still open at
    `bracket` since the line's last link (or its start); with none open (a `]` too many), the
    first `[` since then; with no `[` at all, right there. And where Zulip's "[#channel > "
    stands before that (since the last link removed: what looks like a link before it may be
    the topic's name), from there."""
    line_start = text.rfind("\n", 0, bracket) + 1
    since = unseen = max(line_start, text.rfind(_GONE, 0, bracket) + 1)
    opened: list[int] = []
    at = since
    while at < bracket:
        char = text[at]
        if char == "]" and text.startswith("(", at + 1) and (end := _destination(text, at + 2)[1]) <= bracket:
            since, opened, at = end, [], end  # an earlier link: what stands before it is not these words
            continue
        if char == "[":
            opened.append(at)
        elif char == "]" and opened:
            opened.pop()
        at += 1
    first = text.find("[", since, bracket)
    start = opened[0] if opened else first if first != -1 else since
    zulips = _ZULIPS_WORDS.search(text, unseen, bracket)
    start = min(start, zulips.start()) if zulips else start
    return start - 1 if start > line_start and text[start - 1] == "!" else start


def _double_star_end(text: str, opener: int, content: int) -> int:
    """Where the `#**…**` link or `@**…**` mention that starts at `opener` (its name at `content`)
    ends. Zulip's names hold no `*`, but a topic named after a customer's subject may ("glob
    *.log"), so the name ends at the first `**` on the line that looks like a closing one (after a
    non-space, not glued to a word) and leaves the line's other `**` in pairs (bold); failing
    that, at the line's last `**`; with none, at the end of the line."""
    line_start = text.rfind("\n", 0, opener) + 1
    line_end = _line_end(text, content)
    stars = text.count("**", line_start, opener) + text.count("**", content, line_end)
    last = None
    for count, found in enumerate(_STARS.finditer(text, content, line_end), 1):
        at = last = found.start()
        pairs_left = (stars - count) % 2 == 0
        glued = re.match(r"[\w*]", text[at + 2 : at + 3]) is not None
        if pairs_left and at > content and not text[at - 1].isspace() and not glued:
            return at + 2
    return line_end if last is None else last + 2


@functools.cache
def _bare_internal_addresses(site: str) -> re.Pattern[str]:
    """An address of the organisation's web app written out: the site's own page with a fragment
    (with or without a scheme, in `<…>` or not), or a `#narrow/…` one wherever it stands (but in
    an address of another server: `_unless_elsewhere`); not the punctuation after it."""
    host = urlsplit(site).netloc if site else ""
    ours = rf"(?<![\w.\-])(?:https?://)?{re.escape(host)}/?#|" if host else ""
    return re.compile(rf"<?(?:{ours}(?P<narrow>[^\s<>()\[\]]*#narrow/))\S*?>?(?=[.,;:!?)\]]*(?:\s|\Z))", re.I)


def _unless_elsewhere(found: re.Match[str], site: str) -> str:
    """`_GONE` for an address of the organisation; another Zulip server's (a public one) stays."""
    server = re.search(r"://([^/#?\s]+)", found.group("narrow") or "")
    elsewhere = server is not None and server.group(1).lower() != urlsplit(site).netloc.lower()
    return found.group(0) if elsewhere else _GONE


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end == -1 else end


def _without_gone(text: str) -> str:
    """`text` where each removed link (`_GONE`) was, with the spaces around it: a line left with
    nothing but punctuation goes ("@**Ana** [said](…):" before a quote), and elsewhere nothing
    stays at the start or end of a line or before punctuation, one space between words."""
    text = re.sub(rf"^[ \t]*{_GONE}[{_GONE} \t,.;:!?]*(?:\n|\Z)", "", text, flags=re.M)
    text = re.sub(rf"^[ \t]*{_GONE}[{_GONE} \t]*|[ \t]*{_GONE}[{_GONE} \t]*(?=[,.;:!?)]|$)", "", text, flags=re.M)
    return re.sub(rf"[ \t]*{_GONE}[{_GONE} \t]*", " ", text)


# -- Zulip's Markdown as plain text ------------------------------------------------------------


@functools.cache
def _parser() -> MarkdownIt:
    """CommonMark with Zulip's tables and `~~strikethrough~~`, without what Zulip's renderer
    leaves out (backslash escapes, underlined headings, reference links, raw HTML: there the
    characters are text), and with its `$$TeX$$` and `<time:…>`."""
    from markdown_it import MarkdownIt  # 30 ms: loaded with the first reply to a customer elsewhere

    parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    parser.disable(["escape", "lheading", "reference"])
    parser.inline.ruler.before("backticks", "zulip_tex", _inline_tex)
    parser.inline.ruler.before("autolink", "zulip_time", _time)
    return parser


def _inline_tex(state: StateInline, silent: bool) -> bool:
    """`$$TeX$$`: its source, as code (no emphasis or emoji inside)."""
    return _inline_token(state, silent, _INLINE_MATH, "code_inline")


def _time(state: StateInline, silent: bool) -> bool:
    """`<time:2026-12-07T10:00:00+00:00>`: the ISO time (not an autolink with the scheme "time")."""
    return _inline_token(state, silent, _TIME, "zulip_time")


def _inline_token(state: StateInline, silent: bool, pattern: re.Pattern[str], kind: str) -> bool:
    found = pattern.match(state.src, state.pos, state.posMax)
    if found is None:
        return False
    if not silent:
        state.push(kind, "", 0).content = found.group(1)
    state.pos = found.end()
    return True


def _plain(text: str, depth: int = 0) -> str:
    """`text` as plain text; `depth` counts the quote and spoiler blocks it stands in."""
    from markdown_it.tree import SyntaxTreeNode

    text = _CODE_SPAN.sub(lambda span: span.group(0).replace("|", _PIPE), text)
    return _blocks(SyntaxTreeNode(_parser().parse(text)).children, depth).replace(_PIPE, "|")


def _blocks(nodes: list[SyntaxTreeNode], depth: int, *, tight: bool = False) -> str:
    return ("\n" if tight else "\n\n").join(_block(node, depth) for node in nodes)


def _block(node: SyntaxTreeNode, depth: int) -> str:
    if node.type in ("paragraph", "heading"):
        return _inline(node.children[0])
    if node.type == "blockquote":
        return _quoted(_blocks(node.children, depth))
    if node.type in ("bullet_list", "ordered_list"):
        return _list(node, depth)
    if node.type == "fence":
        return _fence(node, depth)
    if node.type == "code_block":
        return _indented(node.content)
    if node.type == "table":
        rows = [row for part in node.children for row in part.children]
        return "\n".join(
            " | ".join(_inline(cell.children[0]) if cell.children else "" for cell in row.children) for row in rows
        )
    if node.type == "hr":
        return "---"
    return node.content


def _list(node: SyntaxTreeNode, depth: int) -> str:
    """Each item after its marker ("-", "1." as written), its further lines indented under it."""
    tight = any(child.hidden for item in node.children for child in item.children)
    items = []
    for item in node.children:
        marker = f"{item.info}{item.markup}" if node.type == "ordered_list" else item.markup
        first, *rest = _blocks(item.children, depth, tight=tight).split("\n")
        indent = " " * (len(marker) + 1)
        items.append("\n".join([f"{marker} {first}".rstrip(), *(indent + line if line else "" for line in rest)]))
    return ("\n" if tight else "\n\n").join(items)


def _fence(node: SyntaxTreeNode, depth: int) -> str:
    """Zulip's quote and spoiler blocks hold Markdown (so deep in each other, code); any other
    fence (a language's, `math`) code."""
    kind, _, title = node.info.strip().partition(" ")
    if kind.lower() == "quote" and depth < _DEEPEST:
        return _quoted(_plain(node.content, depth + 1))
    if kind.lower() == "spoiler" and depth < _DEEPEST:
        title, body = _plain(title, depth + 1), _plain(node.content, depth + 1)
        return f"{title}:\n{body}" if title else body
    return _indented(node.content)


def _quoted(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def _indented(code: str) -> str:
    return "\n".join("    " + line if line.strip() else "" for line in code.rstrip("\n").split("\n"))


def _inline(node: SyntaxTreeNode) -> str:
    return "".join(_piece(child) for child in node.children)


def _piece(node: SyntaxTreeNode) -> str:
    if node.type == "text":
        return _EMOJI.sub(_emoji, node.content)
    if node.type in ("softbreak", "hardbreak"):
        return "\n"
    if node.type in ("code_inline", "zulip_time", "html_inline"):
        return node.content
    words = _inline(node)
    if node.type in ("em", "strong"):
        # Zulip's emphasis is `*` only: `_x_` and `__init__` are the words with their underscores.
        return f"{node.markup}{words}{node.markup}" if node.markup.startswith("_") else words
    if node.type in ("link", "image"):
        address = _parser().normalizeLinkText(str(node.attrs["href" if node.type == "link" else "src"]))
        return words if node.markup == "autolink" or words == address else f"{words} ({address})".lstrip()
    return words


def _emoji(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _ZULIP_EMOJI:
        return _ZULIP_EMOJI[name]
    import emoji  # 22 ms and a few MB: loaded with the first emoji an engineer writes, not at start

    found = emoji.emojize(f":{name}:", language="alias")
    return found if found != f":{name}:" else match.group(0)
