"""A customer's words and files passed on: onto an incident and into its case topic, with one
answer for the files that were not (over a limit), shared by the commands that carry text
(`open`) and by plain messages (bot.handlers.customer_text)."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.channel import WHOLE_MESSAGE, Said, size_text
from bot.context import Context
from bot.i18n import _
from bot.services import attachments, conversation, incidents
from bot.services.conversation import AddedTo
from bot.services.incidents import Writer
from storage.models import Incident, IncidentAttachment


def writer(ctx: Context) -> Writer:
    """The customer of the message as the incident rules see them, with when they wrote."""
    assert ctx.customer is not None
    return Writer(ctx.customer, ctx.identity, ctx.message.conversation, ctx.message.copies, ctx.arrived)


def files_wait(ctx: Context) -> None:
    """The message's text was kept as a draft: its files wait with it, for the incident it goes to."""
    if ctx.message.attachments:
        attachments.wait_with_draft(ctx.session, ctx.now, ctx.identity.id, ctx.message)


def add_words(ctx: Context, incident: Incident, text: str, *, keep: bool = True) -> AddedTo:
    """Words that come with a command (`reopen N text`, "close 12 thanks…") onto `incident` and
    into its case topic, with the message's files and the people it copied; `keep` as for
    `conversation.add_to_incident`."""
    added = conversation.add_to_incident(
        ctx.session,
        ctx.settings,
        ctx.now,
        writer(ctx),
        incident,
        text,
        with_files=bool(ctx.message.attachments),
        keep=keep,
    )
    ctx.draft_copies = added.copies
    mirror(ctx, added.incident or incident, added.text, added.files)
    return added


def mirror(ctx: Context, incident: Incident, text: str, waited: Sequence[IncidentAttachment] = ()) -> None:
    """The customer's words in the case topic, with the files that came with them (`waited`: those
    that waited with them as a draft); the channel writes the header and keeps the words inert."""
    ctx.incident_id = incident.id
    files = [*waited, *attachments.record(ctx.session, ctx.now, incident, ctx.message)]
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is not None:
        assert ctx.customer is not None
        # A file within our limit may still be over the case topic's own (Zulip's upload limit):
        # it is then not kept either, and the customer is told below, as for ours.
        attachments.hold_to_limit(files, lambda file: ctx.deployment.cannot_carry(topic.channel, file))
        said = Said(
            ctx.customer.name,
            ctx.identity.channel,
            ctx.identity.address,
            subject=ctx.message.subject_hint,
            edited=ctx.message.edit_of is not None,
        )
        ctx.out.say(topic, "", quote=text, said=said, files=attachments.shown(files), incident_id=incident.id)
    tell_refused(ctx, [file for file in files if file.refused_over is not None])


def tell_refused(ctx: Context, refused: Sequence[IncidentAttachment]) -> None:
    """One answer for the files of a message that were not passed on, however many (a mail may
    carry dozens, and each answer is a mail of its own there); for a mail too large to read, also
    that its text never came, so that the sender sends it again."""
    too_large = ctx.message.too_large
    if len(refused) == 1 and not too_large and refused[0].size > (refused[0].refused_over or 0):
        (file,) = refused
        ctx.reply(
            _(
                'Your file "{name}" ({size}) was not passed on: it is over the limit of {limit}. The engineers know; please send a smaller file or a link to it.'
            ),
            name=ctx.theirs(file.name),
            size=size_text(file.size),
            limit=size_text(file.refused_over or 0),
        )
        return
    if not refused and not too_large:
        return
    if too_large:
        header = _(
            "Your message was over the size limit, so neither its text nor its files were passed on. The engineers know; please send the text again, with smaller files or links to them."
        )
    else:
        header = _("Not passed on (the engineers know; please send smaller files or links to them):")
    ctx.reply_text("\n".join([ctx.t(header), *("— " + refused_line(ctx, file) for file in refused)]))


def refused_line(ctx: Context, file: IncidentAttachment) -> str:
    """A file not passed on, in a list: over the limit itself, or in a mail over it (only the
    mail's headers were read: every file it carried stays out, however small)."""
    name = ctx.t(_("the whole message")) if file.name == WHOLE_MESSAGE else ctx.theirs(file.name)
    values = {"name": name, "size": size_text(file.size), "limit": size_text(file.refused_over or 0)}
    if file.refused_over is not None and file.size <= file.refused_over:
        return ctx.t(_("{name} ({size}): not passed on, in a message over the limit of {limit}"), **values)
    return ctx.t(_("{name} ({size}): not passed on, over the limit of {limit}"), **values)
