"""People a customer copies on an incident (issue 17): their replies in its thread, and the lines the
case topic shows when someone is copied or no longer is. The engineers' `/cc` is in
bot.handlers.engineer; the rules are bot.services.copies."""

from __future__ import annotations

from adapters.channel import Said
from adapters.markup import inert
from bot.context import Context
from bot.i18n import _, render
from bot.services import attachments, incidents
from bot.services.incidents import Writer
from storage.models import Incident


def add_reply(ctx: Context, incident: Incident) -> None:
    """A message from someone copied on `incident` that continues its thread: kept on it and shown in
    its topic under their own name, like the customer's messages (it starts the response clock of
    an open case, and leaves a resolved or closed one as it is). Nothing is said to them: they read
    the answers in copy; and nothing is opened or charged."""
    ctx.answer_gate = lambda _text: False
    ctx.incident_id = incident.id
    customer = incidents.customer_of(ctx.session, incident)
    assert customer is not None  # foreign key
    text = ctx.message.text.strip()
    # Their message starts the clock as the customer's would: from when they wrote.
    writer = Writer(customer, ctx.identity, ctx.message.conversation, arrived=ctx.arrived)
    incidents.add_message(
        ctx.session, ctx.settings, ctx.now, writer, incident, text, with_files=bool(ctx.message.attachments)
    )
    files = attachments.record(ctx.session, ctx.now, incident, ctx.message)
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is None:
        return
    # The channel writes the header and keeps every part of it inert.
    name = render(
        "en", _("{name}, copied by {customer}"), name=ctx.identity.display_name or "", customer=customer.name
    ).lstrip(", ")
    said = Said(name, ctx.identity.channel, ctx.identity.address, subject=ctx.message.subject_hint)
    ctx.out.say(topic, "", quote=text, said=said, files=attachments.shown(files), incident_id=incident.id)
    if incident.state != incidents.OPEN:
        ctx.out.say(topic, render("en", _("(The case stays {state}.)"), state=incident.state), incident_id=incident.id)


def copied(ctx: Context, incident: Incident, addresses: list[str], by: str) -> None:
    """The case topic says who is copied on the case from now on, and by whom (the customer's name, by
    their mail, or the engineer's)."""
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is None or not addresses:
        return
    ctx.out.say(
        topic,
        render(
            "en",
            _("📧 Copied on every answer from now on: {addresses} (added by {who})."),
            addresses=", ".join(inert(a) for a in addresses),
            who=inert(by),
        ),
        incident_id=incident.id,
    )


def uncopied(ctx: Context, incident: Incident, address: str, by: str) -> None:
    """The case topic says who is no longer copied, and which engineer removed them."""
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is None:
        return
    ctx.out.say(
        topic,
        render("en", _("📧 No longer copied: {address} (removed by {who})."), address=inert(address), who=inert(by)),
        incident_id=incident.id,
    )
