"""The bot's own Zulip markdown around untrusted values: the header above a quote in a case topic,
and a customer's own words inside the bot's answers to them.

A quote's header names who wrote it (`Outbound.said`), and much of that came
from customers or strangers: display names, addresses. Every such value is
written with `adapters.markup.inert`, which keeps it from acting in Zulip
markdown (why it cannot be broken out of is told there).
"""

from __future__ import annotations

import re

from adapters.channel import Said
from adapters.markup import inert

#: An address written as is in a header: what an engineer's Zulip email looks like, with nothing
#: Zulip markdown could act on (no `*`, backtick, bracket, colon, `$`, `#`, `>` or space).
_PLAIN_ADDRESS = re.compile(r"[\w.%+'-]+@[\w-]+(?:\.[\w-]+)*")
#: Words Zulip markdown shows as they are, mid-line: letters and digits, with spaces and the
#: punctuation no rule acts on between them (no `*`, `_`, `~`, backtick, `@`, `#`, `:`, `$`, `[`,
#: `<`, `>`, `|` or `/`); a full stop only before a space or at the end, so no bare domain
#: (which Zulip would link) is left as is.
_AS_IS = re.compile(r"[^\W_]+(?:(?:[ ,;'?!()-]|\.(?= ))+[^\W_]+)*[.?!)]*")
#: How a Zulip account is keyed (issue 13): its user id.
_USER_ID = re.compile(r"[0-9]{1,20}")


def said_header(said: Said) -> str:
    """The line above a quote in a case topic, naming who said it and on which channel.

    A customer: `**`Alice`** via mastodon (`alice@remote.example`) wrote:`, name and
    address inert; a Zulip account is its user id: `via zulip (user `12`)`; a subject
    (an email's) follows them, inert too: `via email (`a@b.example`), subject `VPN` wrote:`; the
    new text of a message they edited says so: `… wrote (edited):`. An
    engineer: `**erin@example.com** replied to the customer via mastodon:`, the
    address as is when it is a plain address (the engineers' own, from the
    configuration), else inert like any other value.
    """
    if said.role == "engineer":
        name = said.name if _PLAIN_ADDRESS.fullmatch(said.name) else inert(said.name)
        return f"**{name}** replied to the customer via {said.channel}:"
    address = ""
    if said.address and said.channel == "zulip" and _USER_ID.fullmatch(said.address):
        address = f" (user {inert(said.address)})"
    elif said.address:
        address = f" ({inert(said.address)})"
    subject = f", subject {inert(said.subject)}" if said.subject and inert(said.subject) else ""
    edited = " (edited)" if said.edited else ""
    return f"**{inert(said.name)}** via {said.channel}{address}{subject} wrote{edited}:"


def their_words(value: str) -> str:
    """A customer's own words (a subject, an excerpt, a file's name) inside an answer to them.

    Only the customer is in their DM with the bot, but their words still must not act there (a
    mention, a link, an image, a spoiler): plain words as they are ("VPN down since Monday"),
    anything else inert, as the engineers see it.
    """
    return value if _AS_IS.fullmatch(value) else inert(value)
