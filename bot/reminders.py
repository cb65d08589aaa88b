"""Credit expiry reminders: a customer with unused credits in a pack whose last valid day is near
(`DESKBOT_CREDIT_REMINDER_DAYS`, 30 by default) is told once, on the account they last wrote
from, in their language. Credits are money paid: told a month ahead, a customer can still use
them or plan the next pack. Sent in service hours only (a customer may want to answer, and a
reminder at 3 a.m. is noise); run by the watcher beside the response-target warnings."""

from __future__ import annotations

import logging
from collections.abc import Collection

from bot.config import Settings
from bot.i18n import _, format_day, n_, render, render_plural
from bot.policy import pack_expires_on
from bot.services import credits, customers
from bot.services.outgoing import Direct, Outgoing
from storage.models import Customer

log = logging.getLogger("deskbot.reminders")


def remind_expiring_credits(out: Outgoing, settings: Settings, channels: Collection[str]) -> list[int]:
    """Write the reminders due at `out.now` (each pack's once); the ids of the packs reminded."""
    days = settings.credit_reminder_days
    if days <= 0 or not settings.calendar.is_open(out.now):
        return []
    reminded: list[int] = []
    for pack in credits.packs_to_remind(out.session, settings.today(out.now), days):
        customer = out.session.get_one(Customer, pack.customer_id)
        account = customers.latest_account(out.session, pack.customer_id, channels)
        if account is None:
            continue  # no account on a channel this deployment runs: asked again on the next pass
        if not credits.claim_reminder(out.session, pack, out.now):
            continue  # another pass reminded them a moment ago
        lang = customer.lang or "en"
        left = pack.incidents - pack.used
        expiry = format_day(pack_expires_on(pack.purchased), lang)
        text = "\n".join(
            [
                render_plural(
                    lang,
                    left,
                    n_(
                        "A reminder: {left} support credit from the pack you bought on {bought} is still unused. It can be used until {expiry} inclusive; after that day it lapses.",
                        "A reminder: {left} support credits from the pack you bought on {bought} are still unused. They can be used until {expiry} inclusive; after that day they lapse.",
                    ),
                    left=left,
                    bought=format_day(pack.purchased, lang),
                    expiry=expiry,
                ),
                render(lang, _('To open an incident, send "open" followed by what it is about.')),
            ]
        )
        subject = render(lang, _("Your support credits lapse after {expiry}"), expiry=expiry)
        out.say(Direct(account.channel, account.address, subject=subject), text)
        reminded.append(pack.id or 0)
        log.info("credit expiry reminder written", extra={"customer_id": customer.id, "pack_id": pack.id})
    return reminded
