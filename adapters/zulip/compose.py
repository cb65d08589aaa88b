"""How an outbox row becomes Zulip message bodies.

Rules (SPEC §3, NOTES §3 and §5):

* Untrusted customer text (`Outbound.quote`) goes inside a code fence that no
  line of it can close, so no mention, Markdown, `/poll` or `/me` in it acts.
  It never starts a message: the bot's header line (`out.text`) comes first,
  and each continuation part starts with a bot-written line.
* The fence stays short whatever the text holds (`choose_fence`): backticks
  one longer than the longest backtick run, else tildes one longer than the
  longest tilde run, and when both kinds of run are long (only hostile text
  does that) a fixed fence of 17 tildes with every quoted line made only of fence
  characters indented four spaces, which no Markdown dialect reads as a fence.
  A fence as long as the text would leave no room for the text in a part.
* Nothing else is added: no reference token, no marker of any kind. A body
  is a pure function of the row (and the server's `max_message_length`), so
  after a crash the bot recognises its own earlier send by the exact content
  (`as_stored`: what the server keeps of a body), see `reconcile`.
* A quote is shown up to `MAX_QUOTE` characters; the rest is left out
  with a line that says how much (the store keeps the message whole). A mail
  of megabytes posted whole was hundreds of parts: it buried the topic, and at
  Zulip's rate limits held up every other send on the channel for minutes.
* Bodies longer than the server's `max_message_length` are split at line
  boundaries (hard-split only for a line longer than a part); a fence open at
  a split is closed at the end of the part and reopened in the next. The
  server would otherwise truncate silently. Every pass of the splitting loop
  either places a whole line or cuts at least half a part's worth of one, so
  a text of n characters becomes about n / max_length parts, never more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: Zulip's default MAX_MESSAGE_LENGTH (per-server value comes from register).
DEFAULT_MAX_MESSAGE_LENGTH = 10000
#: Zulip's limit on a topic name, in code points; a longer one is cut by the server.
MAX_TOPIC_LENGTH = 60
#: First line of every part after the first: bot-written, language-neutral.
CONTINUATION = "…"
#: How much of a quote a row shows at most: three messages at Zulip's default limit.
MAX_QUOTE = 3 * DEFAULT_MAX_MESSAGE_LENGTH
#: Header used if a row carries a quote but no text of its own (never expected).
FALLBACK_HEADER = "»"
#: The longest fence chosen by run length; the fixed fence of guarded mode is one longer,
#: so that a reader (or a test) can tell the two apart by the fence alone.
MAX_FENCE = 16
GUARDED_FENCE = "~" * (MAX_FENCE + 1)
#: What makes a quoted line that could be read as a fence inert: four spaces of indentation.
GUARD = "    "

_FENCE_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_RUNS = {"`": re.compile(r"`+"), "~": re.compile(r"~+")}

LineKind = Literal["text", "open", "quote", "close"]


@dataclass(frozen=True)
class QuoteFence:
    """The fence around one quote; `guarded`: fence-only lines of the quote get `GUARD` in front."""

    token: str
    guarded: bool = False


def _longest_run(text: str, char: str) -> int:
    return max((len(m.group()) for m in _RUNS[char].finditer(text)), default=0)


def choose_fence(text: str) -> QuoteFence:
    """A fence no line of `text` can close, at most `MAX_FENCE` + 1 characters long."""
    for char in "`~":
        length = max(3, _longest_run(text, char) + 1)
        if length <= MAX_FENCE:
            return QuoteFence(char * length)
    return QuoteFence(GUARDED_FENCE, guarded=True)


def fence_for(text: str) -> str:
    """The fence token `choose_fence` picks for `text`."""
    return choose_fence(text).token


def is_fence_only(line: str) -> bool:
    """Is `line` made only of one fence character (3 or more), whatever whitespace surrounds it?

    CommonMark closes a fence with such a line (up to 3 spaces before it), Zulip when it equals the
    fence after `rstrip()` (which strips any Unicode space), and some Zulip versions treat any such
    line as a fence of its own.
    """
    core = line.strip()
    return len(core) >= 3 and (core == "`" * len(core) or core == "~" * len(core))


def guard_line(line: str) -> str:
    """`line`, indented four spaces if it is made only of fence characters."""
    return GUARD + line if is_fence_only(line) else line


def as_stored(body: str) -> str:
    """What the server keeps of a message body (NOTES §3: trailing whitespace and leading newlines
    go; `compose` never makes a body longer than max_message_length, so none is truncated)."""
    return body.rstrip().lstrip("\n")


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True)
class _Fence:
    opener: str  # the opening line, reopened in the next part
    token: str  # what closes it
    guarded: bool = False  # the bot's own quote fence in guarded mode


def compose(text: str, quote: str | None, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH) -> list[str]:
    """The message bodies for one outbox row, each at most `max_length` code points."""
    text = _normalise(text).rstrip().lstrip("\n")
    lines: list[tuple[str, LineKind]] = []
    quote_fence: QuoteFence | None = None
    if quote is not None:
        quote = _normalise(quote).rstrip("\n")
        shown = quote[:MAX_QUOTE]
        quote_fence = choose_fence(shown)
        lines.extend((line, "text") for line in (text or FALLBACK_HEADER).split("\n"))
        lines.append((quote_fence.token + "text", "open"))
        lines.extend((line, "quote") for line in shown.split("\n"))
        lines.append((quote_fence.token, "close"))
        if len(shown) < len(quote):
            left_out = len(quote) - len(shown)
            lines.append(
                (
                    f"{CONTINUATION} {left_out:,} more characters not shown here; the whole message is kept with the case (deskbot cases export).",
                    "text",
                )
            )
    else:
        lines.extend((line, "text") for line in text.split("\n"))

    if max_length < 80:
        raise ValueError(f"max_length {max_length} is too small to carry a message")
    return ["\n".join(body) for body in _Splitter(max_length, quote_fence).split(lines)]


class _Splitter:
    """Lines into parts of at most `budget` characters (each line counted with its newline)."""

    def __init__(self, budget: int, quote_fence: QuoteFence | None) -> None:
        self.budget = budget
        self.quote_fence = quote_fence
        self.parts: list[list[str]] = []
        self.current: list[str] = []
        self.size = 0
        self.fence: _Fence | None = None

    def _overhead(self, fence: _Fence | None) -> int:
        """What a fresh part spends before content: the continuation mark, the fence reopened and closed."""
        if fence is None:
            return len(CONTINUATION) + 1
        return len(CONTINUATION) + 1 + len(fence.opener) + 1 + len(fence.token) + 1

    def _trackable(self, fence: _Fence) -> bool:
        # A fence is carried across parts only while reopening it leaves at least half a part for
        # text; trusted text with an absurdly long fence line is split as plain lines instead.
        return self._overhead(fence) <= self.budget // 2

    def _append(self, line: str) -> None:
        self.current.append(line)
        self.size += len(line) + 1

    def _close_part(self) -> None:
        body = list(self.current)
        if self.fence is not None:
            if body and body[-1] == self.fence.opener:
                body.pop()  # never leave an empty fenced block behind
            else:
                body.append(self.fence.token)
        self.parts.append(body)
        self.current, self.size = [], 0
        self._append(CONTINUATION)
        if self.fence is not None:
            self._append(self.fence.opener)

    def _fresh(self) -> bool:
        """Does the current part hold nothing but what every part starts with?"""
        preamble = 1 + (self.fence is not None)
        return not self.parts and not self.current or len(self.current) <= preamble and bool(self.parts)

    def _next_fence(self, line: str, kind: LineKind) -> _Fence | None:
        """The fence state once `line` is placed."""
        if kind == "open":
            assert self.quote_fence is not None
            return _Fence(line, self.quote_fence.token, self.quote_fence.guarded)
        if kind == "close":
            return None
        if kind == "quote":
            return self.fence
        if self.fence is not None:
            return None if line.strip() == self.fence.token else self.fence
        m = _FENCE_OPEN.match(line)
        if m is not None:
            candidate = _Fence(line, m.group("fence"))
            return candidate if self._trackable(candidate) else None
        return None

    def split(self, lines: list[tuple[str, LineKind]]) -> list[list[str]]:
        for line, kind in lines:
            self._place(line, kind)
        if self.current and self.current != [CONTINUATION]:
            if self.fence is not None:
                self._append(self.fence.token)
            self.parts.append(self.current)
        return self.parts or [[]]

    def _fits(self, line: str, closing: int) -> bool:
        return self.size + len(line) + 1 + closing <= self.budget

    def _place(self, line: str, kind: LineKind) -> None:
        guarded = kind == "quote" and self.fence is not None and self.fence.guarded
        next_fence = self._next_fence(line, kind)
        # While a fence stays open after this line, keep room for the line that closes it.
        closing = len(self.fence.token) + 1 if self.fence is not None and next_fence is not None else 0
        piece = guard_line(line) if guarded else line
        if not self._fits(piece, closing) and not self._fresh():
            # A line that fits a part of its own starts one; a longer one is cut up starting right here.
            fresh_size = len(CONTINUATION) + 1 + (len(self.fence.opener) + 1 if self.fence is not None else 0)
            if fresh_size + len(piece) + 1 + closing <= self.budget:
                self._close_part()
        # Longer than the room left: cut it up. A fresh part has at least half the budget free
        # (`_trackable`; the quote fence is at most MAX_FENCE + 1 long), so every pass after the first
        # places at least budget / 2 - 5 characters: the loop ends after len(line) / (budget / 2 - 5)
        # passes. The first pass may find less room (an almost full part) and then only closes it.
        while not self._fits(piece, closing):
            room = self.budget - self.size - 1 - closing - (len(GUARD) if guarded else 0)
            if room < 1:
                self._close_part()
                continue
            head, line = line[:room], line[room:]
            self._append(guard_line(head) if guarded else head)
            self._close_part()
            piece = guard_line(line) if guarded else line
        self._append(piece)
        self.fence = next_fence
