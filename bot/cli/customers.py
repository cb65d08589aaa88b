"""`deskbot customers …`: customer records, their linked chat accounts, credits and cases."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

import typer
from sqlalchemy import func, select
from sqlmodel import Session

from bot.cli.context import (
    CliError,
    CustomerArg,
    JsonFlag,
    customer_or_fail,
    echo,
    iso,
    local,
    now,
    out,
    print_json,
    session_of,
    settings,
    table,
    today,
)
from bot.cli.erase import customers_erase
from bot.config import Settings
from bot.policy import CreditSummary, summarise
from bot.services import credits as credit_service
from bot.services import customers as service
from bot.services import incidents as incident_service
from bot.services.customers import CODE_VALIDITY
from storage.models import CreditPack, Customer, Identity, Incident

customers_app = typer.Typer(
    help="Customer records: add, list, show; their language and email addresses; erase one.", no_args_is_help=True
)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ACCT = re.compile(r"@?([^@\s/]+)@([^@\s/]+)")


class Language(StrEnum):
    """A reply language as the CLI takes it; `auto`: none chosen (English until the customer writes
    in Portuguese)."""

    en = "en"
    pt = "pt"
    auto = "auto"

    def chosen(self) -> str | None:
        return None if self is Language.auto else self.value


def _email(value: str | None, option: str = "--email") -> str | None:
    if value is None:
        return None
    if not _EMAIL.fullmatch(value.strip()):
        raise typer.BadParameter(f"expected an email address, got {value!r}", param_hint=f"'{option}'")
    return value.strip()


def _mastodon_acct(value: str | None) -> str | None:
    """`user@host` as the Mastodon channel stores it: no leading @, all in lower case."""
    if value is None:
        return None
    match = _ACCT.fullmatch(value.strip())
    if match is None:
        raise typer.BadParameter(f"expected user@host, got {value!r}", param_hint="'--mastodon-acct'")
    return f"{match.group(1)}@{match.group(2)}".lower()


def _zulip_account(config: Settings, email: str) -> str:
    """The key of the Zulip account `email` names: its user id, looked up on Zulip (SPEC §3).

    Zulip shows the bot an address only where the account lets it (email visibility); elsewhere
    the way to link the account is the activation code, and the error says so.
    """
    instead = "add the customer without --zulip-email and give them the activation code (they send: link CODE)"
    if not config.zulip_configured:
        raise CliError(
            "--zulip-email: the Zulip account is linked by its user id, looked up on Zulip, and the Zulip settings"
            f" (ZULIP_SITE, ZULIP_EMAIL, ZULIP_API_KEY or ZULIP_CONFIG) are not set; {instead}"
        )
    from adapters.channel import ChannelError
    from bot.runtime import zulip_channel

    channel = zulip_channel(config)
    try:
        user_id = channel.user_id_of(email)
    except ChannelError as exc:
        raise CliError(f"--zulip-email: cannot look {email} up on Zulip: {exc}") from None
    finally:
        channel.close()
    if user_id is None:
        raise CliError(
            f"--zulip-email: Zulip shows the bot no account with the address {email} (the organisation may"
            f" restrict who sees email addresses, or there is no such account); nothing was created: {instead}"
        )
    return str(user_id)


@customers_app.command("add")
def customers_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The customer's name (unique, not only digits).")],
    email: Annotated[
        list[str] | None,
        typer.Option(
            "--email",
            help="An email address of the customer: mail from it is theirs at once. Repeat it for each"
            " address (the first is the contact address).",
        ),
    ] = None,
    zulip_email: Annotated[
        str | None,
        typer.Option(
            "--zulip-email",
            help="Link this Zulip account to the customer: its address is looked up on Zulip (the Zulip"
            " settings), and linked by user id; where the organisation hides it, use the activation code.",
        ),
    ] = None,
    mastodon_acct: Annotated[
        str | None, typer.Option("--mastodon-acct", help="Link this Mastodon account (user@host) to the customer.")
    ] = None,
    lang: Annotated[
        Language | None,
        typer.Option(
            "--lang",
            metavar="en|pt|auto",
            case_sensitive=False,
            help="Reply language. Without it (or auto): English until the customer writes in Portuguese, then"
            " Portuguese.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a customer; prints its id and a one-time activation code (valid 14 days)."""
    emails = list(dict.fromkeys(address for given in email or () if (address := _email(given))))
    zulip = _email(zulip_email, "--zulip-email")
    config = settings()
    accounts = [("zulip", _zulip_account(config, zulip))] if zulip else []
    if (acct := _mastodon_acct(mastodon_acct)) is not None:
        accounts.append(("mastodon", acct))
    moment = now()
    with session_of(config) as session:
        customer, code = service.create_customer(
            session, name, emails[0] if emails else None, lang.chosen() if lang else None, moment
        )
        for other in emails[1:]:
            service.add_email(session, customer, other, moment)
        for channel, address in accounts:
            service.link_identity(session, customer, channel, address, moment)
        addresses = service.email_addresses(session, customer)
    expires = moment + CODE_VALIDITY
    if as_json:
        print_json(
            {
                "id": customer.id,
                "name": customer.name,
                "email": customer.email,
                "emails": addresses,
                "lang": customer.lang,
                "activation_code": code,
                "activation_code_expires_at": iso(expires),
                "identities": [{"channel": c, "address": a} for c, a in accounts],
            }
        )
        return
    echo(f"Customer {customer.id} created: {customer.name}")
    echo(
        f"Activation code: {code} (single use, valid until {local(expires, config.calendar.tz)};"
        f" the customer sends: link {code})"
    )
    for address in addresses:
        echo(f"Linked email address {address}")
    for channel, address in accounts:
        shown = f"{zulip.lower()} (Zulip user {address})" if channel == "zulip" and zulip else address
        echo(f"Linked {channel} account {shown}")


@customers_app.command("lang")
def customers_lang(
    customer: CustomerArg,
    language: Annotated[
        Language,
        typer.Argument(
            metavar="en|pt|auto",
            case_sensitive=False,
            help="The reply language; auto: none chosen, English until the customer writes in Portuguese.",
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Choose the language a customer is answered in (the customer may still change it with "lang")."""
    with session_of(settings()) as session:
        found = customer_or_fail(session, customer)
        service.choose_language(found, language.chosen())
        document = {"id": found.id, "name": found.name, "lang": found.lang}
        label = service.language_label(found)
    if as_json:
        print_json(document)
    else:
        echo(f"{document['name']} · language: {label}")


email_app = typer.Typer(
    help="A customer's email addresses: mail from any of them is the customer's.", no_args_is_help=True
)
customers_app.add_typer(email_app, name="email")
# Declared in a module of its own: an erasure touches every table (bot.services.erasure).
customers_app.command("erase")(customers_erase)
_ADDRESS = Annotated[str, typer.Argument(metavar="ADDRESS", help="An email address.")]


@email_app.command("add")
def email_add(customer: CustomerArg, address: _ADDRESS, as_json: JsonFlag = False) -> None:
    """Give the customer another email address: mail from it is theirs at once, no code needed."""

    def add(session: Session, found: Customer, value: str) -> str:
        added = service.add_email(session, found, value, now())
        return f"{value.lower()} is {'now' if added else 'already'} an email address of {found.name}"

    _change_email(customer, address, as_json, add)


@email_app.command("remove")
def email_remove(customer: CustomerArg, address: _ADDRESS, as_json: JsonFlag = False) -> None:
    """Mail from the address is no longer the customer's (their cases and history stay)."""

    def remove(session: Session, found: Customer, value: str) -> str:
        if not service.remove_email(session, found, value):
            raise CliError(f"{value.lower()!r} is not an email address of {found.name!r}")
        return f"{value.lower()} is no longer an email address of {found.name}"

    _change_email(customer, address, as_json, remove)


def _change_email(customer: str, address: str, as_json: bool, change: Callable[[Session, Customer, str], str]) -> None:
    """Apply `change` (which says what it did) to the customer's addresses; print what it said, or
    the customer's addresses as JSON."""
    value = _address(address)
    with session_of(settings()) as session:
        found = customer_or_fail(session, customer)
        said = change(session, found, value)
        document = {"id": found.id, "name": found.name, "emails": service.email_addresses(session, found)}
    if as_json:
        print_json(document)
    else:
        echo(said)


def _address(value: str) -> str:
    if not _EMAIL.fullmatch(value.strip()):
        raise typer.BadParameter(f"expected an email address, got {value!r}", param_hint="'ADDRESS'")
    return value.strip()


@customers_app.command("list")
def customers_list(as_json: JsonFlag = False) -> None:
    """Every customer, with linked accounts, credits left and open cases."""
    config = settings()
    day = today(config)
    with session_of(config) as session:
        found = list(session.scalars(select(Customer).order_by(Customer.id)))
        packs: dict[int, list[CreditPack]] = defaultdict(list)
        for pack in session.scalars(select(CreditPack).order_by(CreditPack.id)):
            packs[pack.customer_id].append(pack)
        accounts = Counter(
            dict(session.execute(select(Identity.customer_id, func.count()).group_by(Identity.customer_id)).all())
        )
        open_cases = Counter(
            dict(
                session.execute(
                    select(Incident.customer_id, func.count())
                    .where(Incident.state == incident_service.OPEN)
                    .group_by(Incident.customer_id)
                ).all()
            )
        )
    records = []
    for customer in found:
        summary = summarise([credit_service.as_policy(p) for p in packs[customer.id]], day)
        records.append(
            {
                "id": customer.id,
                "name": customer.name,
                "email": customer.email,
                "lang": customer.lang,
                "accounts": accounts[customer.id],
                "credits_left": summary.total_left,
                "next_expiry": iso(summary.next_expiry),
                "open_cases": open_cases[customer.id],
            }
        )
    if as_json:
        print_json(records)
        return
    if not records:
        echo("No customers yet. Add one with: deskbot customers add NAME")
        return
    out().print(
        table(
            None,
            ["ID", "Name", "Email", "Lang", "Accounts", "Credits left", "First valid until", "Open cases"],
            (
                [
                    r["id"],
                    r["name"],
                    r["email"],
                    r["lang"] or "—",
                    r["accounts"],
                    r["credits_left"],
                    r["next_expiry"],
                    r["open_cases"],
                ]
                for r in records
            ),
        )
    )


@customers_app.command("show")
def customers_show(
    customer: CustomerArg,
    as_json: JsonFlag = False,
) -> None:
    """One customer: linked accounts, credit packs and cases."""
    config = settings()
    tz = config.calendar.tz
    with session_of(config) as session:
        found = customer_or_fail(session, customer)
        identities = list(
            session.scalars(select(Identity).where(Identity.customer_id == found.id).order_by(Identity.id))
        )
        packs = credit_service.packs_of(session, found.id)
        day = today(config)
        summary = summarise([credit_service.as_policy(p) for p in packs], day)
        incidents = incident_service.customer_incidents(
            session, found.id, (incident_service.OPEN, incident_service.RESOLVED, incident_service.CLOSED)
        )
        emails = service.email_addresses(session, found)
    document = _customer_document(found, identities, packs, summary, incidents)
    # Every address mail from is recognised by, the contact address first.
    document["emails"] = emails
    if as_json:
        print_json(document)
        return
    echo(f"{found.name} (id {found.id})")
    echo(
        f"email: {', '.join(document['emails']) or '—'} · language: {service.language_label(found)} · since {local(found.created_at, tz)}"
    )
    echo(
        f"credits left: {summary.total_left}"
        + (f", the first valid until {summary.next_expiry} inclusive" if summary.next_expiry else "")
    )
    console = out()
    console.print(
        table(
            "Accounts",
            ["Channel", "Address", "Name", "Last seen"],
            ([i.channel, i.address, i.display_name, local(i.last_seen_at, tz)] for i in identities),
        )
        if identities
        else "Accounts: none linked",
    )
    console.print(
        table(
            "Credit packs",
            ["Pack", "Bought", "Incidents", "Cancelled", "Used", "Left", "Valid until (inclusive)", "State"],
            (
                [
                    p["id"],
                    p["purchased"],
                    p["incidents"],
                    p["cancelled"] or "",
                    p["used"],
                    p["left"],
                    p["expires_on"],
                    _pack_state(p, day),
                ]
                for p in document["credits"]["packs"]
            ),
        )
        if packs
        else "Credit packs: none",
    )
    console.print(
        table(
            "Cases",
            ["#", "Subject", "State", "Chargeable", "Opened"],
            ([i.id, i.subject, i.state, i.chargeable, local(i.opened_at, tz)] for i in incidents),
        )
        if incidents
        else "Cases: none",
    )


def _pack_state(pack: dict[str, Any], day: date) -> str:
    """A pack as `customers show` says it: valid (and whether its customer was reminded that its
    credits lapse, bot.reminders), expired (after its last valid day), or not valid yet; and when
    and by whom credits of it were cancelled."""
    state = _validity(pack, day)
    if pack["cancelled"]:
        state += f"; {pack['cancelled']} cancelled on {pack['cancelled_at'][:10]} by {pack['cancelled_by']}"
    return state


def _validity(pack: dict[str, Any], day: date) -> str:
    if pack["valid"]:
        reminded = pack["expiry_reminded_at"]
        return f"valid; reminded of its end on {reminded[:10]}" if reminded else "valid"
    return "not valid yet" if pack["purchased"] > day.isoformat() else "expired"


def _customer_document(
    customer: Customer,
    identities: list[Identity],
    packs: list[CreditPack],
    summary: CreditSummary,
    incidents: list[Incident],
) -> dict[str, Any]:
    status = {s.pack.id: s for s in summary.packs}
    return {
        "id": customer.id,
        "name": customer.name,
        "email": customer.email,
        "lang": customer.lang,
        "created_at": iso(customer.created_at),
        "identities": [
            {
                "channel": i.channel,
                "address": i.address,
                "display_name": i.display_name,
                "last_seen_at": iso(i.last_seen_at),
            }
            for i in identities
        ],
        "credits": {
            "left": summary.total_left,
            "next_expiry": iso(summary.next_expiry),
            "packs": [
                {
                    "id": p.id,
                    "purchased": iso(p.purchased),
                    "incidents": p.incidents,
                    "cancelled": p.cancelled,
                    "cancelled_at": iso(p.cancelled_at),
                    "cancelled_by": p.cancelled_by,
                    "used": p.used,
                    "left": status[p.id].left,
                    "expires_on": iso(status[p.id].expires_on),
                    "valid": status[p.id].valid,
                    "granted_by": p.granted_by,
                    "expiry_reminded_at": iso(p.expiry_reminded_at),
                }
                for p in packs
            ],
        },
        "cases": [
            {
                "number": i.id,
                "subject": i.subject,
                "state": i.state,
                "chargeable": i.chargeable,
                "opened_at": iso(i.opened_at),
                "due_at": iso(i.due_at),
            }
            for i in incidents
        ],
    }
