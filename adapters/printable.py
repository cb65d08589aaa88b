"""Text without the characters that act instead of showing.

Unicode's category C* holds control characters (a terminal obeys their escape codes;
Zulip refuses a topic name with one), format characters (bidirectional overrides that
make a name read backwards), surrogates, private-use and unassigned code points. Every
place that shows text from a platform or a person drops them the same way: subjects,
topic names, file names, and the inline code of engineer views.
"""

from __future__ import annotations

import unicodedata

#: Format characters that join what is shown rather than act on it: the zero-width joiner and
#: non-joiner (👨‍👩‍👧, Persian and Indic words) and the tag characters of subdivision flags (🏴 of
#: Scotland). Bidirectional overrides and the rest of category Cf still go.
JOINING = frozenset("\u200c\u200d") | frozenset(map(chr, range(0xE0020, 0xE0080)))


def printable(text: str, *, keep_whitespace: bool = False) -> str:
    """`text` without category C* characters (but the joining ones, `JOINING`); with
    `keep_whitespace`, tabs and line breaks stay (for a caller that folds whitespace runs into one
    space itself)."""
    return "".join(
        c
        for c in text
        if (keep_whitespace and c.isspace()) or c in JOINING or not unicodedata.category(c).startswith("C")
    )
