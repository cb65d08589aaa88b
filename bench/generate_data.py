"""Fill a PostgreSQL database with a large, plausible incident store (issue 5, item 8).

    PYTHONPATH=. .venv/bin/python bench/generate_data.py postgresql+psycopg://postgres@127.0.0.1/DBNAME
        [--incidents 1000000] [--messages-per-incident 10] [--customers 10000] [--no-delivery-history]

The database must exist and be empty (bench/status_at_scale.py creates one);
`storage.db.upgrade()` creates the schema first, then every table is filled
on the server with `INSERT ... SELECT ... FROM generate_series(...)`, so no
row crosses the wire. Foreign-key triggers are off during the load
(`session_replication_role = replica`: the generator keeps the references
right by construction) and the secondary indexes are dropped before and
built again after it, then every table is analysed, and the id sequences are
moved past the generated ids.

What a customer's history looks like (the same for every customer, so a
customer of the small store and one of the large store have the same story):

* incidents are dealt round robin, incident i to customer (i - 1) % C + 1,
  opened over the last five years in id order, so one customer's incidents
  are spread over the whole table as they would be in a real store;
* each customer's newest incident is open (waiting for the team); of the
  others about 20 % are closed and 80 % resolved, decided by the incident's
  ordinal within its customer (nothing closes a resolved incident on its
  own, so that is where most of them end up);
* 10 messages per incident: customer and engineer in turn, the last one an
  internal note; 3 history events per incident;
* three credit packs per customer (two used up and expired, one current);
* one Zulip identity per customer, and a Mastodon one for every other;
* delivery history (unless `--no-delivery-history`): one `processedinbound`
  row per customer message and one sent `outbox` row per reply to a
  customer and per message mirrored into a case topic.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from storage.db import upgrade  # noqa: E402

#: The tables whose secondary indexes are dropped during the load.
BIG_TABLES = ("incident", "incidentmessage", "incidentevent", "processedinbound", "outbox")
SPAN = "interval '1826 days'"  # five years of history, ending yesterday


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def log(message: str, started: float) -> None:
    print(f"  [{time.monotonic() - started:7.1f} s] {message}", flush=True)


def statements(incidents: int, per_incident: int, customers: int, delivery: bool) -> list[tuple[str, str]]:
    """(what, SQL) in load order. Incident i belongs to customer (i-1) % C + 1, its ordinal there is (i-1) / C."""
    n, m, c = incidents, per_incident, customers
    per_customer = -(-n // c)  # incidents of the busiest customer (ceil)
    half = max(1, per_customer // 2)
    # Shared expressions (SQL) for an incident id `i`.
    cust = f"((i - 1) % {c} + 1)"
    ordinal = f"((i - 1) / {c})"
    opened = f"(now() at time zone 'utc' - interval '1 day' - {SPAN} * (1 - i::float8 / {n}))"
    is_open = f"({ordinal} = ({n} - {cust}) / {c})"  # the customer's newest incident
    closed = f"(NOT {is_open} AND (hashint4({ordinal}::int) & 1023) < 205)"  # one in five, by ordinal
    state = f"(CASE WHEN {is_open} THEN 'open' WHEN {closed} THEN 'closed' ELSE 'resolved' END)"
    pack = f"(({cust} - 1) * 3 + CASE WHEN {ordinal} < {half} THEN 1 ELSE 2 END)"
    subject = "('Printer ' || i || ' stops after the firmware update ' || (i % 97))"
    out: list[tuple[str, str]] = [
        (
            f"{c:,} customers",
            f"""INSERT INTO customer (id, name, email, lang, created_at)
                SELECT g, 'Customer ' || lpad(g::text, 6, '0'), 'it' || g || '@customer' || g || '.example',
                       CASE WHEN g % 4 = 0 THEN 'pt' ELSE 'en' END,
                       now() at time zone 'utc' - {SPAN} - interval '30 days'
                FROM generate_series(1, {c}) g""",
        ),
        (
            f"{c + c // 2:,} identities",
            f"""INSERT INTO identity (id, channel, address, display_name, customer_id, lang, created_at,
                                      last_seen_at, failed_codes)
                SELECT g, 'zulip', 'customer' || g || '@example.com', 'Customer ' || g, g, NULL,
                       now() at time zone 'utc' - {SPAN}, now() at time zone 'utc' - interval '1 day', 0
                FROM generate_series(1, {c}) g
                UNION ALL
                SELECT {c} + g, 'mastodon', 'customer' || g || '@remote.example', 'Customer ' || g, g, NULL,
                       now() at time zone 'utc' - {SPAN}, now() at time zone 'utc' - interval '1 day', 0
                FROM generate_series(2, {c}, 2) g""",
        ),
        (
            f"{3 * c:,} credit packs",
            f"""INSERT INTO creditpack (id, customer_id, purchased, valid_until, incidents, used, created_at,
                                        granted_by)
                SELECT (g - 1) * 3 + p, g, bought, (bought + interval '12 months')::date,
                       CASE p WHEN 1 THEN {half} WHEN 2 THEN {max(1, per_customer - half)} ELSE 10 END,
                       CASE p WHEN 1 THEN {half} WHEN 2 THEN {per_customer - half} ELSE 0 END,
                       now() at time zone 'utc' - interval '30 days', 'generate_data'
                FROM generate_series(1, {c}) g, generate_series(1, 3) p,
                     LATERAL (SELECT (now() at time zone 'utc')::date
                                     - CASE p WHEN 1 THEN 1826 WHEN 2 THEN 900 ELSE 30 END AS bought) b""",
        ),
        (
            f"{n:,} incidents",
            f"""INSERT INTO incident (id, customer_id, pack_id, subject, state, chargeable, assignee, topic,
                                      opened_at, due_at, warned_for, missed_for, first_response_at,
                                      resolved_at, closed_at, updated_at)
                SELECT i, {cust}, {pack}, {subject}, {state}, true, 'eng@example.com',
                       left('#' || i || ' Customer ' || lpad({cust}::text, 6, '0') || ': ' || {subject}, 60),
                       {opened},
                       CASE WHEN {is_open} THEN {opened} + interval '2 days' END, NULL, NULL,
                       {opened} + interval '3 hours',
                       CASE WHEN NOT {is_open} THEN {opened} + interval '2 days' END,
                       CASE WHEN {closed} THEN {opened} + interval '9 days' END,
                       {opened} + CASE WHEN {is_open} THEN interval '9 hours'
                                       WHEN {closed} THEN interval '9 days' ELSE interval '2 days' END
                FROM generate_series(1, {n}) i""",
        ),
        (
            f"{n * m:,} incident messages",
            f"""INSERT INTO incidentmessage (id, incident_id, direction, author, channel, identity_id,
                                             conversation, body, created_at)
                SELECT (i - 1) * {m} + j + 1, i,
                       CASE WHEN j = {m - 1} THEN 'note' WHEN j % 2 = 0 THEN 'in' ELSE 'out' END,
                       CASE WHEN j % 2 = 0 AND j <> {m - 1} THEN 'customer' || {cust} || '@example.com'
                            ELSE 'eng@example.com' END,
                       'zulip',
                       CASE WHEN j % 2 = 0 AND j <> {m - 1} THEN {cust} END,
                       CASE WHEN j % 2 = 0 AND j <> {m - 1} THEN 'customer' || {cust} || '@example.com' END,
                       'Message ' || (j + 1) || ' on incident ' || i || ': '
                         || repeat('the printer still shows error E' || (i % 50) || ' after a restart; ', 1 + j % 4),
                       {opened} + j * interval '20 minutes'
                FROM generate_series(1, {n}) i, generate_series(0, {m - 1}) j""",
        ),
        (
            f"{3 * n:,} incident events",
            f"""INSERT INTO incidentevent (id, incident_id, at, actor, action, from_state, to_state, detail)
                SELECT (i - 1) * 3 + e, i, {opened} + (e - 1) * interval '1 day',
                       CASE e WHEN 1 THEN 'customer' || {cust} || '@example.com' ELSE 'eng@example.com' END,
                       CASE e WHEN 1 THEN 'opened' WHEN 2 THEN 'replied' ELSE 'resolved' END,
                       CASE e WHEN 1 THEN NULL ELSE 'open' END,
                       CASE e WHEN 3 THEN 'resolved' ELSE 'open' END, NULL
                FROM generate_series(1, {n}) i, generate_series(1, 3) e""",
        ),
    ]
    if delivery:
        inbound = [j for j in range(m) if j % 2 == 0 and j != m - 1]
        replies = [j for j in range(m) if j % 2 == 1 and j != m - 1]
        out += [
            (
                f"{n * len(inbound):,} processed inbound messages",
                f"""INSERT INTO processedinbound (channel, message_id, received_at, processed_at, failed_text)
                    SELECT 'zulip', ((i - 1) * {m} + j + 1)::text, {opened} + j * interval '20 minutes',
                           {opened} + j * interval '20 minutes', NULL
                    FROM generate_series(1, {n}) i, unnest(ARRAY{inbound}::int[]) j""",
            ),
            (
                f"{n * (len(inbound) + len(replies)):,} sent outbox rows",
                f"""INSERT INTO outbox (id, channel, kind, recipient, conversation, topic, text, quote, incident_id,
                                        state, attempts, next_attempt_at, created_at, sent_at, platform_ids,
                                        last_error)
                    SELECT (i - 1) * {m} + j + 1, 'zulip',
                           CASE WHEN j % 2 = 0 THEN 'topic' ELSE 'direct' END,
                           CASE WHEN j % 2 = 1 THEN 'customer' || {cust} || '@example.com' END,
                           CASE WHEN j % 2 = 1 THEN 'customer' || {cust} || '@example.com' END,
                           CASE WHEN j % 2 = 0 THEN left('#' || i || ' Customer ' || {cust}, 60) END,
                           CASE WHEN j % 2 = 0 THEN '**Customer ' || {cust} || '** via zulip wrote:'
                                ELSE '[#' || i || '] ' || repeat('please try the new driver; ', 1 + j % 4) END,
                           CASE WHEN j % 2 = 0 THEN repeat('the printer still shows an error; ', 1 + j % 4) END,
                           i, 'sent', 1, {opened} + j * interval '20 minutes', {opened} + j * interval '20 minutes',
                           {opened} + j * interval '20 minutes' + interval '1 second',
                           '["' || (10000000 + (i - 1) * {m} + j) || '"]', NULL
                    FROM generate_series(1, {n}) i, unnest(ARRAY{sorted(inbound + replies)}::int[]) j""",
            ),
        ]
    return out


def generate(
    url: str, incidents: int, per_incident: int = 10, customers: int = 10_000, delivery: bool = True
) -> dict[str, float]:
    """Create the schema at `url` (an empty database) and fill it; returns seconds per step."""
    started = time.monotonic()
    customers = max(1, min(customers, incidents))
    timings: dict[str, float] = {}
    upgrade(url)
    log("schema created (storage.db.upgrade)", started)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        if conn.execute("SELECT count(*) FROM customer").fetchone()[0]:
            raise SystemExit("the database is not empty: generate into a fresh one")
        conn.execute("SET session_replication_role = replica")  # no foreign-key triggers while loading
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET work_mem = '64MB'")
        indexes = conn.execute(
            """SELECT i.indexname, i.indexdef FROM pg_indexes i
               WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""",
            (list(BIG_TABLES),),
        ).fetchall()
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for what, sql in statements(incidents, per_incident, customers, delivery):
            step = time.monotonic()
            conn.execute(sql)
            timings[what] = time.monotonic() - step
            log(f"{what} in {timings[what]:.1f} s", started)
        step = time.monotonic()
        for _name, definition in indexes:
            conn.execute(definition)
        timings["secondary indexes"] = time.monotonic() - step
        log(f"{len(indexes)} secondary indexes built in {timings['secondary indexes']:.1f} s", started)
        for table, column in conn.execute(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND column_default LIKE 'nextval(%%'"""
        ).fetchall():
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                f' greatest(1, (SELECT coalesce(max({column}), 0) FROM "{table}")))'
            )
        step = time.monotonic()
        conn.execute("VACUUM (ANALYZE)")
        timings["vacuum analyze"] = time.monotonic() - step
        log(f"vacuum and analyse in {timings['vacuum analyze']:.1f} s", started)
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    timings["total"] = time.monotonic() - started
    log(f"done: {incidents:,} incidents, {incidents * per_incident:,} messages, database size {size}", started)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="SQLAlchemy URL of an existing, empty PostgreSQL database")
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--messages-per-incident", type=int, default=10)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--no-delivery-history", action="store_true", help="leave processedinbound and outbox empty")
    args = parser.parse_args(argv)
    print(
        f"Generating {args.incidents:,} incidents, {args.incidents * args.messages_per_incident:,} messages,"
        f" {args.customers:,} customers into {args.url}"
    )
    generate(args.url, args.incidents, args.messages_per_incident, args.customers, not args.no_delivery_history)
    return 0


if __name__ == "__main__":
    sys.exit(main())
