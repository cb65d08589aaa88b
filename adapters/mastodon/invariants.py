"""What a reply composed for Mastodon must satisfy, checkable on any input.

One definition for the property tests that run in CI and for `bench/fuzz.py`,
which feeds 100,000 inputs each to `reply_violations` and to
`adapters.html_text.html_to_text` (whose promise is only to return text, in time
linear in its input, and never raise).
"""

from __future__ import annotations

from .compose import ReplyTooLong, mention_for, status_length, thread_parts
from .mentions import ZWJ, third_party_mentions


def reply_violations(
    body: str,
    max_characters: int = 500,
    recipient: str = "alice@remote.example",
    local_domain: str = "bot.example",
) -> list[str]:
    """Compose `body` as a reply to `recipient`; name every promise its statuses break.

    The promises: each part fits `max_characters` as Mastodon counts, starts
    with the recipient's mention, mentions nobody else by Mastodon's rule, and
    a thread's parts are numbered (i/n); together they hold every character
    of `body` but whitespace, in order. An empty list means all hold; a
    problem names a mention (has the word "mention") exactly when the part
    would reach a third party, so callers can count those apart.
    Refusing the reply as too long (ReplyTooLong) is allowed and breaks
    none; any other exception is left to propagate, as the unhandled error
    it is.
    """
    prefix = mention_for(recipient, local_domain) + " "
    try:
        parts = thread_parts(prefix[:-1], body, max_characters)
    except ReplyTooLong:
        return []
    problems: list[str] = []
    kept: list[str] = []
    for number, part in enumerate(parts, 1):
        if status_length(part) > max_characters:
            problems.append(f"part {number} counts {status_length(part)} > {max_characters}")
        if not part.startswith(prefix):
            problems.append(f"part {number} does not start with {prefix!r}")
        strangers = third_party_mentions(part, recipient, local_domain)
        if strangers:
            problems.append(f"part {number} mentions {strangers}")
        inner = part.removeprefix(prefix)
        if len(parts) > 1:
            marker = f" ({number}/{len(parts)})"
            if not inner.endswith(marker):
                problems.append(f"part {number} does not end with {marker!r}")
            inner = inner.removesuffix(marker)
        kept.append(inner)
    if _content("".join(kept)) != _content(body):
        problems.append("the parts do not hold the text as written")
    return problems


def _content(text: str) -> str:
    """The text without whitespace (splitting may move it) and ZWJ (neutralising adds it)."""
    return "".join(char for char in text if not char.isspace() and char != ZWJ)
