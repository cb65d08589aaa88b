"""Engines, transactions and migrations.

SQLite runs with WAL and foreign keys on; PostgreSQL goes through psycopg 3, every connection
with bounded timeouts (`PG_CONNECT_DEFAULTS`): a dead path to the server fails it in about half a
minute rather than after the kernel's quarter of an hour of retransmissions.
`upgrade()` applies the Alembic migrations in `storage/migrations/`: silently
when there is nothing to do, otherwise with one INFO line naming the revisions
(Alembic's own INFO lines show only at DEBUG).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy import Select, event
from sqlalchemy.engine import Engine
from sqlmodel import Session

log = logging.getLogger("deskbot.db")

MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest migration. `upgrade` returns at once when the database is already there, without
#: loading Alembic (a sizeable import); a test keeps this equal to the migrations' head.
HEAD_REVISION = "0018"
#: A pooled PostgreSQL connection idle longer than this is tested before use (see `make_engine`).
PING_AFTER_IDLE = 10.0
#: libpq's settings on every PostgreSQL connection deskbot opens, unless DESKBOT_DATABASE_URL's
#: query names them (`?connect_timeout=5&tcp_user_timeout=30000`: the URL's win). Without them a
#: path to the server that drops packets silently (a firewall or NAT that forgot the connection, a
#: paused VM, an address a failover left dead) blocks a statement for as long as the kernel
#: retransmits (~15 minutes), and a connection attempt for psycopg's 130 seconds. With them:
PG_CONNECT_DEFAULTS: dict[str, int] = {
    # A connection attempt gives up after 10 s (psycopg's own default is 130 s).
    "connect_timeout": 10,
    # A connection waiting for an answer (or idle in the pool) is probed after 10 s of silence,
    # then every 5 s; the kernel gives up on it at the first probe 20 s after the server was last
    # heard from (tcp_user_timeout), or after 3 probes unanswered (25 s) if that is switched off.
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    # Data sent (a statement) and not acknowledged for 20 s fails the connection: what ends a
    # statement sent into a black hole, which keepalives alone do not (they wait while data is unacknowledged).
    "tcp_user_timeout": 20_000,
}
#: The server's end of each connection is asked (`SET`, where the server runs with its defaults) to
#: give up on a client that went silent as the client does on the server, this much later: a
#: session left behind a dead path ends, with the channel lease (advisory lock, storage.leases)
#: and any row locks it held, in about half a minute, not hours (the kernel's keepalive default);
#: later than the client gives up on it, by more than the lease watchdog's round (bot.runtime,
#: 2 s), so that a replica behind the dead path has stopped receiving before another may take over.
SERVER_TIMEOUT_MARGIN_MS = 10_000


class UnknownRevision(Exception):
    """The database is at a revision this deskbot has no migration of: one line saying what to do."""

    def __init__(self, revision: str) -> None:
        if revision.isascii() and revision.isdigit() and int(revision) > int(HEAD_REVISION):
            told = (
                f"the database is at revision {revision}, newer than this deskbot knows ({revision} is unknown;"
                f" this build's newest is {HEAD_REVISION}): run the newer deskbot, or restore the backup taken"
                " before the upgrade"
            )
        else:
            told = (
                f"the database is at revision {revision[:40]!r}, which this deskbot does not know (this build's"
                f" newest is {HEAD_REVISION}): run the deskbot that upgraded it, or check that"
                " DESKBOT_DATABASE_URL names deskbot's database"
            )
        super().__init__(told)
        self.revision = revision


class OlderSchema(Exception):
    """The database has a schema this deskbot would have to migrate; only `deskbot db upgrade` and
    `deskbot run` migrate (SPEC §5), the operator having backed it up first: one line saying so."""

    def __init__(self, revision: str | None) -> None:
        if revision is None:
            told = (
                "the database holds tables but no deskbot revision: check that DESKBOT_DATABASE_URL names"
                " deskbot's database"
            )
        else:
            told = (
                f"the database is at revision {revision}, older than this deskbot's {HEAD_REVISION}: back up"
                " the database, then run `deskbot db upgrade`"
            )
        super().__init__(told)
        self.revision = revision


def make_engine(url: str) -> Engine:
    """An engine for `url`, with the connection settings deskbot relies on."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
            # WAL lets the dispatcher read while intake writes; foreign keys are off by default.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    engine = _postgresql_engine(url, pool_size=10, max_overflow=5)
    _ping_when_idle(engine)
    _begin_before_writing(engine)
    return engine


def pg_connect_args(url: str | sa.URL) -> dict[str, int]:
    """`PG_CONNECT_DEFAULTS` less what the URL's query (or PGCONNECT_TIMEOUT) sets: SQLAlchemy gives
    `connect_args` precedence over the URL's query, so the operator's values must not be in them."""
    query = sa.make_url(url).query
    return {
        name: value
        for name, value in PG_CONNECT_DEFAULTS.items()
        if name not in query and not (name == "connect_timeout" and os.environ.get("PGCONNECT_TIMEOUT"))
    }


#: The characters that end a part of a URL: a password holding one unescaped may be read in pieces.
_URL_DELIMITERS = re.compile(r"[:@#/?]")


def password_pieces(url: str) -> list[str]:
    """Whatever of the password in database `url` an error may quote, longest first, for scrubbing.

    The password is what the URL holds between the user name's ":" and the last "@" before the
    host: as written, URL-decoded and as SQLAlchemy reads it. Where SQLAlchemy reads it otherwise
    than meant (an unescaped "@": `deskbot:Kx9@vR2#pLm@postgres` gives the password "Kx9" and the
    host "vR2#pLm@postgres", which the driver then names as a host it cannot resolve), also each
    piece of it between the characters that end a URL part. The user name is not secret
    (SQLAlchemy's `hide_password` shows it too) and stays.
    """
    _scheme, found, rest = url.partition("://")
    user_info = rest.rpartition("@")[0]
    if not found or ":" not in user_info:
        return []
    written = user_info.split(":", 1)[1]
    meant = unquote(written)
    try:
        read = sa.make_url(url).password
    except (sa.exc.ArgumentError, ValueError):
        read = None  # not a URL SQLAlchemy reads: no driver is given it either
    pieces = {written, meant, read or ""}
    if read != meant:
        pieces.update(_URL_DELIMITERS.split(written))
    return sorted((piece for piece in pieces if piece), key=len, reverse=True)


def _postgresql_engine(url: str, **kwargs) -> Engine:  # noqa: ANN003 (sa.create_engine's)
    """An engine for a PostgreSQL `url` whose every connection, at both ends, gives up on a dead path."""
    engine = sa.create_engine(url, connect_args=pg_connect_args(url), **kwargs)
    _server_gives_up_too(engine)
    return engine


def server_timeouts(parameters: dict[str, str]) -> dict[str, str]:
    """The server's settings that match a connection's libpq `parameters` (`SERVER_TIMEOUT_MARGIN_MS`)."""
    wanted: dict[str, str] = {}
    if parameters.get("keepalives", "1") != "0":
        for client, server in (
            ("keepalives_idle", "tcp_keepalives_idle"),
            ("keepalives_interval", "tcp_keepalives_interval"),
            ("keepalives_count", "tcp_keepalives_count"),
        ):
            if parameters.get(client, "").isdigit():
                wanted[server] = parameters[client]
    user_timeout = parameters.get("tcp_user_timeout", "")
    if user_timeout.isdigit() and int(user_timeout) > 0:
        wanted["tcp_user_timeout"] = str(int(user_timeout) + SERVER_TIMEOUT_MARGIN_MS)
    return wanted


def _server_gives_up_too(engine: Engine) -> None:
    """Each new connection over TCP asks the server to give up on it as it gives up on the server
    (`server_timeouts`): for the settings still at the server's defaults, so that the DBA's
    (postgresql.conf, ALTER ROLE) or the operator's (the URL's `options=-c tcp_user_timeout=…`) stay."""

    @event.listens_for(engine, "connect")
    def _set_server_timeouts(dbapi_connection, _record) -> None:  # noqa: ANN001
        info = getattr(dbapi_connection, "info", None)
        if not hasattr(info, "get_parameters") or str(info.host).startswith("/"):
            return  # not psycopg 3; or a Unix socket: no TCP, nothing to time out
        wanted = server_timeouts(info.get_parameters())
        if not wanted:
            return
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True  # one round trip, no transaction to commit
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config(s.name, w.setting, false) FROM pg_settings s"
                    " JOIN unnest(%s::text[], %s::text[]) AS w(name, setting) ON w.name = s.name"
                    " WHERE s.source = 'default'",
                    (list(wanted), list(wanted.values())),
                )
        finally:
            dbapi_connection.autocommit = autocommit


def _ping_when_idle(engine: Engine) -> None:
    """Test a pooled connection before use only when it has been idle for `PING_AFTER_IDLE`.

    SQLAlchemy's `pool_pre_ping` tests every checkout: one more round trip per transaction,
    on every message a channel hands over. A connection in steady use is known to work; one
    that sat idle may have been closed by the server, a restart or a firewall in between,
    and is replaced before use. A server lost while connections are busy fails the statement
    in flight instead (the pool then drops them all): intake and the dispatcher retry.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection, record) -> None:  # noqa: ANN001
        record.info["idle_from"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy) -> None:  # noqa: ANN001
        idle_from = record.info.get("idle_from")
        if idle_from is None or time.monotonic() - idle_from < PING_AFTER_IDLE:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"pooled connection lost while idle: {exc}") from exc


def is_postgresql(bind: Engine | sa.Connection | Session) -> bool:
    if isinstance(bind, Session):
        bind = bind.get_bind()
    return bind.dialect.name == "postgresql"


def for_update(query: Select, session: Session, *, skip_locked: bool = False) -> Select:
    """`query`, locking the rows it reads until the transaction ends.

    On PostgreSQL with `FOR UPDATE` (`SKIP LOCKED`: rows another replica holds are passed
    over); SQLite has no row locks and needs none (one writer at a time holds the database).
    """
    return query.with_for_update(skip_locked=skip_locked) if is_postgresql(session) else query


def ping(engine: Engine) -> None:
    """Raise unless the database answers."""
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")


@contextmanager
def transaction(engine: Engine, *, begin_at_first_write: bool = False) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on error.

    `begin_at_first_write` (PostgreSQL): the transaction begins with the first statement that
    writes or locks (`begin_if_deferred`); the reads before it run on their own. Under READ
    COMMITTED each statement of a transaction reads its own snapshot anyway, so a read before
    the first write sees what it would have seen inside; what needs the transaction (a row
    lock, writes that go together) is inside it. A message that only reads and then writes its
    record in one statement (bot.intake) so costs no BEGIN and no COMMIT round trip.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            if begin_at_first_write and is_postgresql(engine):
                connection = session.connection()
                connection.info[_DEFERRED_BEGIN] = True
                _driver(connection).autocommit = True
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


#: Set on a pooled connection whose transaction begins at its first write (`transaction`).
_DEFERRED_BEGIN = "deskbot_deferred_begin"
_LOCKING = re.compile(r"\bFOR (UPDATE|NO KEY UPDATE|SHARE|KEY SHARE)\b")


def reads_only(sql: str) -> bool:
    """Whether a statement only reads: a SELECT that locks nothing (anything else counts as a write)."""
    return sql.lstrip()[:6].upper() == "SELECT" and _LOCKING.search(sql) is None


def begin_if_deferred(connection: sa.Connection) -> None:
    """Begin the transaction now if `transaction(begin_at_first_write=True)` put it off."""
    if connection.info.get(_DEFERRED_BEGIN):
        connection.info[_DEFERRED_BEGIN] = False
        _driver(connection).autocommit = False  # psycopg sends BEGIN with the next statement


def _driver(connection: sa.Connection):  # noqa: ANN202 (the driver's connection)
    driver = connection.connection.dbapi_connection
    assert driver is not None
    return driver


def _begin_before_writing(engine: Engine) -> None:
    """Statements through SQLAlchemy (ORM flushes, Core) begin a put-off transaction before a write;
    a connection goes back to the pool with its transactions as usual (autocommit off)."""

    @event.listens_for(engine, "before_cursor_execute")
    def _before(connection, _cursor, statement, _parameters, _context, _executemany) -> None:  # noqa: ANN001
        if connection.info.get(_DEFERRED_BEGIN) and not reads_only(statement):
            begin_if_deferred(connection)

    @event.listens_for(engine, "checkin")
    def _restore(dbapi_connection, record) -> None:  # noqa: ANN001
        # None: the connection was invalidated (storage.prepared, a lost server) and is gone already.
        if record.info.pop(_DEFERRED_BEGIN, None) is not None and dbapi_connection is not None:
            if not dbapi_connection.closed:
                dbapi_connection.autocommit = False


def alembic_config(url: str):  # noqa: ANN201 (alembic.config.Config, imported lazily)
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


#: Replicas starting together take turns at migrating (PostgreSQL advisory lock key).
MIGRATION_LOCK = 0x6465736B626F74  # "deskbot"


def upgrade(
    url: str,
    revision: str = "head",
    progress: AbstractContextManager[object] | None = None,
    *,
    pack_validity_months: int | None = None,
) -> None:
    """Bring the database at `url` to `revision` (idempotent; serialised across processes on PostgreSQL).

    `progress` is entered only while migrations run (`bot.terminal.status`: a spinner on a terminal),
    not for the check that finds the database up to date. `pack_validity_months`: the deployment's
    DESKBOT_PACK_VALIDITY_MONTHS, which gives packs granted before migration 0017 their last valid
    day (None: the default year, as for the plain `alembic` command)."""
    if revision == "head" and _at_head(url):
        return
    with progress or nullcontext(), _quiet_alembic():  # from the import on: Alembic's plugins log at INFO
        before, after = _upgrade(url, revision, pack_validity_months)
    if after != before:
        log.info("database migrated from revision %s to %s", before or "(empty)", after)


def _upgrade(url: str, revision: str, pack_validity_months: int | None) -> tuple[str | None, str | None]:
    """Run the migrations; the revision before and after, read under the migration lock."""
    from alembic import command

    config = alembic_config(url)
    if pack_validity_months is not None:
        config.attributes["pack_validity_months"] = pack_validity_months
    engine = migration_engine(url)
    postgresql = is_postgresql(engine)
    try:
        with engine.connect() as connection:
            if postgresql:
                connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
                connection.commit()
            try:
                # Read under the lock: a replica that migrated meanwhile leaves nothing to report.
                before = _stored_revision(connection)
                connection.commit()
                if before is not None and before not in _known_revisions(config):
                    raise UnknownRevision(before)  # Alembic: "Can't locate revision identified by …"
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                connection.commit()
                after = _stored_revision(connection)
                connection.commit()
            finally:
                if postgresql:
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                    connection.commit()
    finally:
        engine.dispose()
    return before, after


def _known_revisions(config) -> set[str]:  # noqa: ANN001 (alembic.config.Config)
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic's INFO lines ("Context impl …", one per step) only when DEBUG is on: `upgrade` says it once."""
    alembic_log = logging.getLogger("alembic")
    if alembic_log.isEnabledFor(logging.DEBUG):
        yield
        return
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        alembic_log.setLevel(level)


def _stored_revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def migration_engine(url: str) -> Engine:
    """A connection at a time, for migrations (on PostgreSQL with `make_engine`'s timeouts)."""
    if url.startswith("sqlite"):
        return sa.create_engine(url, poolclass=sa.pool.NullPool)
    return _postgresql_engine(url, poolclass=sa.pool.NullPool)


def _at_head(url: str) -> bool:
    try:
        return _schema_of(url)[0] == HEAD_REVISION
    except sa.exc.DBAPIError:
        return False  # let Alembic report the problem properly


def _schema_of(url: str) -> tuple[str | None, bool]:
    """The revision the database at `url` is at (None: none stored), and whether it holds no table at all."""
    engine = migration_engine(url)
    try:
        with engine.connect() as connection:
            revision = _stored_revision(connection)
            return revision, revision is None and not sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()


def schema_is_current(url: str) -> bool:
    """Whether the database at `url` has this deskbot's schema, read without changing it (nor loading
    Alembic when it has): True at HEAD_REVISION; False when it holds no table at all, so that there is
    nothing to back up and the caller may create the schema (`upgrade`). Otherwise OlderSchema, or
    UnknownRevision for a revision this deskbot has no migration of (a newer deskbot's)."""
    revision, empty = _schema_of(url)
    if revision == HEAD_REVISION:
        return True
    if empty:
        return False
    if revision is not None and revision not in _known_revisions(alembic_config(url)):
        raise UnknownRevision(revision)
    raise OlderSchema(revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
