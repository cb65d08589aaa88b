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
from bot.services import credits, customers
from bot.services.outgoing import Direct, Outgoing
from storage.models import CreditPack, Customer

log = logging.getLogger("deskbot.reminders")


def remind_expiring_credits(out: Outgoing, settings: Settings, channels: Collection[str]) -> list[int]:
    """Write the reminders due at `out.now` (each pack's once); the ids of the customers reminded.

    A customer with several packs due in the same pass (bought on one day, imported together
    at go-live, come due over a weekend) gets one message that lists them."""
    days = settings.credit_reminder_days
    if days <= 0 or not settings.calendar.is_open(out.now):
        return []
    due: dict[int, list[CreditPack]] = {}
    for pack in credits.packs_to_remind(out.session, settings.today(out.now), days):
        due.setdefault(pack.customer_id, []).append(pack)
    reminded: list[int] = []
    for customer_id, packs in due.items():
        account = customers.latest_account(out.session, customer_id, channels)
        if account is None:
            continue  # no account on a channel this deployment runs: asked again on the next pass
        # Another pass may have reminded them of some a moment ago.
        claimed = [pack for pack in packs if credits.claim_reminder(out.session, pack, out.now)]
        if not claimed:
            continue
        customer = out.session.get_one(Customer, customer_id)
        lang = customer.lang or "en"
        expiry = format_day(min(p.valid_until for p in claimed), lang)
        subject = render(lang, _("Your support credits lapse after {expiry}"), expiry=expiry)
        out.say(Direct(account.channel, account.address, subject=subject), _reminder_text(lang, claimed), lang=lang)
        reminded.append(customer_id)
        log.info(
            "credit expiry reminder written",
            extra={"customer_id": customer_id, "pack_ids": [p.id for p in claimed]},
        )
    return reminded


def _reminder_text(lang: str, packs: list[CreditPack]) -> str:
    def values(pack: CreditPack) -> dict[str, object]:
        return {
            "left": credits.left_in(pack),
            "bought": format_day(pack.purchased, lang),
            "expiry": format_day(pack.valid_until, lang),
        }

    if len(packs) == 1:
        (pack,) = packs
        lines = [
            render_plural(
                lang,
                credits.left_in(pack),
                n_(
                    "A reminder: {left} support credit from the pack you bought on {bought} is still unused. It can be used until {expiry} inclusive; after that day it lapses.",
                    "A reminder: {left} support credits from the pack you bought on {bought} are still unused. They can be used until {expiry} inclusive; after that day they lapse.",
                ),
                **values(pack),
            )
        ]
    else:
        lines = [
            render(lang, _("A reminder: support credits you have not used yet lapse soon.")),
            *(
                render_plural(
                    lang,
                    credits.left_in(pack),
                    n_(
                        "• {left} credit from the pack you bought on {bought}: it can be used until {expiry} inclusive",
                        "• {left} credits from the pack you bought on {bought}: they can be used until {expiry} inclusive",
                    ),
                    **values(pack),
                )
                for pack in packs
            ),
            render(lang, _("After a pack's last day, its unused credits lapse.")),
        ]
    lines.append(render(lang, _('To open an incident, send "open" followed by what it is about.')))
    return "\n".join(lines)
