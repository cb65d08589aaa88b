"""`deskbot customers erase CUSTOMER`: a customer's personal data erased (GDPR art. 17), invoicing records kept.

What goes and what stays is bot.services.erasure's to say. This command shows it, asks, erases in
one transaction, and names what deskbot cannot erase itself: the case topics in Zulip, and what
was already sent. The question is asked between two transactions (no transaction waits on a
person): the erasure counts again, and refuses again if a case was opened meanwhile.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.context import CliError, CustomerArg, customer_or_fail, echo, session_of, settings
from bot.services import erasure
from bot.services.erasure import Survey


def customers_erase(
    customer: CustomerArg,
    yes: Annotated[bool, typer.Option("--yes", help="Erase without asking.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be erased.")] = False,
) -> None:
    """Erase a customer's personal data (GDPR erasure); their cases and packs stay for invoicing.

    Accounts, activation codes, drafts, the texts of every message on their cases, files, subjects
    and topic names go; the cases keep numbers, dates, states, severity, charge and pack, under the
    name "erased customer ID". Refused while a case of theirs is open.
    """
    config = settings()
    with session_of(config) as session:
        found = customer_or_fail(session, customer)
        planned = erasure.survey(session, found)
    for line in _summary(planned):
        echo(line)
    if dry_run:
        _outside(planned, config.zulip_stream)
        echo("Dry run: nothing was changed.")
        return
    if not yes and not typer.confirm(f"Erase customer {planned.customer_id} for good?", default=False):
        raise CliError("nothing was erased")
    with session_of(config) as session:
        found = customer_or_fail(session, str(planned.customer_id))
        done = erasure.erase(session, found)
    echo(f"Erased: customer {done.customer_id} is now {erasure.erased_name(done.customer_id)!r}.")
    _outside(done, config.zulip_stream)


def _summary(survey: Survey) -> list[str]:
    cases = ", ".join(f"#{n}" for n in survey.cases)
    in_cases = _counted((survey.messages, "message text", "message texts"), (survey.files, "file", "files"))
    others = _counted(
        (survey.drafts, "draft", "drafts"),
        (survey.codes, "activation code", "activation codes"),
        (survey.copies, "person copied", "people copied"),
        (survey.failed_texts, "failed message's text", "failed messages' texts"),
    )
    outbox = _counted(
        (survey.unsent, "unsent message (cancelled)", "unsent messages (cancelled)"),
        (survey.sent, "sent message's text and recipient", "sent messages' texts and recipients"),
    )
    lines = [
        f"Customer {survey.customer_id} {survey.name!r}: erasing removes",
        "  accounts: " + (", ".join(f"{channel} {address}" for channel, address in survey.accounts) or "none"),
        f"  cases {cases}: {in_cases + ', ' if in_cases else ''}their subjects and topic names" if cases else "",
        f"  also: {others}" if others else "",
        f"  outbox: {outbox}" if outbox else "",
        f"Kept for invoicing: {'cases ' + cases + ' (dates, states, severity, charge, pack), ' if cases else ''}"
        + (_counted((survey.packs, "credit pack", "credit packs")) or "no credit pack")
        + ".",
    ]
    return [line for line in lines if line]


def _outside(survey: Survey, stream: str) -> None:
    """What deskbot cannot erase: said after the erasure (and by a dry run)."""
    if survey.topics:
        echo(f"A Zulip organisation administrator must delete these topics of stream {stream!r}:")
        for topic in survey.topics:
            echo(f"  {topic}")
    echo(
        "Mail, Mastodon posts and Zulip direct messages already sent stay with their recipients: deskbot cannot erase them."
    )
    if any(channel == "email" for channel, _ in survey.accounts):
        echo("Their mail stays in the support mailbox (inbox and Sent) until it is deleted there.")


def _counted(*items: tuple[int, str, str]) -> str:
    """The counts that are not zero, with their names: "3 drafts, 1 file"."""
    return ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in items if n)
