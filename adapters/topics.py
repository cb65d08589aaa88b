"""Case topic names, for the channels that carry case topics (Zulip, and the console that stands in for it).

A case's topic is named `#N customer: subject` (`case_topic_name`), and a
message in a topic is about the case whose number starts the topic's name
(`case_in_topic`). The channel writes the name (`Channel.case_topic`) and reads
the number back (`Inbound.case`): the core never cuts or parses a topic name.
"""

from __future__ import annotations

import re

import grapheme

from adapters.printable import printable

#: `#` and a case number at the very start of a topic name. A number is 1 to 32 ASCII digits, as
#: everywhere in deskbot (bot.numbers.MAX_DIGITS): a longer run of digits is no number at all.
#: Zulip marks a topic resolved by putting "✔ " before its name (its RESOLVED_TOPIC_PREFIX), which
#: engineers do as routinely as they resolve the case: the topic is still the case's.
_CASE_IN_TOPIC = re.compile(r"(?:\u2714 )?#([0-9]{1,32})(?![0-9])")


def case_topic_name(number: int, customer: str, subject: str, limit: int) -> str:
    """`#N customer: subject` as a topic name of at most `limit` code points (`clip_topic`)."""
    return clip_topic(f"#{number} {customer}: {subject}", limit)


def case_in_topic(topic: str | None) -> int | None:
    """The case number a topic name starts with (`#12 Alice: …` → 12), else None.

    Only the very start counts (after Zulip's "✔ " of a resolved topic), and the number ends
    where the digits do: `#12abc` is case 12, `#12345…` with more than 32 digits is no case, nor
    is ` #12` or `Re: #12`.
    """
    match = _CASE_IN_TOPIC.match(topic or "")
    return int(match.group(1)) if match else None


def clip_topic(topic: str, limit: int) -> str:
    """`topic` on one line, without control or format characters, within `limit` code points.

    Whitespace runs become one space; characters of category C* are dropped (Zulip refuses a
    topic name with a control character, and every post of the case would then fail for good;
    a terminal would obey its escape codes). A longer name is cut between grapheme clusters, and
    ends with "…".
    """
    topic = printable(" ".join(topic.split()))
    if len(topic) <= limit:
        return topic
    # Cut between user-perceived characters: never inside a flag's pair, an emoji sequence or a
    # letter with its marks (Zulip counts code points; a cluster that would not fit is left out).
    kept, used = [], 0
    for cluster in grapheme.graphemes(topic):
        if used + len(cluster) > limit - 1:
            break
        kept.append(cluster)
        used += len(cluster)
    return "".join(kept).rstrip() + "…"
