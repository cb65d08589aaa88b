"""Subjects (pure): what a person wrote in one, and whether its words are the bot's own.

* `clean_subject`: the subject without reply and forward prefixes (in the languages clients
  write them), mail gateways' tags ("[EXTERNAL]") and `[#N]` tags; `case_tag`: the `[#N]`.
* The bot's own words: a mail the bot writes about no incident and in answer to no mail (a credit
  expiry reminder, the notice that an address was linked) bears a subject of the bot's making, and
  so does one whose subject it had to make up (an answer to a mail without a subject). A customer's
  reply to it bears it again ("Re: Os seus créditos de suporte caducam …"), and it must not become
  the name of an incident their words open. The mail's Message-ID says so (`own_subject_mark`,
  written by `compose.message_id`): a digest of its subject, as `clean_subject` reads it. A mail
  that answers one of those (`In-Reply-To`, `References`) under a subject with the same digest
  bears the bot's words (`bots_own_subject`); one whose sender wrote a subject of their own does
  not. No store is asked: the answer is in the ids the mail carries. (A forged id costs its sender
  no more than the subject of their own mail.)
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

_TAG = re.compile(r"\[#\s*([0-9]{1,18})\s*\]")
#: Reply and forward prefixes as mail clients localise them (en, pt, de, fr, es, nl, it, sv …).
_PREFIX = re.compile(
    r"^\s*(?:(?:re|res|resp|aw|sv|vs|antw|fw|fwd|enc|tr|rv|wg|doorst|i)\s*(?:\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)
#: The tags mail gateways put before the subject of mail from outside ("[EXTERNAL]", "[EXT]",
#: "[External Sender]", "[CAUTION]", "[SPAM]", "[EXTERNO]" …): the gateway's words, not the sender's.
_GATEWAY_TAG = re.compile(
    r"^\s*\[\s*(?:external(?:\s+(?:sender|email|e-?mail|message|mail))?|ext|caution|warning|suspicious"
    r"|suspected spam|spam|possible spam|phishing|externo|externa|e-?mail externo)\s*:?\s*\]\s*",
    re.IGNORECASE,
)
#: The mark of the bot's own subject in its Message-ID (`<deskbot.<row>.<time>.s<digest>@domain>`,
#: `compose.message_id`), its digest captured.
_OWN_SUBJECT_ID = re.compile(r"<deskbot\.[0-9]+\.[0-9a-z]+\.s([0-9a-f]{12})@[^<>\s]+>")


def case_tag(subject: str | None) -> int | None:
    """The number of the first `[#N]` tag anywhere in the subject."""
    found = _TAG.search(subject or "")
    return int(found.group(1)) if found else None


def clean_subject(subject: str | None) -> str | None:
    """The subject as a person wrote it: without reply/forward prefixes, mail gateways' tags before
    them (`_GATEWAY_TAG`) and `[#N]` tags, its spaces collapsed."""
    text = " ".join((subject or "").split())
    while True:
        stripped = " ".join(_PREFIX.sub("", _GATEWAY_TAG.sub("", _TAG.sub("", text))).split())
        if stripped == text:
            break
        text = stripped
    return text or None


def own_subject_mark(subject: str) -> str:
    """What the Message-ID of a mail whose `subject` (as sent) is the bot's own words carries after
    its other parts: "s" and the digest of the subject's words."""
    return "s" + _digest(subject)


def bots_own_subject(subject: str | None, answered: Iterable[str]) -> bool:
    """Does `subject`, of a mail that answers the Message-IDs `answered`, say what the subject of one
    of them said, a mail of the bot's own words (`own_subject_mark`)?"""
    marks = {found.group(1) for found in map(_OWN_SUBJECT_ID.fullmatch, answered) if found}
    return bool(marks) and _digest(subject or "") in marks


def _digest(subject: str) -> str:
    """48 bits of SHA-256 of the subject's words as `clean_subject` reads them, in any case and
    Unicode form (a mail client may change neither, but some do), in hex."""
    words = unicodedata.normalize("NFC", clean_subject(subject) or "").casefold()
    return hashlib.sha256(words.encode()).hexdigest()[:12]
