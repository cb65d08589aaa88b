"""A mail read from the mailbox (`reading.Mail`) as deskbot's `Inbound` (pure).

* `sender`: the From address in lower case (the identity a customer is linked by);
  the null sender and a From without an address become `MAILER-DAEMON`.
* `message_id`: the Message-ID, so that the same mail stored twice in the folder, or seen
  again after a change of UIDVALIDITY, is handled once (the store's key); a mail without
  one has one made of a digest of its body and its From, To, Cc, Date and Subject (`reading`).
* `conversation`: the thread chain an answer continues (`thread_chain`).
* `text`: what the sender wrote (`reading.Mail.text`: a reply's new part, a new mail without its
  signature). A new mail with nothing else to say ("Printer on fire" and no body, or a body of
  nothing but "Sent from my iPhone" or a signature) says it in its subject: the subject is its text.
  A new mail whose subject is a customer's command naming an incident, written whole ("close 12",
  "severity 12 1": `Channel.customer_command`), over words that are no command themselves, is that
  command followed by the words ("close 12" over "Thanks, it works now." closes #12 and adds the
  thanks), as the customer would write it on one line; a subject that only begins like one
  ("Status of my order?") is no command. Only a new mail: a reply's subject repeats the one it
  answers, and a forward's is someone else's.
* `replies_to`: References, then In-Reply-To (the message answered last); `case_hint`: the `[#N]` of the
  subject; `subject_hint`: the subject without "Re:"/"Fwd:" prefixes (in the languages
  clients write them), mail gateways' tags ("[EXTERNAL]") and `[#N]` tags: a new incident's
  subject; none when those are the bot's own words, the subject of a mail of its own it answers
  (a credit expiry reminder: `subjects.bots_own_subject`), so that the incident's subject comes
  from the customer's words, as for a mail without a subject.
* `copies`: the other addresses of `To` and `Cc` (not the sender, the support address or
  its aliases, `EMAIL_ALIASES`); `Bcc` is never read: a recipient's copy has none, and a
  stray one in a raw message is ignored.
* `automatic`: the reader's verdict (RFC 3834 and friends), the null sender, or the
  support address itself or an alias; `verified`: False when a trusted server is named and its DMARC
  verdict is not `pass`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime

from adapters.channel import Attachment, CommandShape, Inbound

from .reading import Mail, is_forward, is_reply
from .subjects import bots_own_subject, case_tag, clean_subject

CHANNEL = "email"
#: Unknown senders and the null sender are keyed alike.
NULL_SENDER = "mailer-daemon"
#: The thread chain kept with a message (the store's conversation column holds 1024 characters).
CHAIN_LIMIT = 900


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
    customer_command: Callable[[str], CommandShape | None] | None = None,
) -> Inbound:
    """The Inbound for `mail` (a `reading.Mail`). `uid_key`: where it lies, its key if it has no
    Message-ID. `note`/`refused`: an oversized mail, read by its headers only, and the files it
    carried, not kept (`structure.oversized`). `customer_command`: what a text is as a customer's
    command (`Channel.customer_command`); without it no subject is read as one."""
    sender = (mail.sender or "").strip().lower() or NULL_SENDER
    references = tuple(mail.references)
    in_reply_to = mail.in_reply_to[-1] if mail.in_reply_to else None
    message_id = mail.message_id or None
    desk = {own_address.lower(), *(a.lower() for a in aliases)}
    automatic = bool(mail.automatic) or sender == NULL_SENDER or sender in desk
    copies = tuple(a for a in dict.fromkeys([*mail.to, *mail.cc]) if a and a != sender and a not in desk)
    attachments = (*mail.attachments, *refused)
    replies_to = tuple(dict.fromkeys([*references, *([in_reply_to] if in_reply_to else [])]))
    subject = clean_subject(mail.subject)
    new = not is_reply(mail.subject, mail.in_reply_to, references)
    text = mail.text or ""
    if new and not text.strip() and not attachments:
        # A new mail that says it all in its subject ("Printer on fire", no body, or only "Sent from
        # my iPhone"): the subject is what the customer wrote, not an empty message.
        text = subject or ""
    elif (
        new and not automatic and not is_forward(mail.subject) and _command_over_words(subject, text, customer_command)
    ):
        # "close 12" in the subject, "Thanks, it works now." in the body: the command, then the words,
        # as the customer would type them in a chat (the core adds the words, then runs the command).
        text = f"{subject}\n{text.strip()}"
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
        subject_hint=None if bots_own_subject(mail.subject, replies_to) else subject,
        attachments=attachments,
        replies_to=replies_to,
        case_hint=case_tag(mail.subject),
        automatic=automatic,
        verified=authserv_id is None or mail.authenticated is True,
        copies=copies,
        too_large=mail.too_large,
    )


def _command_over_words(
    subject: str | None, text: str, customer_command: Callable[[str], CommandShape | None] | None
) -> bool:
    """Is `subject` a customer's command naming an incident, written whole, and `text`, the body,
    words about it rather than a command of its own ("close 12" over "status 3": the body's)?"""
    if customer_command is None or subject is None or not text.strip():
        return False
    first_line = text.strip().split("\n", 1)[0]
    return customer_command(subject) == "names_case" and customer_command(first_line) is None
