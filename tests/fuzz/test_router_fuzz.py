"""The router fuzzed, every kind of sender, through the real intake on SQLite and PostgreSQL.

Whatever anyone sends, no handler fails (the apology path is for our bugs, not
for input), and nothing but the bot's own words leaves for Zulip unfenced.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from adapters.console import ENGINEER, console_line
from storage.db import transaction
from storage.models import ProcessedInbound
from tests.desk import Desk
from tests.fuzz.inputs import message_text

SENDERS = ["customer", "stranger", "engineer", "engineer in topic", "stranger in topic", "public"]
_ids = itertools.count()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(SENDERS), message_text), min_size=1, max_size=6))
def test_no_input_from_anyone_makes_a_handler_fail(engine, db_url, clock, steps):
    desk = _desk(engine, db_url, clock)
    for sender, text in steps:
        message = console_line("Acme", text, f"f{next(_ids)}", clock().astimezone(UTC))
        if sender == "stranger":
            message = dataclasses.replace(message, sender="stranger", conversation="stranger")
        elif sender == "engineer":
            message = dataclasses.replace(message, sender=ENGINEER, conversation=ENGINEER)
        elif sender.endswith("in topic"):
            who = ENGINEER if sender.startswith("engineer") else "Acme"
            message = dataclasses.replace(message, sender=who, kind="topic", topic="#1 Acme: printer")
        elif sender == "public":
            message = dataclasses.replace(message, public=True)
        desk.runtime.intake.deliver(message)
    desk.runtime.dispatcher.drain("console")
    with transaction(desk.engine) as s:
        failed = s.exec(select(ProcessedInbound).where(ProcessedInbound.failed_text.is_not(None))).all()
    assert [(f.message_id, f.failed_text) for f in failed] == []
    assert "Sorry, something went wrong" not in desk.out.getvalue()


_desks: dict[int, Desk] = {}


def _desk(engine, db_url, clock) -> Desk:  # noqa: ANN001
    """One desk per database for all examples: the state grows as a real desk's would."""
    desk = _desks.get(id(engine))
    if desk is None:
        desk = _desks[id(engine)] = Desk(engine, db_url, clock)
        desk.customer("Acme", credits=3)
        desk.say("Acme", "open The printer is on fire")
    return desk
