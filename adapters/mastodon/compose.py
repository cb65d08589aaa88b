"""Reply text for Mastodon: one recipient, counted as Mastodon counts, split into a thread.

Counting (Mastodon's `StatusLengthValidator`): grapheme clusters of
`spoiler_text + text`, where every URL with a protocol counts 23 and every
mention counts only as `@username`. URLs are found with the twitter-text
regex Mastodon.py ships (`mastodon._url_regex`), mentions with Mastodon's own
`Account::MENTION_RE` (`mentions.MENTION_RE`). Grapheme clusters need `graphemeu` (Mastodon.py's
`grapheme` extra); without it, code points are counted, which is never less
than the grapheme count, so a part is never too long, only sometimes shorter
than it could be.

Only the customer may be mentioned: a direct status reaches exactly the
accounts it mentions. Every `@name` in the body is neutralised
(`mentions.neutralise_mentions`), part by part after splitting, so that no
cut can put an `@` at the start of a part where it would become a mention.
Email addresses and URLs are left alone where Mastodon does not read them as
mentions either.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mastodon._url_regex import url_regex as _URL_RE

from .mentions import MENTION_RE, neutralise_mentions

try:
    import grapheme as _grapheme

    def _graphemes(text: str) -> int:
        # graphemeu is pure Python; in ASCII only CR LF is one cluster of two.
        if text.isascii():
            return len(text) - text.count("\r\n")
        return _grapheme.length(text)

except ImportError:  # pragma: no cover - depends on the installed extra

    def _graphemes(text: str) -> int:
        return len(text)


URL_LENGTH = 23
#: Room kept for the " (i/n)" marker of a part; more than 99 parts is refused.
_MARKER_WIDTH = " (99/99)"
MAX_PARTS = 99


class ReplyTooLong(ValueError):
    """The text would need more than MAX_PARTS statuses."""


def status_length(text: str, spoiler_text: str = "") -> int:
    """How many characters Mastodon counts for a status."""
    return _graphemes(_countable(text)) + _graphemes(spoiler_text)


def fits_status(text: str, max_characters: int) -> bool:
    """`status_length(text) <= max_characters`, counting graphemes only when it matters."""
    countable = _countable(text)
    # A grapheme cluster holds at least one code point: within the limit in
    # code points is within it in clusters.
    return len(countable) <= max_characters or _graphemes(countable) <= max_characters


def _countable(text: str) -> str:
    """The text with each URL as 23 characters and each mention as `@username`."""
    countable = _URL_RE.sub(lambda m: m.group(2) + "x" * URL_LENGTH, text)
    return MENTION_RE.sub(lambda m: "@" + m.group(2), countable)


def mention_for(acct: str, local_domain: str) -> str:
    """The customer's full `@user@domain` (SPEC §4), for an account of the bot's own instance too
    (whose `acct` has no domain): Mastodon resolves its own domain to the local account, and
    counts a mention as `@user` alone, so the full form costs no characters."""
    username, _, domain = acct.lstrip("@").partition("@")
    return f"@{username}@{domain or local_domain}"


def thread_parts(recipient_mention: str, body: str, max_characters: int, statuses: int = 1) -> list[str]:
    """The statuses of a reply: each starts with the mention and fits `max_characters`.

    Deterministic for the same input, so a retried send maps each part to
    the same Idempotency-Key. Splits at paragraph breaks, then at line breaks,
    then between words; a single word longer than a part is cut. `statuses`:
    how many statuses the thread will have at least (a reply's media take one
    each group of four): its parts are numbered out of the whole thread, and
    the caller adds the parts of media alone (`media_part`).
    """
    body = body.strip()
    prefix = recipient_mention + " "
    whole = neutralise_mentions(body)
    if statuses <= 1 and fits_status(prefix + whole, max_characters):
        return [prefix + whole]

    # Split the text as written, then neutralise each part as it will be
    # posted: a word cut in two can leave an `@` at the start of a part (after
    # the prefix's space), where it begins a mention that it did not begin in
    # the whole text.
    def fits(chunk: str) -> bool:
        return fits_status(prefix + neutralise_mentions(chunk) + _MARKER_WIDTH, max_characters)

    if not fits("x"):
        raise ReplyTooLong(f"max_characters={max_characters} leaves no room after {recipient_mention!r}")
    chunks = [body] if fits(body) else _split(body, fits, max_characters)
    if len(chunks) > MAX_PARTS:
        raise ReplyTooLong(f"the reply needs {len(chunks)} statuses (at most {MAX_PARTS})")
    total = max(len(chunks), statuses)
    return [f"{prefix}{neutralise_mentions(chunk)} ({i}/{total})" for i, chunk in enumerate(chunks, 1)]


def media_part(recipient_mention: str, number: int, total: int) -> str:
    """A status of a thread that carries media alone (more groups of media than parts of text)."""
    return f"{recipient_mention} 📎 ({number}/{total})"


def _split(body: str, fits: Callable[[str], bool], max_characters: int) -> list[str]:
    chunks: list[str] = []
    rest = body
    while rest and len(chunks) <= MAX_PARTS:  # past that the caller refuses anyway
        # How far into `rest` the next part reaches: doubled while it fits.
        # Links count 23 and a grapheme may be many code points, so a part
        # can hold more than max_characters code points, rarely much more;
        # starting there keeps the searches below (each `fits` counts
        # graphemes, which is slow) over short prefixes.
        reach = max(max_characters, 1)
        while reach < len(rest) and fits(rest[:reach].strip()):
            reach *= 2
        if reach >= len(rest) and fits(rest):
            chunks.append(rest)
            break
        cut = _best_cut(rest[: reach + 1], fits)
        chunks.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    return [c for c in chunks if c]


def _best_cut(text: str, fits: Callable[[str], bool]) -> int:
    """Where the next part ends: the last paragraph break, else line break, in
    the second half of what fits; else the last word boundary that fits; else
    (one word longer than a part) the longest prefix that fits."""
    boundaries = [m.start() for m in re.finditer(r"\s+", text) if m.start() > 0]
    low, high, best = 0, len(boundaries) - 1, None
    while low <= high:  # the counted length only grows with the prefix
        mid = (low + high) // 2
        if fits(text[: boundaries[mid]].strip()):
            best, low = boundaries[mid], mid + 1
        else:
            high = mid - 1
    if best is None:
        return _longest_prefix(text, fits)
    for separator in ("\n\n", "\n"):
        at = text.rfind(separator, 0, best + 1)
        if at > 0 and at >= best // 2:
            return at
    return best


def _longest_prefix(text: str, fits: Callable[[str], bool]) -> int:
    low, high = 1, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if fits(text[:mid]):
            low = mid
        else:
            high = mid - 1
    return low
