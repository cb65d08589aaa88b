"""How tests read back a relayed message: the bot's lines around a fenced quote."""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.zulip.compose import GUARDED_FENCE

FENCE_OPEN = re.compile(r"^(`{3,}|~{3,})text$")


@dataclass
class Relayed:
    outside: list[str]  # every line not inside the bot's fence
    inside: list[str]
    fence: str


def parse_relayed(content: str) -> Relayed:
    """Split a stored message into what is inside the bot's fence and what is not.

    Mirrors Zulip's fenced-code rule (zerver/lib/markdown/fenced_code.py): the
    block opened by a line of N backticks (or tildes) closes only at a line
    that equals the fence after rstrip(). `assert_commonmark_inert` checks the
    stricter CommonMark rule on top.
    """
    lines = content.split("\n")
    outside, inside, fence = [], [], ""
    i = 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if m and not fence:
            fence = m.group(1)
            outside.append(lines[i])
            i += 1
            while i < len(lines) and lines[i].rstrip() != fence:
                inside.append(lines[i])
                i += 1
            assert i < len(lines), "the fence is never closed"
            outside.append(lines[i])
        else:
            outside.append(lines[i])
        i += 1
    return Relayed(outside, inside, fence)


def assert_commonmark_inert(relayed: Relayed) -> None:
    """No line inside could close the fence under CommonMark either (<= 3 spaces, a run >= the fence)."""
    if not relayed.fence:
        return  # a part with no quote in it (the header alone)
    char = relayed.fence[0]
    closer = re.compile(rf"^ {{0,3}}{re.escape(char)}{{{len(relayed.fence)},}}[ \t]*$")
    for line in relayed.inside:
        assert not closer.match(line), f"{line[:40]!r} would close the fence {relayed.fence!r} in CommonMark"


def unguard(line: str, fence: str) -> str:
    """A quoted line as the customer wrote it: a guarded fence-only line loses its four spaces."""
    core = line.strip()
    fence_only = len(core) >= 3 and core in ("`" * len(core), "~" * len(core))
    return line[4:] if fence == GUARDED_FENCE and fence_only and line.startswith("    ") else line


def longest_run(text: str, char: str) -> int:
    return max((len(m) for m in re.findall(f"{re.escape(char)}+", text)), default=0)
