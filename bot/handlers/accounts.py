"""Engineer commands about customers and their credits (SPEC §3): `/customer add|code|link|show|lang`,
`/credits grant|cancel`, `/contacts`. The commands about one case are in `bot.handlers.engineer`."""

from __future__ import annotations

import re
from datetime import date

from adapters.markup import inert
from bot.commands import Arg, ParseError, command
from bot.context import Context
from bot.handlers.customer import credit_deadline, excerpt
from bot.handlers.engineer import ENGINEER
from bot.i18n import _, format_day, format_when, n_, render
from bot.policy import summarise, unusable_because
from bot.services import copies, credits, customers, drafts, incidents
from bot.services.outgoing import Direct
from storage.models import Customer, Draft, IncidentState

#: `/customer show` lists the customer's newest cases, this many.
CUSTOMER_CASES_SHOWN = 10
#: `/contacts` lists the people seen last, this many.
CONTACTS_SHOWN = 30
#: A customer not found by name: this many whose name or email contains what was typed are suggested.
SIMILAR_CUSTOMERS = 5


def _customer(ctx: Context, ref: str) -> Customer | None:
    customer = customers.find_customer(ctx.session, ref)
    if customer is None:
        # Suggested, never guessed: a grant to the wrong customer is hard to take back.
        similar = customers.similar_customers(ctx.session, ref, SIMILAR_CUSTOMERS + 1)
        names = ", ".join(f"{inert(c.name)} (id {c.id})" for c in similar[:SIMILAR_CUSTOMERS])
        if len(similar) > SIMILAR_CUSTOMERS:
            names += ", …"
        if similar:
            ctx.reply(
                _("No customer {who}. Did you mean {names}? Give the name in full or the id."),
                who=inert(ref),
                names=names,
            )
        else:
            ctx.reply(_("No customer {who}."), who=inert(ref))
    return customer


@command(
    en="customer",
    pt="cliente",
    sub="add",
    audience=ENGINEER,
    # The name may have spaces, so the text takes the whole line and the handler takes an email
    # address off its end; `email` is declared for the usage line (`<name> [email]`) and stays None.
    args=(Arg("name", "text", label=_("name")), Arg("email", "word", required=False, label=_("email"))),
    help=_("create a customer; answers with a one-time activation code"),
)
def customer_add(ctx: Context, name: str, email: None) -> None:
    try:
        name, address = _name_and_email(name, ctx.lang)
    except ParseError as exc:
        usage = customer_add.command.usage(slash=True, lang=ctx.lang)  # type: ignore[attr-defined]
        ctx.reply_text(ctx.t(exc.msgid, **exc.values) + " " + ctx.t(_("Usage: {usage}"), usage=usage))
        return
    try:
        customer, code = customers.create_customer(ctx.session, name, address, None, ctx.now)
    except customers.CustomerError as exc:
        ctx.reply_text(exc.render(inert))
        return
    ctx.reply(
        _(
            'Customer {name} (id {id}) created. Activation code: {code} (single use, valid for 14 days; the customer sends "link {code}")'
        ),
        name=inert(customer.name),
        id=customer.id,
        code=code,
        secret=code,
    )


@command(
    en="customer",
    pt="cliente",
    sub="code",
    audience=ENGINEER,
    args=(Arg("who", "text"),),
    help=_("a new one-time activation code for an existing customer"),
)
def customer_code(ctx: Context, who: str) -> None:
    customer = _customer(ctx, who)
    if customer is None:
        return
    code = customers.new_activation_code(ctx.session, customer, ctx.now)
    ctx.reply(
        _('New activation code for {name}: {code} (single use, valid for 14 days; the customer sends "link {code}")'),
        name=inert(customer.name),
        code=code,
        secret=code,
    )


@command(
    en="customer",
    pt="cliente",
    sub="link",
    audience=ENGINEER,
    # The name may have spaces ("/customer link Acme Lda joao@acme.example"): the address is the last word.
    args=(Arg("who", "name", label=_("customer")), Arg("address", "word", label=_("email"))),
    help=_("link an email address to a customer (a colleague of theirs): mail from it is theirs, as after link CODE"),
)
def customer_link(ctx: Context, who: str, address: str) -> None:
    email = copies.email_address(address)
    if email is None:
        usage = customer_link.command.usage(slash=True, lang=ctx.lang)  # type: ignore[attr-defined]
        ctx.reply_text(
            ctx.t(_("{address} is not an email address (for example: ana@example.com)."), address=inert(address[:80]))
            + " "
            + ctx.t(_("Usage: {usage}"), usage=usage)
        )
        return
    customer = _customer(ctx, who)
    if customer is None:
        return
    owner = customers.email_owner(ctx.session, email)
    if owner is not None and owner.id != customer.id:
        ctx.reply(
            _("{address} is already linked to another customer, {name} (id {id}): nothing changed."),
            address=inert(email),
            name=inert(owner.name),
            id=owner.id,
        )
        return
    identity = customers.link_email(ctx.session, customer, email, ctx.now)
    if identity is None:
        ctx.reply(
            _("{address} is already linked to {name}: nothing changed."),
            address=inert(email),
            name=inert(customer.name),
        )
        return
    # What `link CODE` does once the account is linked: the text it wrote before waits for `open`.
    kept = drafts.linked(ctx.session, identity.id, ctx.now)
    _tell_linked(ctx, customer, email, kept)
    lines = [
        ctx.t(
            _("{address} is now linked to {name} (id {id}): mail from it is theirs. I told {address} so by email."),
            address=inert(email),
            name=inert(customer.name),
            id=customer.id,
        )
    ]
    if kept is not None:
        lines.append(
            ctx.t(
                _('What it wrote before waits for its "open" (for a day): {excerpt}'),
                excerpt=inert(excerpt(kept.text, 200)),
            )
        )
    ctx.reply_text("\n".join(lines))


def _tell_linked(ctx: Context, customer: Customer, address: str, kept: Draft | None) -> None:
    """The person at `address`, just linked to `customer` by an engineer, reads so once by email in
    the customer's language, and how to go on: "open" for the text kept from before (as the
    welcome after `link CODE` says), else how to open an incident."""
    lang = customer.lang or "en"
    lines = [
        render(
            lang,
            _(
                "Hello! This is the commercial support desk. Our support team has linked this email address to {name}: you can now use {name}'s support from it."
            ),
            name=customer.name,
        ),
        render(
            lang,
            _('Before linking you wrote: "{excerpt}". I kept it for a day: reply "open" to open an incident with it.'),
            excerpt=ctx.deployment.their_words(customers.EMAIL_CHANNEL, excerpt(kept.text, 200)),
        )
        if kept is not None
        else render(
            lang,
            _(
                'To open an incident, send "open" followed by what it is about (it uses one credit). Write "help" to see what I can do.'
            ),
        ),
    ]
    if kept is not None:
        lines += filter(None, [credit_deadline(ctx, customer.id, lang)])
    subject = render(lang, _("This address is now linked to {name}'s support"), name=customer.name)
    ctx.out.say(Direct(customers.EMAIL_CHANNEL, address, subject=subject), "\n".join(lines), lang=lang)


@command(
    en="customer",
    pt="cliente",
    sub="show",
    audience=ENGINEER,
    args=(Arg("who", "text"),),
    help=_("identities, packs, credits and cases of a customer"),
)
def customer_show(ctx: Context, who: str) -> None:
    customer = _customer(ctx, who)
    if customer is None:
        return
    packs = credits.packs_of(ctx.session, customer.id)
    summary = summarise([credits.as_policy(p) for p in packs], ctx.today)
    identities = customers.identities_of(ctx.session, customer.id)
    email = f" {inert(customer.email)}" if customer.email else ""
    lines = [f"**{inert(customer.name)}** (id {customer.id}){email} · language {customers.language_label(customer)}"]
    lines.append("accounts: " + (", ".join(inert(f"{i.channel}:{i.address}") for i in identities) or "none linked"))
    lines.append(f"credits left: {summary.total_left}")
    rows = {p.id: p for p in packs}
    for status in summary.packs:
        row = rows[status.pack.id]
        valid_until = f"valid until {format_day(status.expires_on, 'en')} inclusive"
        if not status.valid:
            valid_until = (
                f"not valid yet, {valid_until}" if status.pack.purchased > ctx.today else f"expired ({valid_until})"
            )
        elif (when := row.expiry_reminded_at) is not None:
            valid_until += f" (reminded of its end on {format_day(ctx.settings.today(when), 'en')})"
        cancelled = (
            f"{row.cancelled} cancelled on {format_day(ctx.settings.today(row.cancelled_at), 'en')}"
            f" by {inert(row.cancelled_by or '—')}, "
            if row.cancelled and row.cancelled_at
            else ""
        )
        lines.append(
            f"• pack {status.pack.id}: {row.incidents} bought {format_day(status.pack.purchased, 'en')}, "
            f"{cancelled}{status.left} left, {valid_until}"
        )
    latest = incidents.latest_incidents(ctx.session, customer.id, tuple(IncidentState), CUSTOMER_CASES_SHOWN + 1)
    for incident in latest[-CUSTOMER_CASES_SHOWN:]:
        lines.append(f"• #{incident.id} {inert(incident.subject)} · {incident.state}")
    if len(latest) > CUSTOMER_CASES_SHOWN:
        lines.append(f"… older cases not shown: `deskbot cases list --customer {customer.id}` lists them all.")
    ctx.reply_text("\n".join(lines))


#: `/customer lang`'s choices: a language, or `auto` (none chosen: English until they write in Portuguese).
LANGUAGE_CHOICES = ("en", "pt", "auto")


@command(
    en="customer",
    pt="cliente",
    sub="lang",
    audience=ENGINEER,
    args=(
        # The language first: the name, last, may have spaces ("/customer lang pt Acme Lda").
        Arg("code", "choice", choices=LANGUAGE_CHOICES, label=_("language")),
        Arg("who", "text", label=_("customer")),
    ),
    help=_("the language the customer is answered in (auto: English until they write in Portuguese)"),
)
def customer_lang(ctx: Context, code: str, who: str) -> None:
    customer = _customer(ctx, who)
    if customer is None:
        return
    customers.choose_language(customer, None if code == "auto" else code)
    answers = {
        "en": _("{name} (id {id}) is answered in English from now on."),
        "pt": _("{name} (id {id}) is answered in Portuguese from now on."),
        "auto": _("{name} (id {id}) has no language chosen now: English until they write in Portuguese."),
    }
    ctx.reply(answers[code], name=inert(customer.name), id=customer.id)


@command(
    en="credits",
    pt="creditos",
    sub="grant",
    audience=ENGINEER,
    args=(Arg("customer", "name"), Arg("n", "int"), Arg("purchased", "date", required=False)),
    help=_("add a pack of n credits bought on that date (default today)"),
)
def credits_grant(ctx: Context, customer: str, n: int, purchased: date | None) -> None:
    found = _customer(ctx, customer)
    if found is None:
        return
    try:
        pack = credits.grant_credits(
            ctx.session,
            found,
            n,
            purchased or ctx.today,
            ctx.engineer,
            ctx.now,
            months=ctx.settings.pack_validity_months,
        )
    except customers.CustomerError as exc:
        ctx.reply_text(exc.render(inert))
        return
    left = credits.credit_summary(ctx.session, found.id, ctx.today).total_left
    ctx.reply_text(
        ctx.tn(
            n_(
                "Pack {id}: {n} credit for {name}, bought {date}, valid until {expiry} inclusive.",
                "Pack {id}: {n} credits for {name}, bought {date}, valid until {expiry} inclusive.",
            ),
            n,
            id=pack.id,
            n=n,
            name=inert(found.name),
            date=format_day(pack.purchased, ctx.lang),
            expiry=format_day(pack.valid_until, ctx.lang),
        )
        + " "
        + ctx.tn(
            n_("{name} has {left} credit left.", "{name} has {left} credits left."),
            left,
            name=inert(found.name),
            left=left,
        )
        + _pack_warning(ctx, pack.purchased, pack.valid_until)
    )


@command(
    en="credits",
    pt="creditos",
    sub="cancel",
    audience=ENGINEER,
    args=(Arg("pack", "int", label=_("pack")),),
    help=_("cancel the unused credits of a pack granted by mistake (its number: /customer show)"),
)
def credits_cancel(ctx: Context, pack: int) -> None:
    assert ctx.engineer is not None
    done = credits.cancel_unused(ctx.session, pack, ctx.engineer, ctx.now)
    if done is None:
        ctx.reply(_("There is no pack {id}. /customer show lists a customer's packs."), id=pack)
        return
    name = inert(done.customer.name)
    if done.count == 0:
        ctx.reply(_("Pack {id} of {name} has no unused credits: nothing to cancel."), id=pack, name=name)
        return
    left = credits.credit_summary(ctx.session, done.customer.id, ctx.today).total_left
    ctx.reply_text(
        ctx.tn(
            n_(
                "Pack {id} of {name}: {n} unused credit cancelled (used, and kept on record: {used}).",
                "Pack {id} of {name}: {n} unused credits cancelled (used, and kept on record: {used}).",
            ),
            done.count,
            id=pack,
            name=name,
            n=done.count,
            used=done.pack.used,
        )
        + " "
        + ctx.tn(n_("{name} has {left} credit left.", "{name} has {left} credits left."), left, name=name, left=left)
        + "\n"
        + ctx.t(
            _("Cancelled by mistake? {command} gives them back as a new pack."),
            command=f"`/credits grant {done.customer.id} {done.count} {done.pack.purchased.isoformat()}`",
        )
    )


def _pack_warning(ctx: Context, purchased: date, valid_until: date) -> str:
    """A date that is probably a slip (a year off): the pack was granted, but says why it gives nothing now."""
    why = unusable_because(purchased, ctx.today, valid_until=valid_until)
    if why == "expired":
        return "\n" + ctx.t(_("⚠️ This pack has expired already: it gives the customer nothing to use."))
    if why == "not_yet":
        return "\n" + ctx.t(
            _("⚠️ This pack is not valid before {date}: the customer cannot use it until then."),
            date=format_day(purchased, ctx.lang),
        )
    return ""


@command(en="contacts", pt="contactos", audience=ENGINEER, help=_("people who wrote but are not linked to a customer"))
def contacts(ctx: Context) -> None:
    found = customers.unknown_contacts(ctx.session, CONTACTS_SHOWN + 1, ctx.deployment.is_engineer)
    if not found:
        ctx.reply(_("No unknown contacts."))
        return
    tz = ctx.settings.calendar.tz
    lines = ["Unknown contacts (not linked to a customer):"]
    lines += [
        f"• {inert(f'{i.channel}:{i.address}')} {inert(i.display_name or '')} · last seen {format_when(i.last_seen_at, 'en', tz) if i.last_seen_at else '—'}"
        for i in found[:CONTACTS_SHOWN]
    ]
    if len(found) > CONTACTS_SHOWN:
        lines.append(f"… and more, seen longer ago: these are the {CONTACTS_SHOWN} seen last.")
    ctx.reply_text("\n".join(lines))


def _name_and_email(text: str, lang: str) -> tuple[str, str | None]:
    """`/customer add`'s name and email address: `Acme Lda ops@acme.example`, or the name in double
    quotes (`"Acme Lda" ops@acme.example`, and so a name with an "@" in it). Unquoted, the first
    word is the name's, and the first word after it with an "@" is the address and must come last;
    whatever is taken as the address must be one (`copies.email_address`, as `/cc` takes).
    ParseError says what is wrong."""
    text, address = text.strip(), None
    closing = re.search(r'["\u201d]', text[1:]) if text[:1] in ('"', "\u201c") else None
    if closing is not None:
        name, after = text[1 : closing.start() + 1], text[closing.start() + 2 :].split()
    else:
        words = text.lstrip('"\u201c').split()
        at = next((i for i, word in enumerate(words) if "@" in word and i > 0), len(words))
        name, after = " ".join(words[:at]), words[at:]
    if after:
        address = copies.email_address(after[0])
        if address is None:
            raise ParseError(
                _("{address} is not an email address (for example: ana@example.com)."), address=inert(after[0][:80])
            )
        if len(after) > 1:
            raise ParseError(_('Unexpected text: "{text}".'), text=" ".join(after[1:])[:40])
    if not name.strip():
        raise ParseError(_("Missing {arg}."), arg=customer_add.command.args[0].usage(lang))  # type: ignore[attr-defined]
    return name, address


#: In the order `/help` lists them, after the case commands.
COMMANDS = (
    customer_add,
    customer_code,
    customer_link,
    customer_show,
    customer_lang,
    credits_grant,
    credits_cancel,
    contacts,
)
