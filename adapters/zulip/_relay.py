"""How an outbox row becomes Zulip message bodies.

Rules (SPEC §3, NOTES §3 and §5):

* Untrusted customer text (`Outbound.quote`) goes inside a code fence longer
  than any run of backticks in it, so no mention, Markdown, `/poll` or `/me`
  in it acts. It never starts a message: the bot's header line (`out.text`)
  comes first, and each continuation part starts with a bot-written line.
* Every part ends with the row's reference in inline code, e.g. `ref dk12`
  or `ref dk12 2/3`: unobtrusive, immune to linkifiers and mentions, and what
  `find_reference` looks for after a crash.
* Bodies longer than the server's `max_message_length` are split at line
  boundaries (hard-split only for a single over-long line); a fence open at a
  split is closed at the end of the part and reopened in the next. The server
  would otherwise truncate silently.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Zulip's default MAX_MESSAGE_LENGTH (per-server value comes from register).
DEFAULT_MAX_MESSAGE_LENGTH = 10000
MAX_TOPIC_LENGTH = 60
#: First line of every part after the first: bot-written, language-neutral.
CONTINUATION = "…"
#: Header used if a row carries a quote but no text of its own (never expected).
FALLBACK_HEADER = "»"

_REF_LINE = re.compile(r"^`ref (?P<ref>[A-Za-z0-9._-]+)(?: (?P<part>\d+)/(?P<total>\d+))?`$")
_FENCE_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_BACKTICK_RUN = re.compile(r"`+")


def fence_for(text: str) -> str:
    """A backtick fence longer than any run of backticks in `text` (at least three)."""
    longest = max((len(m.group()) for m in _BACKTICK_RUN.finditer(text)), default=0)
    return "`" * max(3, longest + 1)


def safe_reference(reference: str) -> str:
    """The reference as it is written into messages: [A-Za-z0-9._-] only."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "", reference)
    return cleaned or "x"


def reference_line(reference: str, part: int, total: int) -> str:
    ref = safe_reference(reference)
    return f"`ref {ref}`" if total == 1 else f"`ref {ref} {part}/{total}`"


def find_reference(content: str) -> tuple[str, int] | None:
    """(reference, part number) from a message body this module wrote, else None."""
    last = content.rstrip().rsplit("\n", 1)[-1].strip()
    m = _REF_LINE.match(last)
    if m is None:
        return None
    return m.group("ref"), int(m.group("part") or 1)


def clip_topic(topic: str, limit: int = MAX_TOPIC_LENGTH) -> str:
    """`topic` within `limit` code points, cut without splitting a character sequence.

    The router keeps case topics short; this only guards against a long one,
    which the server would otherwise cut to 57 characters plus "...".
    """
    topic = " ".join(topic.split())
    if len(topic) <= limit:
        return topic
    cut = topic[: limit - 1]
    # Do not leave a combining mark, joiner or variation selector dangling.
    while cut and (unicodedata.combining(cut[-1]) or cut[-1] in "\u200d\ufe0e\ufe0f"):
        cut = cut[:-1]
    if cut and unicodedata.category(cut[-1]) == "Cs":  # a lone surrogate half
        cut = cut[:-1]
    return cut.rstrip() + "…"


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass
class _Fence:
    opener: str  # the opening line, reopened in the next part
    token: str  # what closes it


def compose(text: str, quote: str | None, reference: str, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH) -> list[str]:
    """The message bodies for one outbox row, each at most `max_length` code points."""
    text = _normalise(text).rstrip().lstrip("\n")
    lines: list[tuple[str, bool]] = []  # (line, is the bot's own fence for the quote)
    if quote is not None:
        quote = _normalise(quote).rstrip("\n")
        fence = fence_for(quote)
        for line in (text or FALLBACK_HEADER).split("\n"):
            lines.append((line, False))
        lines.append((fence + "text", True))
        lines.extend((line, False) for line in quote.split("\n"))
        lines.append((fence, True))
    else:
        lines.extend((line, False) for line in text.split("\n"))

    # Room for the reference line, written once the number of parts is known.
    budget = max_length - len(reference_line(reference, 999, 999)) - 1
    if budget < 40:
        raise ValueError(f"max_length {max_length} is too small to carry a message")
    parts = _split(lines, budget)
    total = len(parts)
    return [
        "\n".join([*body, reference_line(reference, i, total)]) if body else reference_line(reference, i, total)
        for i, body in enumerate(parts, 1)
    ]


def _split(lines: list[tuple[str, bool]], budget: int) -> list[list[str]]:
    parts: list[list[str]] = []
    current: list[str] = []
    size = 0  # len("\n".join(current)) + 1 per line, approximately the joined length + 1
    fence: _Fence | None = None

    def close_part() -> None:
        nonlocal current, size
        body = list(current)
        if fence is not None:
            if body and body[-1] == fence.opener:
                body.pop()  # never leave an empty fenced block behind
            else:
                body.append(fence.token)
        parts.append(body)
        current = [CONTINUATION]
        size = len(CONTINUATION) + 1
        if fence is not None:
            current.append(fence.opener)
            size += len(fence.opener) + 1

    def room_for(line: str, closes: bool = False) -> bool:
        # While a fence is open, keep room for the line that closes it.
        closing = len(fence.token) + 1 if fence is not None and not closes else 0
        return size + len(line) + 1 + closing <= budget

    for line, own_fence in lines:
        # What the fence state will be after this line (decided before it is placed).
        if fence is not None and line.strip() == fence.token:
            next_fence: _Fence | None = None
        elif fence is None and (own_fence or _FENCE_OPEN.match(line)):
            m = _FENCE_OPEN.match(line)
            next_fence = _Fence(line, m.group("fence") if m else line)
        else:
            next_fence = fence
        closes = fence is not None and next_fence is None
        if not room_for(line, closes):
            fresh = len(CONTINUATION) + 1 + (len(fence.opener) + 1 if fence is not None else 0)
            closing = len(fence.token) + 1 if fence is not None and not closes else 0
            fits_a_fresh_part = fresh + len(line) + 1 + closing <= budget
            # A line that fits a part of its own starts one; a longer one is cut up starting right here.
            if fits_a_fresh_part and (len(current) > (2 if fence is not None else 1) or (parts == [] and current)):
                close_part()
            while not room_for(line, closes):
                # One line longer than a whole part: hard-split it.
                closing = len(fence.token) + 1 if fence is not None else 0
                take = max(1, budget - size - 1 - closing)
                current.append(line[:take])
                size += take + 1
                line = line[take:]
                close_part()
        current.append(line)
        size += len(line) + 1
        fence = next_fence
    if current and current != [CONTINUATION]:
        if fence is not None:
            current.append(fence.token)
        parts.append(current)
    return parts or [[]]
