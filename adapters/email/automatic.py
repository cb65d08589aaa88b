"""Mail that must never be answered: robots, bounces, lists, and the support address itself.

Two robots that answer each other never stop; a bounce answered bounces again.
RFC 3834 and the headers mail software sets in practice say which mail a
person did not write (see the notes on automatic mail): such mail is stored
but gets no answer. The reason is one short word, for the logs and the store.

Some out-of-office replies carry none of those headers (Outlook's client-side rules, older
Exchange: "Resposta automática: …"): their subject's first words say it (`AUTOREPLY_SUBJECTS`).
Microsoft's `X-Auto-Response-Suppress` is no sign: it asks the receiver not to answer, and
Exchange puts it on ordinary mail too (a distribution list's), as Discourse, osTicket, Redmine and
GLPI found. Nor is `X-MS-Exchange-Generated-Message-Source`: an inbox rule that forwards a
person's mail sets it as well.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

#: Local parts of the addresses bounces come from.
_BOUNCE_SENDERS = {"mailer-daemon", "postmaster"}
#: The same in a `From` that has no domain ("MAILER-DAEMON (Mail Delivery System)").
_BOUNCE_FROM = re.compile(r"(?:^|[\s<\"])(?:mailer-daemon|postmaster)(?:[@>\s\"]|$)", re.IGNORECASE)
#: RFC 3834 §2: a `Precedence` of these is mail sent to many, or by a program ("auto_reply" is not in
#: the RFC, but vacation programs set it).
_BULK = {"bulk", "junk", "list", "auto_reply"}
#: How autoresponders begin a subject (Outlook and Exchange in each language, vacation programs,
#: Gmail's "Out of office"): a small list, matched case-insensitively, only at the start (after
#: any "Re:"/"Fwd:" and tags) and only with a colon or as the whole subject, so that a person's
#: "Automatic reply rule is broken" or "Ausência de resposta no #2" is read as theirs.
AUTOREPLY_SUBJECTS = (
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto-reply",
    "out of office",
    "out of office reply",
    "out of office autoreply",
    "resposta automática",
    "resposta automatica",
    "ausente",
    "ausência",
    "fora do escritório",
    "abwesenheitsnotiz",
    "réponse automatique",
    "respuesta automática",
)
#: What may come before those words: tags ("[EXTERNAL]", "[#2]") and reply or forward prefixes as
#: clients localise them ("RE:", "AW:", "Fwd:", "ENC:", "Re[2]:").
_LEADING = re.compile(
    r"^(?:\s*\[[^\]]*\]|\s*(?:re|res|resp|aw|sv|vs|antw|fw|fwd|enc|tr|rv|wg)\s*(?:\[\d+\])?\s*[:：])*\s*",
    re.IGNORECASE,
)
_AUTOREPLY_SUBJECT = re.compile(
    "(?:" + "|".join(re.escape(words).replace(r"\ ", r"\s+") for words in AUTOREPLY_SUBJECTS) + r")\s*(?:[:：]|$)",
    re.IGNORECASE,
)


def automatic_reason(
    header: Callable[[str], str | None],
    *,
    sender: str,
    content_type: str,
    own_addresses: Collection[str] = (),
) -> str | None:
    """Why the mail must never be answered, or None if a person may be answered.

    `header(name)` gives a header's value (None when the mail has none); `sender` is the `From`
    addr-spec, lower-cased ('' when there is none); `content_type` the mail's own, lower-cased.
    """
    if sender and sender in {address.strip().lower() for address in own_addresses}:
        return "own address"
    return_path = header("Return-Path")
    if (
        (return_path is not None and return_path.strip() in ("<>", ""))
        or content_type == "multipart/report"
        or sender.split("@", 1)[0] in _BOUNCE_SENDERS
        or _BOUNCE_FROM.search(header("From") or "")
    ):
        return "bounce"
    if not sender:
        return "null sender"
    auto_submitted = _token(header("Auto-Submitted"))
    if auto_submitted is not None and auto_submitted != "no":
        return "auto-submitted"
    if header("X-Autoreply") is not None or header("X-Autorespond") is not None:
        return "autoreply"
    if autoreply_subject(header("Subject") or ""):
        return "autoreply subject"
    if _token(header("Precedence")) in _BULK:
        return "precedence"
    # RFC 2919/2369 list headers; since 2024 Gmail and Yahoo require List-Unsubscribe of every bulk
    # sender, so newsletters carry it even when they are no list.
    if header("List-Id") is not None or header("List-Unsubscribe") is not None:
        return "list"
    return None


def autoreply_subject(subject: str) -> bool:
    """Does `subject` begin as autoresponders begin theirs (`AUTOREPLY_SUBJECTS`)?"""
    leading = _LEADING.match(subject)  # matches always, if only the empty string
    return _AUTOREPLY_SUBJECT.match(subject, leading.end() if leading else 0) is not None


def _token(value: str | None) -> str | None:
    """A header's first word, lower-cased, without parameters or comments ("auto-replied; …" → …)."""
    if value is None:
        return None
    words = value.split(";", 1)[0].split("(", 1)[0].split()
    return words[0].lower() if words else ""
