"""The monthly billing report: chargeable incidents per customer, priced from the settings.

An incident is billed in the month it was opened, with the month's boundaries
taken in the service time zone (an incident opened at 00:30 Lisbon time on
1 March belongs to March even though it is still February in UTC). Incidents
an engineer marked as a vendor bug (`chargeable` false) are not billed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from bot.numbers import MONTHS, month
from storage.models import Customer, Incident

CENT = Decimal("0.01")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """`YYYY-MM` (from 2000-01 to 2099-12: bot.numbers); ValueError with a one-line reason otherwise."""
        parsed = month(text)
        if parsed is None:
            raise ValueError(f"expected a month YYYY-MM from {MONTHS}, got {text!r}")
        return cls(*parsed)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) of the month in `tz`, as aware UTC instants."""
        following = self.next()
        start = datetime(self.year, self.month, 1, tzinfo=tz)
        end = datetime(following.year, following.month, 1, tzinfo=tz)
        return start.astimezone(UTC), end.astimezone(UTC)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class BillingLine:
    customer_id: int
    customer: str
    #: The chargeable incident numbers opened in the month, ascending.
    incidents: tuple[int, ...]
    amount: Decimal

    @property
    def count(self) -> int:
        return len(self.incidents)


@dataclass(frozen=True)
class BillingReport:
    month: Month
    timezone: str
    unit_price: Decimal
    currency: str
    #: One line per customer with at least one chargeable incident, by customer name.
    lines: tuple[BillingLine, ...]

    @property
    def total_incidents(self) -> int:
        return sum(line.count for line in self.lines)

    @property
    def total_amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0")).quantize(CENT)


def billing_report(session: Session, month: Month, tz: ZoneInfo, unit_price: Decimal, currency: str) -> BillingReport:
    """Chargeable incidents opened in `month` (in `tz`), per customer, at `unit_price` each (net)."""
    start, end = month.bounds(tz)
    rows = session.execute(
        select(Incident.id, Customer.id, Customer.name)
        .join(Customer, Customer.id == Incident.customer_id)
        .where(Incident.chargeable.is_(True), Incident.opened_at >= start, Incident.opened_at < end)
        .order_by(Incident.id)
    ).all()
    per_customer: dict[int, tuple[str, list[int]]] = {}
    for incident_id, customer_id, name in rows:
        per_customer.setdefault(customer_id, (name, []))[1].append(incident_id)
    price = unit_price.quantize(CENT)
    lines = tuple(
        sorted(
            (
                BillingLine(customer_id, name, tuple(numbers), (price * len(numbers)).quantize(CENT))
                for customer_id, (name, numbers) in per_customer.items()
            ),
            key=lambda line: (line.customer.casefold(), line.customer_id),
        )
    )
    return BillingReport(month=month, timezone=tz.key, unit_price=price, currency=currency, lines=lines)
