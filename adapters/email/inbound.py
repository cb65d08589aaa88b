"""A mail read from the mailbox (`reading.Mail`) as deskbot's `Inbound` (pure).

* `sender`: the From address in lower case (the identity a customer is linked by);
  the null sender and a From without an address become `MAILER-DAEMON`.
* `message_id`: the Message-ID, so that the same mail stored twice in the folder, or seen
  again after a change of UIDVALIDITY, is handled once (the store's key); a mail without
  one has one made of a digest of its body and its From, To, Cc, Date and Subject (`reading`).
* `conversation`: the thread chain an answer continues (`thread_chain`).
* `replies_to`: References, then In-Reply-To (the message answered last); `case_hint`: the `[#N]` of the
  subject; `subject_hint`: the subject without "Re:"/"Fwd:" prefixes (in the languages
  clients write them), mail gateways' tags ("[EXTERNAL]") and `[#N]` tags: a new incident's
  subject.
* `copies`: the other addresses of `To` and `Cc` (not the sender, the support address or
  its aliases, `EMAIL_ALIASES`); `Bcc` is never read: a recipient's copy has none, and a
  stray one in a raw message is ignored.
* `automatic`: the reader's verdict (RFC 3834 and friends), the null sender, or the
  support address itself or an alias; `verified`: False when a trusted server is named and its DMARC
  verdict is not `pass`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from adapters.channel import Attachment, Inbound

from .reading import Mail, is_reply

CHANNEL = "email"
#: Unknown senders and the null sender are keyed alike.
NULL_SENDER = "mailer-daemon"
#: The thread chain kept with a message (the store's conversation column holds 1024 characters).
CHAIN_LIMIT = 900
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


def thread_chain(message_id: str | None, in_reply_to: str | None, references: tuple[str, ...]) -> str:
    """What an answer to this mail continues: its References (plus its In-Reply-To when References
    lack it), then its own Message-ID; over `CHAIN_LIMIT`, the first id and as many of the latest
    as fit (RFC 5322 §3.6.4 lets a long chain lose its middle)."""
    ids = list(
        dict.fromkeys([*references, *([in_reply_to] if in_reply_to else []), *([message_id] if message_id else [])])
    )
    kept = ids
    if len(" ".join(ids)) > CHAIN_LIMIT:
        kept = ids[-1:]
        for earlier in reversed(ids[1:-1]):
            if len(" ".join([ids[0], earlier, *kept])) > CHAIN_LIMIT:
                break
            kept.insert(0, earlier)
        if len(" ".join([ids[0], *kept])) <= CHAIN_LIMIT and ids[0] not in kept:
            kept.insert(0, ids[0])
    return " ".join(kept)


def mail_to_inbound(
    mail: Mail,
    *,
    own_address: str,
    uid_key: str,
    received_at: datetime | None,
    authserv_id: str | None,
    note: str | None = None,
    refused: Sequence[Attachment] = (),
    aliases: Collection[str] = (),
) -> Inbound:
    """The Inbound for `mail` (a `reading.Mail`). `uid_key`: where it lies, its key if it has no
    Message-ID. `note`/`refused`: an oversized mail, read by its headers only, and the files it
    carried, not kept (`structure.oversized`)."""
    sender = (mail.sender or "").strip().lower() or NULL_SENDER
    references = tuple(mail.references)
    in_reply_to = mail.in_reply_to[-1] if mail.in_reply_to else None
    message_id = mail.message_id or None
    desk = {own_address.lower(), *(a.lower() for a in aliases)}
    automatic = bool(mail.automatic) or sender == NULL_SENDER or sender in desk
    copies = tuple(a for a in dict.fromkeys([*mail.to, *mail.cc]) if a and a != sender and a not in desk)
    attachments = (*mail.attachments, *refused)
    text = mail.text or ""
    if not text.strip() and not attachments and not is_reply(mail.subject, mail.in_reply_to, references):
        # A new mail that says it all in its subject ("Printer on fire", no body): the subject is
        # what the customer wrote, not an empty message.
        text = clean_subject(mail.subject) or ""
    if note:
        text = f"{note}\n\n{text}".strip()
    return Inbound(
        channel=CHANNEL,
        sender=sender,
        conversation=thread_chain(message_id, in_reply_to, references),
        text=text,
        message_id=message_id or uid_key,
        received_at=received_at or mail.date or datetime.now(UTC),
        raw={
            "uid": uid_key,
            "message_id": message_id,
            "from": mail.sender,
            "subject": mail.subject,
            "to": list(mail.to),
            "cc": list(mail.cc),
            "date": mail.date.isoformat() if mail.date else None,
            "automatic": mail.automatic,
            "dmarc": mail.authenticated,
        },
        sender_name=mail.sender_name or None,
        subject_hint=clean_subject(mail.subject),
        attachments=attachments,
        replies_to=tuple(dict.fromkeys([*references, *([in_reply_to] if in_reply_to else [])])),
        case_hint=case_tag(mail.subject),
        automatic=automatic,
        verified=authserv_id is None or mail.authenticated is True,
        copies=copies,
        too_large=mail.too_large,
    )
