"""The bot's own Zulip markdown around untrusted values: the header above a quote in a case topic.

A quote's header names who wrote it (`Outbound.said`), and much of that came
from customers or strangers: display names, addresses. Written as is,
`@**all**`, `@*group*`, `[a](link)`, `![](image)`, bare URLs, `$$TeX$$`,
emoji codes and linkifiers would act there, and a line break in a value could
start a `/poll`, a quote or a ```` ```spoiler ```` block.

`inert` writes such a value as inline code, the one inline construct Zulip
renders before every other (zerver/lib/markdown/__init__.py: `backtick` has
the highest priority, 105; mentions are 95, TeX 90, stream links, links,
images, emoji and linkifiers lower) and whose text it keeps atomic, so no
later rule looks inside. Escaping would not do: Zulip has the backslash
escape pattern switched off.

Why the code span cannot be broken out of (Python-Markdown's BACKTICK_RE,
which Zulip uses: an opening run of N backticks not after a backslash, the
shortest text, then a run of exactly N backticks not after a backtick):

* the run is longer than any run of backticks in the value, so only the
  closing run can close it;
* a value that starts or ends with a backtick is padded with a space, so the
  runs stay exactly N long and the closing run does not follow a backtick;
* whitespace (line breaks included) becomes single spaces, so the value
  cannot end the paragraph, start a line (block syntax, `/poll`), or hold a
  blank line that would split the span; control and format characters go.

Callers put the result inside a line, after bot-written text that does not
end in a backslash or a backtick (a space, `(`, `:`).

The engineer views the core writes use the same rule (`bot/markup.py`, the
core's own copy: the core never imports an adapter); tests/zulip/test_markup.py
holds the two to the same answers.
"""

from __future__ import annotations

import re
import unicodedata

from adapters.channel import Said

_BACKTICKS = re.compile(r"`+")
#: An address written as is in a header: what an engineer's Zulip email looks like, with nothing
#: Zulip markdown could act on (no `*`, backtick, bracket, colon, `$`, `#`, `>` or space).
_PLAIN_ADDRESS = re.compile(r"[\w.%+'-]+@[\w-]+(?:\.[\w-]+)*")


def inert(value: str) -> str:
    """`value` on one line as Zulip inline code that no mention, link, image or other markup can leave.

    An empty (or all-whitespace) value gives an empty string: a code span cannot be empty.
    """
    kept = "".join(c for c in value if c.isspace() or not unicodedata.category(c).startswith("C"))
    text = " ".join(kept.split())
    if not text:
        return ""
    fence = "`" * (1 + max((len(run) for run in _BACKTICKS.findall(text)), default=0))
    if text.startswith("`") or text.endswith("`"):
        text = f" {text} "
    return f"{fence}{text}{fence}"


def said_header(said: Said) -> str:
    """The line above a quote in a case topic, naming who said it and on which channel.

    A customer: `**`Alice`** via mastodon (`alice@remote.example`) wrote:`, name and
    address inert. An engineer: `**erin@example.com** replied to the customer via
    mastodon:`, the address as is when it is a plain address (the engineers' own,
    from the configuration), else inert like any other value.
    """
    if said.role == "engineer":
        name = said.name if _PLAIN_ADDRESS.fullmatch(said.name) else inert(said.name)
        return f"**{name}** replied to the customer via {said.channel}:"
    address = f" ({inert(said.address)})" if said.address else ""
    return f"**{inert(said.name)}** via {said.channel}{address} wrote:"
