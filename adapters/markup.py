"""Untrusted text inside the engineers' markdown (Zulip's): the engineer views and case-topic headers.

What engineers read is Zulip markdown written by the bot, and much of what it
shows came from customers or strangers: subjects, names, addresses, display
names. Written as is, `@**all**`, `@*group*`, `[a](link)`, `![](image)`,
bare URLs, `$$TeX$$`, emoji codes and linkifiers would act there, and a line
break in a value could start a `/poll`, a quote or a ```` ```spoiler ```` block.

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

A value is at most `MAX_INERT` characters (a longer one is cut, with "…"): a
line of the bot's is then always far shorter than a Zulip message, so the
splitter never has to cut one, and a code span cut in two would let the rest
act (an email Subject of 10,000 characters did: `@**all**` at its end fired).

One copy for both writers of engineer-facing markdown: the engineer command
handlers (bot/handlers/engineer.py) and the Zulip channel's quote headers
(adapters/zulip/markup.py). It imports no platform client, so the core may use it.
"""

from __future__ import annotations

import re

from adapters.printable import printable

_BACKTICKS = re.compile(r"`+")

#: The longest value `inert` writes, in code points: names, subjects, addresses and file names
#: are far shorter in honest use.
MAX_INERT = 500


def inert(value: str, limit: int = MAX_INERT) -> str:
    """`value` on one line as Zulip inline code that no mention, link, image or other markup can
    leave, cut to `limit` characters (the last one "…").

    An empty (or all-whitespace) value gives an empty string: a code span cannot be empty.
    """
    text = " ".join(printable(value, keep_whitespace=True).split())
    if not text:
        return ""
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    fence = "`" * (1 + max((len(run) for run in _BACKTICKS.findall(text)), default=0))
    if text.startswith("`") or text.endswith("`"):
        text = f" {text} "
    return f"{fence}{text}{fence}"
