"""Mentions as Mastodon finds them, and text that mentions nobody.

A direct status reaches exactly the accounts it mentions, and Mastodon
decides what a mention is with one regular expression over the status text
(`Account::MENTION_RE` in app/models/account.rb, applied by
ProcessMentionsService to the whole text, links included):

    USERNAME_RE = /[a-z0-9_]+([.-]+[a-z0-9_]+)*/i
    MENTION_RE  = %r{(?<![=/[:word:]])@((#{USERNAME_RE})(?:@[[:word:]]+([.-]+[[:word:]]+)*)?)}

Ruby's `[[:word:]]` is not Python's `\\w`. Onigmo builds it as Alphabetic |
Mark | Decimal_Number | Connector_Punctuation (ruby tool/enc-unicode.rb),
while `\\w` takes every numeric character and no marks: "²", "½" or "௰" are
word characters to Python and not to Ruby, so in `²@victim@host` Python sees
no mention where Mastodon sees one. `is_word_char` is Ruby's set; it was
checked code point by code point against Perl's `\\p{Alphabetic}`, `\\p{M}`,
`\\p{Nd}`, `\\p{Pc}` (both at Unicode 14.0). A character that a later Unicode
assigns is unassigned here, hence not a word character: that can only make
us see a mention where Mastodon sees none, the safe side.

Under `/i`, Onigmo's `[a-z]` also takes the two characters whose case folding
is an ASCII letter: KELVIN SIGN (U+212A, folds to k) and LONG S (U+017F,
folds to s).
"""

from __future__ import annotations

import re
import unicodedata

#: Alphabetic characters of Unicode that are neither letters, marks nor
#: letter numbers (PropList.txt, Other_Alphabetic, category So): circled,
#: squared and negative squared Latin letters.
_OTHER_ALPHABETIC_SYMBOLS = ((0x24B6, 0x24E9), (0x1F130, 0x1F149), (0x1F150, 0x1F169), (0x1F170, 0x1F189))


_WORD_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "Pc"})


def is_word_char(char: str) -> bool:
    """Whether Ruby's `[[:word:]]` matches this one character."""
    if unicodedata.category(char) in _WORD_CATEGORIES:
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _OTHER_ALPHABETIC_SYMBOLS)


def _word_class() -> str:
    """`is_word_char` as the inside of a regex character class, built once (about 0.1 s)."""
    category = unicodedata.category
    # Planes 4-13 hold no character, planes 15-16 only private use (not word).
    codes = [
        c for plane in (range(0x40000), range(0xE0000, 0xF0000)) for c in plane if category(chr(c)) in _WORD_CATEGORIES
    ]
    codes = sorted({*codes, *(c for low, high in _OTHER_ALPHABETIC_SYMBOLS for c in range(low, high + 1))})
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges)


_WORD = _word_class()
_USERNAME_CHAR = "A-Za-z0-9_\u017f\u212a"
#: Account::MENTION_RE in Python's dialect: group 1 is the handle, group 2 the username.
#: The look-behind is written after the `@` (two characters back: not a word
#: character, "=" or "/" before this `@`) so that the regex engine looks for
#: the literal `@` first instead of testing the class at every position.
MENTION_RE = re.compile(
    rf"@(?<![=/{_WORD}]@)(([{_USERNAME_CHAR}]+(?:[.-]+[{_USERNAME_CHAR}]+)*)(?:@[{_WORD}]+(?:[.-]+[{_WORD}]+)*)?)"
)
#: Every `@` where a mention could begin. DOTTED and DOTLESS I are added to
#: the username characters for margin: whether Onigmo's `/i` folds them onto
#: `i` depends on the Turkic folding, and neutralising one more `@` costs nothing.
_MENTION_START = re.compile(rf"@(?<![=/{_WORD}]@)(?=[{_USERNAME_CHAR}\u0130\u0131])")
ZWJ = "\u200d"


def find_mentions(text: str) -> list[str]:
    """The handles (`user` or `user@domain`) that Mastodon reads as mentions, in order."""
    return [match.group(1) for match in MENTION_RE.finditer(text)]


def third_party_mentions(text: str, recipient: str, local_domain: str | None = None) -> list[str]:
    """The mentions in `text` that name anyone but `recipient` (`user` or `user@domain`).

    Mastodon would make each of them a recipient of a direct status. A handle
    with the local domain names the same account as the bare username, so
    `local_domain`, when given, is dropped from both sides before comparing.
    """

    def account(handle: str) -> tuple[str, str]:
        username, _, domain = handle.lstrip("@").partition("@")
        domain = domain.lower()
        if local_domain is not None and domain == local_domain.lower():
            domain = ""
        return username.lower(), domain

    wanted = account(recipient)
    return [handle for handle in find_mentions(text) if account(handle) != wanted]


def neutralise_mentions(text: str) -> str:
    """The same text, visibly, with no mention of anyone.

    A ZERO WIDTH JOINER goes right after every `@` that could begin a mention:
    the `@` is then followed by a character no username holds, so no mention
    can start there, and the reader still sees `@name`. It costs nothing in
    Mastodon's count (it joins the `@`'s grapheme cluster). No other `@`
    gains a new neighbour, so the result has no mention at all.
    """
    return _MENTION_START.sub("@" + ZWJ, text)
