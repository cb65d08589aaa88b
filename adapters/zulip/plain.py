"""An engineer's words written in Zulip, as the customer reads them (SPEC §2: customers never see
the bot's internal references or markup meant for Zulip).

Engineers answer in Zulip's markup, and some of it means something only inside the organisation:

* links into it: `#**support>#12 Acme: VPN**` (a channel or a topic, by name) and the server's
  narrow URLs (`https://chat.example/#narrow/…`, which "quote and reply" puts before a quote).
  They name the private support stream and other customers' topics, and a customer cannot open
  them: they go, on every channel. A Markdown link to such a URL keeps its words ("said").
* mentions (`@**Erin Engineer**`, silent `@_**Erin Engineer|12**`, groups `@*support*`), emoji
  names (Zulip's picker writes `:smile:` into the text), `[words](url)`, `<time:…>`, spoiler and
  quote blocks: Zulip shows them; a customer on another channel reads plain text, so there a
  mention is the name, an emoji the character (names Zulip shares with the common emoji sets;
  another, such as an organisation's own emoji, stays as written), a link its words and address,
  a time its ISO form, a spoiler its title and text, a quote "> " lines.

Pure: the server's address comes from the caller.
"""

from __future__ import annotations

import re

#: Where a link into the organisation was (a character no text has: see `_without_gone`).
_GONE = "\x00"
#: `#**channel**` and `#**channel>topic**` (with `@message-id`): a link into the organisation.
_STREAM_LINK = re.compile(r"#\*\*[^*\n]{1,200}\*\*")
_MENTION = re.compile(r"@_?\*\*([^*|\n]{1,200})(?:\|\d{1,20})?\*\*")
_GROUP_MENTION = re.compile(r"@_?\*([^*\n]{1,200})\*")
_LINK = re.compile(r"\[([^\]\n]{1,500})\]\(([^)\s]{1,2000})\)")
_TIME = re.compile(r"<time:([^>\n]{1,100})>")
#: `:name:` standing alone: not the middle of "a:b:c" or "10:30:45".
_EMOJI = re.compile(r"(?<![\w:]):([a-z0-9_+\-]{1,60}):(?![\w:])")
#: A spoiler or quote block: its fence line (``` or ~~~, three or more), its body, its closing fence.
_BLOCK = re.compile(
    r"^(?P<fence>`{3,}|~{3,})(?P<kind>spoiler|quote)[ \t]*(?P<title>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.M | re.S,
)
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
    server's URL); off Zulip (`on_zulip` False), without Zulip's markup either."""
    text = _LINK.sub(lambda m: m.group(1) if _internal(m.group(2), site) else m.group(0), text)
    text = _without_gone(_narrow_urls(site).sub(_GONE, _STREAM_LINK.sub(_GONE, text)))
    if not on_zulip:
        text = _BLOCK.sub(_plain_block, text)
        text = _MENTION.sub(r"\1", text)
        text = _GROUP_MENTION.sub(r"\1", text)
        text = _LINK.sub(lambda m: m.group(2) if m.group(1) == m.group(2) else f"{m.group(1)} ({m.group(2)})", text)
        text = _TIME.sub(r"\1", text)
        text = _EMOJI.sub(_emoji, text)
    return text.strip()


def _without_gone(text: str) -> str:
    """`text` where each removed link (`_GONE`) was, with the spaces around it: nothing at the
    start or end of a line or before punctuation, one space between words."""
    text = re.sub(rf"^[ \t]*{_GONE}[{_GONE} \t]*|[ \t]*{_GONE}[{_GONE} \t]*(?=[,.;:!?)]|$)", "", text, flags=re.M)
    return re.sub(rf"[ \t]*{_GONE}[{_GONE} \t]*", " ", text)


def _internal(url: str, site: str) -> bool:
    return url.startswith(("#narrow/", "/#narrow/")) or _narrow_urls(site).fullmatch(url) is not None


def _narrow_urls(site: str) -> re.Pattern[str]:
    return re.compile(re.escape(site.rstrip("/")) + r"/#narrow/\S*", re.IGNORECASE)


def _plain_block(match: re.Match[str]) -> str:
    body = match.group("body").rstrip("\n")
    if match.group("kind") == "quote":
        return "\n".join("> " + line if line else ">" for line in body.split("\n")) + "\n"
    title = match.group("title").strip()
    return (f"{title}:\n" if title else "") + body + "\n"


def _emoji(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _ZULIP_EMOJI:
        return _ZULIP_EMOJI[name]
    import emoji  # 22 ms and a few MB: loaded with the first emoji an engineer writes, not at start

    found = emoji.emojize(f":{name}:", language="alias")
    return found if found != f":{name}:" else match.group(0)
