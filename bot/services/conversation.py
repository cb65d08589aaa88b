"""What a customer's message does (SPEC §2-§3): which incident it joins, the draft kept while
the bot asks a question (bot.services.drafts), asking before a second credit is spent, and
what a message about a resolved incident leads to (`reopen N`, free until `reopen_until`).

The transitions themselves (opening, adding a message, reopening) are bot.services.incidents;
like them, nothing here says anything: the customer handlers render what is returned.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Literal, NamedTuple, TypeVar

from sqlalchemy import select
from sqlmodel import Session

from adapters.channel import Inbound
from bot.config import Settings
from bot.deployment import Deployment
from bot.policy import CreditSummary, NoCredit
from bot.policy.answers import bare_answer, thank_you
from bot.services import attachments, case_threads, credits, drafts, incidents
from bot.services.incidents import Writer, may_reopen, reopen_until
from storage import outbox
from storage.models import CreditPack, Draft, Incident, IncidentAttachment, IncidentMessage, Outbox

#: The bot's latest mails to a sender that a reply is looked for among (`starts_a_conversation`).
_BOT_MAILS_LOOKED_AT = 500


class Opened(NamedTuple):
    incident: Incident
    #: The pack the credit came from.
    pack: CreditPack
    #: What the incident opened with: the text given with `open`, or the draft `open` alone used.
    body: str
    #: A draft that `open <other text>` did not use (and dropped): the answer says so.
    dropped_draft: bool = False
    #: Mention `DESKBOT_URGENT_NOTIFY` (`incidents.take_urgent_notice`).
    urgent: bool = False
    #: It opened with the draft, whose files (now the incident's) are these, and whose message copied these people.
    from_draft: bool = False
    files: tuple[IncidentAttachment, ...] = ()
    copies: tuple[str, ...] = ()
    #: It opened with a text that joined this open incident first (`drafts.JOINED`), where it stays.
    moved_from: int | None = None


class AskFirst(NamedTuple):
    """`open` while incidents are open: nothing charged; the text waits (a draft) for `open` again or `#N`."""

    open_incidents: list[Incident]
    credits: CreditSummary


def open_with_draft(
    session: Session,
    deployment: Deployment,
    now: datetime,
    writer: Writer,
    text: str | None,
    subject_hint: str | None = None,
) -> Opened | AskFirst | NoCredit | None:
    """`open [text]`: a new incident for one credit, opened with `text`, or, with `open` alone
    (or `open` and the very text kept), with the draft that waits for `open` (bot.services.drafts).
    A draft is never glued to other text.

    None when there is nothing to open it with. With an incident open already, a second credit
    is spent only when the customer was asked and answered `open` again within
    `drafts.CONFIRM_WINDOW`; otherwise the text is kept and the customer asked (`AskFirst`).
    Without a credit the text is kept for an `open` after buying more, and nothing is charged.
    The credit is one valid when the customer wrote, or else one valid now (`_credit`).
    """
    identity_id = writer.identity.id
    draft = drafts.current(session, identity_id, now)
    retyped = draft is not None and bool(text) and " ".join(text.split()) == " ".join(draft.text.split())
    used = draft if (not text or retyped) and drafts.opens(draft) else None
    body = used.text if used is not None else text
    if not body:
        return None
    already_open = incidents.customer_incidents(session, writer.customer.id, (incidents.OPEN,))
    if already_open and not drafts.confirmed(used, now):
        position = _credit(credits.could_open, session, deployment.settings, now, writer)
        if isinstance(position, NoCredit):
            drafts.keep(session, identity_id, body, now, drafts.OPEN, copies=writer.copies)
            return position
        drafts.keep(session, identity_id, body, now, drafts.EITHER, copies=writer.copies)
        return AskFirst(already_open, position)
    charged = _credit(credits.take_credit, session, deployment.settings, now, writer)
    if isinstance(charged, NoCredit):
        drafts.keep(session, identity_id, body, now, drafts.OPEN, copies=writer.copies)
        return charged
    incident = incidents.open_incident(session, deployment, now, writer, body, charged.id, subject_hint)
    files = tuple(attachments.claim_waiting(session, identity_id, incident)) if used is not None else ()
    drafts.discard(session, draft)
    urgent = incidents.take_urgent_notice(deployment.settings, now, incident)
    waited = drafts.waiting_copies(used)
    # A text kept while asked about reopening, or about a separate issue, is on that incident
    # already: nothing of it was dropped.
    dropped = draft is not None and used is None and not drafts.on_an_incident(draft)
    moved_from = used.incident_id if used is not None and used.awaits == drafts.JOINED else None
    return Opened(incident, charged, body, dropped, urgent, used is not None, files, waited, moved_from)


Found = TypeVar("Found")


def _credit(
    ask: Callable[[Session, int, date], Found | NoCredit],
    session: Session,
    settings: Settings,
    now: datetime,
    writer: Writer,
) -> Found | NoCredit:
    """`ask` (`credits.could_open`, `credits.take_credit`) about the day the customer wrote
    (`Writer.wrote_at`: a pack valid then is theirs, though the bot read the message after it
    lapsed), and when that day has no credit, about today (a pack dated ahead may be valid since:
    no "valid from" a day that has come). Why there is none today when neither has one."""
    wrote, today = settings.today(writer.wrote_at(now)), settings.today(now)
    found = ask(session, writer.customer.id, wrote)
    return ask(session, writer.customer.id, today) if isinstance(found, NoCredit) and wrote != today else found


class AddedTo(NamedTuple):
    """What became of a customer's text for an incident.

    "added": on an open incident. "resolved": on a resolved one, which stays resolved; the text
    waits (a draft) for `reopen N` (free until `reopen_until`) or `open`. "too_late": on one
    resolved longer ago than that; the text waits for `open`. "finished": the
    incident is closed and takes no more messages; the text waits for `open`. "empty": no text,
    and no draft waiting for `#N`.
    """

    outcome: Literal["added", "resolved", "too_late", "finished", "empty"]
    #: What was added (or kept as a draft).
    text: str = ""
    incident: Incident | None = None
    #: The text was the draft `#N` alone used, whose files (now the incident's) are these, and whose
    #: message copied these people.
    from_draft: bool = False
    files: tuple[IncidentAttachment, ...] = ()
    copies: tuple[str, ...] = ()
    #: "resolved" and "too_late": the text waits as a draft (not a bare thank-you, `thank_you`).
    kept: bool = True
    #: "resolved": until when the incident may be reopened at no charge (`reopen_until`).
    reopen_until: datetime | None = None
    #: "added": the case waits on the customer still (the team answered last), for the text asked
    #: the team for nothing (a bare thank-you: bot.policy.response_clock) and started no clock.
    asks_nothing: bool = False


def add_to_incident(
    session: Session,
    settings: Settings,
    now: datetime,
    writer: Writer,
    incident: Incident,
    text: str,
    *,
    with_files: bool = False,
    keep: bool = True,
) -> AddedTo:
    """`#N text` on the writer's own incident (`#N` alone: the draft that waits for it; with no
    such draft, files alone when the message brought some, `with_files`: a screenshot by mail).
    `keep` False: on a resolved incident the text is only added, not also kept for the `reopen N`
    or `open` the customer would be asked about (the words of a command that says what next)."""
    files: tuple[IncidentAttachment, ...] = ()
    waited: tuple[str, ...] = ()
    draft = drafts.current(session, writer.identity.id, now) if not text else None
    from_draft = not text and (drafts.joins_a_case(draft) or not with_files)
    if from_draft:
        if not drafts.joins_a_case(draft):
            return AddedTo("empty")
        assert draft is not None
        text = draft.text
        if incident.state != incidents.CLOSED:
            files = tuple(attachments.claim_waiting(session, writer.identity.id, incident))
            waited = drafts.waiting_copies(draft)
            drafts.discard(session, draft)
            session.flush()
    if incident.state == incidents.CLOSED:
        # Kept for `open` (the same text: the files that came with it go on waiting).
        drafts.keep(session, writer.identity.id, text, now, drafts.OPEN, copies=writer.copies)
        return AddedTo("finished", text, incident)
    added = _add(session, settings, now, writer, incident, text, keep=keep, with_files=with_files or bool(files))
    return added._replace(from_draft=from_draft, files=files, copies=waited)


class NotKept(NamedTuple):
    """A bare thank-you, "ok" or "no" with no incident to take it (after a reminder, or after an
    answer on an incident closed since): not the text of an incident, so not kept as one, and
    a draft kept before it stays."""

    thanks: bool


def add_free_text(
    session: Session, settings: Settings, now: datetime, writer: Writer, text: str, with_files: bool = False
) -> AddedTo | list[Incident] | NotKept:
    """A message without a command or number: added to the writer's one open incident (or, with
    none open, the one the customer may still reopen at no charge); otherwise kept as a draft, and
    the incidents it might be about are returned (none, or several) for the customer to choose."""
    candidates = incidents.free_text_candidates(session, settings, writer.customer.id, now)
    if len(candidates) == 1:
        return _add(session, settings, now, writer, candidates[0], text, with_files=with_files)
    if not candidates and not with_files and (thank_you(text) or bare_answer(text) is not None):
        return NotKept(thanks=thank_you(text))
    drafts.keep(
        session, writer.identity.id, text, now, drafts.EITHER if candidates else drafts.OPEN, copies=writer.copies
    )
    return candidates


def starts_a_conversation(session: Session, message: Inbound, incident: Incident) -> bool:
    """Does `message`, which joined `incident` by the "any other text" rule, begin a conversation of
    its own? On email: a mail that names no incident in its subject (`[#N]`) and answers none of
    the bot's mails nor any mail on `incident` (a new mail, or a reply in some other thread). The
    other channels have no threads (one conversation per person): never."""
    if message.channel != case_threads.EMAIL or message.case_hint is not None:
        return False
    answered = set(message.replies_to)
    if not answered:
        return True
    if outbox.posted_incident(session, message.channel, message.replies_to) is not None:
        return False
    chains = session.scalars(
        select(IncidentMessage.conversation).where(
            IncidentMessage.incident_id == incident.id,
            IncidentMessage.channel == message.channel,
            # The message itself (on the incident already): its chain names what it answers.
            IncidentMessage.conversation != message.conversation,
        )
    )
    if any(answered & set((chain or "").split()) for chain in chains):
        return False
    sent = session.scalars(
        select(Outbox.platform_ids)
        .where(Outbox.channel == message.channel, Outbox.recipient == message.sender, Outbox.platform_ids.is_not(None))
        .order_by(Outbox.id.desc())
        .limit(_BOT_MAILS_LOOKED_AT)
    )
    return not any(answered & set(json.loads(ids)) for ids in sent if ids)


def in_the_thread_asked(session: Session, draft: Draft, message: Inbound) -> bool:
    """Does `message` continue the conversation of the message whose text `draft` keeps, the one
    the bot's question answered? On email: a reply in that mail's thread, not in an older thread
    of the incident (where a "yes" answers an engineer's question). Other channels: always."""
    if message.channel != case_threads.EMAIL or draft.incident_id is None:
        return True
    chains = session.scalars(
        select(IncidentMessage.conversation).where(
            IncidentMessage.incident_id == draft.incident_id,
            IncidentMessage.identity_id == draft.identity_id,
            IncidentMessage.direction == "in",
            IncidentMessage.created_at == draft.created_at,
        )
    )
    asked = {chain.split()[-1] for chain in chains if chain}
    return bool(asked & set(message.replies_to))


def offer_new_incident(session: Session, now: datetime, writer: Writer, incident: Incident, text: str) -> None:
    """`text`, which joined the open `incident` and began a conversation of its own, waits for
    `open` as a separate issue (`drafts.JOINED`), for as long as a draft is kept."""
    drafts.keep(session, writer.identity.id, text, now, drafts.JOINED, incident.id, writer.copies)


def _add(
    session: Session,
    settings: Settings,
    now: datetime,
    writer: Writer,
    incident: Incident,
    text: str,
    keep: bool = True,
    with_files: bool = False,
) -> AddedTo:
    incidents.add_message(session, settings, now, writer, incident, text, with_files=with_files)
    if incident.state == incidents.OPEN:
        # Its clock stopped still: the team answered last, and this asked for no answer.
        return AddedTo("added", text, incident, asks_nothing=incident.due_at is None)
    if incident.state != incidents.RESOLVED:
        return AddedTo("added", text, incident)
    # A thank-you for a resolved incident is on it, and kept for nothing: no new incident is
    # ever opened with "Thanks!" as its text.
    kept = keep and not thank_you(text)
    # Judged now, not when the customer wrote: the `reopen N` it asks for comes later still.
    tz = settings.calendar.tz
    if may_reopen(incident, now, tz):
        if kept:
            drafts.keep(session, writer.identity.id, text, now, drafts.REOPEN, incident.id, writer.copies)
        return AddedTo("resolved", text, incident, kept=kept, reopen_until=reopen_until(incident, tz))
    if kept:
        drafts.keep(session, writer.identity.id, text, now, drafts.OPEN, copies=writer.copies)
    return AddedTo("too_late", text, incident, kept=kept)


def customer_reopen(
    session: Session, settings: Settings, now: datetime, writer: Writer, incident: Incident
) -> Literal["reopened", "open", "closed", "too_late"]:
    """`reopen N`: the customer reopens their incident at no charge, asked before `reopen_until`,
    with a new due time; both count from when they wrote (`Writer.wrote_at`), as a credit's day
    does. A draft that waits for it (its text is on the incident) is dropped."""
    if incident.state == incidents.OPEN:
        return "open"
    if incident.state == incidents.CLOSED:
        return "closed"
    asked = writer.wrote_at(now)
    if not may_reopen(incident, asked, settings.calendar.tz):
        return "too_late"
    incidents.reopen(session, settings, now, writer.identity.address, incident, "reopened by customer", asked_at=asked)
    draft = drafts.current(session, writer.identity.id, now)
    if draft is not None and draft.awaits == drafts.REOPEN and draft.incident_id == incident.id:
        drafts.discard(session, draft)
    return "reopened"
