"""Pure support policy: the business calendar and the entitlement rules.

Functions of their inputs and a clock the caller passes in; no database,
no I/O, no reading of the current time.
"""

from bot.policy.calendar import BusinessCalendar, ServiceHours
from bot.policy.entitlements import (
    CreditSummary,
    NoCredit,
    Pack,
    PackStatus,
    choose_pack,
    consume,
    credits_left,
    expiry_reminder_due,
    give_back,
    months_after,
    pack_expires_on,
    pack_is_valid,
    summarise,
    unusable_because,
)

__all__ = [
    "BusinessCalendar",
    "CreditSummary",
    "NoCredit",
    "Pack",
    "PackStatus",
    "ServiceHours",
    "choose_pack",
    "consume",
    "credits_left",
    "expiry_reminder_due",
    "give_back",
    "months_after",
    "pack_expires_on",
    "pack_is_valid",
    "summarise",
    "unusable_because",
]
