"""Activation codes: shown once, then gone from the store; a new code revokes the old ones.

The store keeps only a code's hash; the answer that showed it to the engineer must not
keep it in clear in the outbox once delivered. Also: duplicate customer names are
compared literally (LIKE wildcards in a name are just characters).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import select

from storage import outbox
from storage.db import transaction, upgrade
from storage.models import Customer, Outbox
from tests.conftest import PG_BASE
from tests.desk import Desk

CODE = re.compile(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}")


def _codes(text: str) -> list[str]:
    return sorted(set(CODE.findall(text)))


def _stored_texts(desk: Desk) -> list[tuple[str, str, str | None]]:
    with transaction(desk.engine) as s:
        return [tuple(r) for r in s.execute(select(Outbox.state, Outbox.text, Outbox.secret).order_by(Outbox.id))]


def test_the_code_is_shown_once_and_masked_in_the_store_once_sent(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)

    out = desk.engineer("/customer add Acme acme@example.org")
    (code,) = _codes(out)

    (row,) = _stored_texts(desk)
    state, text, secret = row
    assert state == "sent" and secret is None
    assert code not in text and text.count(outbox.SECRET_MASK) == 2
    # It still works: the customer links with it.
    assert "linked" in desk.say("someone", f"link {code}").lower()


def test_a_new_code_revokes_the_unused_earlier_ones_and_is_masked_too(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    (first,) = _codes(desk.engineer("/customer add Acme"))
    (second,) = _codes(desk.engineer("/customer code Acme"))
    (third,) = _codes(desk.engineer("/customer code Acme"))

    assert "linked" not in desk.say("old", f"link {first}").lower()
    assert "linked" not in desk.say("older", f"link {second}").lower()
    assert "linked" in desk.say("new", f"link {third}").lower()
    stored = " ".join(text for _state, text, _secret in _stored_texts(desk))
    assert not {first, second, third} & set(_codes(stored))


def test_a_row_that_fails_for_good_is_masked_and_other_rows_keep_their_text(engine):
    now = datetime(2026, 12, 2, 10, tzinfo=UTC)
    with transaction(engine) as s:
        with_secret = outbox.enqueue(
            s, channel="zulip", kind="topic", topic="t", text="code ABCD-EFGH", now=now, secret="ABCD-EFGH"
        )
        failing = outbox.enqueue(
            s, channel="zulip", kind="topic", topic="t", text="code WXYZ-2345", now=now, secret="WXYZ-2345"
        )
        plain = outbox.enqueue(s, channel="zulip", kind="topic", topic="t", text="no secret ABCD-EFGH", now=now)
    with transaction(engine) as s:
        outbox.mark_all_sent(s, [(with_secret.id, ["1"]), (plain.id, ["2"])], now)
        outbox.mark_failed(s, failing.id, "400 refused")
    with transaction(engine) as s:
        texts = {r.id: (r.state, r.text, r.secret) for r in s.scalars(select(Outbox))}
    assert texts[with_secret.id] == ("sent", "code [redacted]", None)
    assert texts[failing.id] == ("failed", "code [redacted]", None)
    assert texts[plain.id] == ("sent", "no secret ABCD-EFGH", None)


def test_the_migration_masks_codes_in_rows_sent_before_it(db_url, tmp_path):
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        # one database per run (as conftest's): runs sharing the server never meet
        name = f"deskbot_test_migration_0003_{os.getpid()}"
        url = PG_BASE.rsplit("/", 1)[0] + f"/{name}"
        admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    upgrade(url, "0002")
    engine = sa.create_engine(url)
    text = (
        "Customer Acme (id 1) created. Activation code: ABCD-EFGH-JKMN (single use, valid 14 days;"
        " the customer sends: link ABCD-EFGH-JKMN)"
    )
    with engine.begin() as conn:
        for state, body in (("sent", text), ("pending", text), ("sent", "unrelated ABCD-EFGH-JKMN")):
            conn.execute(
                sa.text(
                    "INSERT INTO outbox (channel, kind, text, state, attempts, next_attempt_at, created_at)"
                    " VALUES ('zulip', 'topic', :text, :state, 1, :at, :at)"
                ),
                {"text": body, "state": state, "at": datetime(2026, 1, 1)},
            )
    upgrade(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT state, text FROM outbox ORDER BY id")).all()
    engine.dispose()
    if not db_url.startswith("sqlite"):
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
    assert rows[0] == ("sent", text.replace("ABCD-EFGH-JKMN", "[redacted]"))
    assert rows[1] == ("pending", text)  # still to be sent: the engineer has not seen it yet
    assert rows[2] == ("sent", "unrelated ABCD-EFGH-JKMN")


def test_wildcards_in_a_name_are_characters_not_patterns(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.engineer("/customer add Acme")

    assert "created" in desk.engineer("/customer add A_me")
    assert "created" in desk.engineer("/customer add %")
    assert "created" in desk.engineer("/customer add Ac%")
    assert "already exists" in desk.engineer("/customer add ACME")
    assert "already exists" in desk.engineer("/customer add a_ME")
    with transaction(desk.engine) as s:
        assert sorted(s.scalars(select(Customer.name))) == ["%", "A_me", "Ac%", "Acme"]
