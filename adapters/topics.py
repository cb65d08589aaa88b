"""Case topic names, for the channels that carry case topics (Zulip, and the console that stands in for it).

A case's topic is named `#N customer: subject` (`case_topic_name`), and a
message in a topic is about the case whose number starts the topic's name
(`case_in_topic`). The channel writes the name (`Channel.case_topic`) and reads
the number back (`Inbound.case`): the core never cuts or parses a topic name.
"""

from __future__ import annotations

import re
import unicodedata

from adapters.printable import printable

#: `#` and a case number at the very start of a topic name. A number is 1 to 32 ASCII digits, as
#: everywhere in deskbot (bot.numbers.MAX_DIGITS): a longer run of digits is no number at all.
_CASE_IN_TOPIC = re.compile(r"#([0-9]{1,32})(?![0-9])")
#: What must not end a cut name: a combining mark, a joiner or a variation selector left dangling.
_DANGLING = "\u200d\ufe0e\ufe0f"


def case_topic_name(number: int, customer: str, subject: str, limit: int) -> str:
    """`#N customer: subject` as a topic name of at most `limit` code points (`clip_topic`)."""
    return clip_topic(f"#{number} {customer}: {subject}", limit)


def case_in_topic(topic: str | None) -> int | None:
    """The case number a topic name starts with (`#12 Alice: …` → 12), else None.

    Only the very start counts, and the number ends where the digits do: `#12abc` is case 12,
    `#12345…` with more than 32 digits is no case, nor is ` #12` or `Re: #12`.
    """
    match = _CASE_IN_TOPIC.match(topic or "")
    return int(match.group(1)) if match else None


def clip_topic(topic: str, limit: int) -> str:
    """`topic` on one line, without control or format characters, within `limit` code points.

    Whitespace runs become one space; characters of category C* are dropped (Zulip refuses a
    topic name with a control character, and every post of the case would then fail for good;
    a terminal would obey its escape codes). A longer name is cut, without leaving a combining
    mark, joiner or variation selector dangling, and ends with "…".
    """
    topic = printable(" ".join(topic.split()))
    if len(topic) <= limit:
        return topic
    cut = topic[: limit - 1]
    while cut and (unicodedata.combining(cut[-1]) or cut[-1] in _DANGLING):
        cut = cut[:-1]
    return cut.rstrip() + "…"
