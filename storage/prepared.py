"""Statements of the per-message hot path, compiled by SQLAlchemy once and run on the driver's cursor.

Every customer message runs the same handful of statements (its record, the
cursor, the outbox row, the `status` listing, the delivery record). Through
`Connection.execute` each costs SQLAlchemy's execution machinery — an execution
context, result metadata, events — several times what the database takes for
it, and more on a live channel than in a tight loop: one message every few
hundred milliseconds finds that code out of the CPU's caches (issue 15, item 9:
measured inside the running bot, a cold `Connection.execute` of the listing
took 0.21-0.28 ms, the same statement on the cursor 0.07 ms).

`Prepared` keeps everything SQLAlchemy gives that matters here: the SQL is
SQLAlchemy's own compilation for the connection's dialect, the values go
through the column types' bind and result processors (`UTCDateTime`,
`Bounded` …), and a driver error is raised as SQLAlchemy's (`IntegrityError`,
`OperationalError` …), the connection invalidated when the server is gone, as
`Connection.execute` does. It runs inside the caller's transaction (the same
driver connection). What it does not support it refuses when compiling:
expanding IN lists and escaped parameter names.

On PostgreSQL the SQL is compiled with PostgreSQL's own `$1` placeholders and
run on psycopg's `RawCursor`, which sends it as it is. psycopg's default cursor
rewrites `%(name)s` placeholders before every execution, and caches the rewrite
for statements under 4 KB only: a page's outbox rows, written 32 to an INSERT
(`storage.outbox.write_many`, 16 KB of SQL), were parsed again by a regular
expression each time, 0.9 ms a statement warm and about 40% of a catch-up
page's intake in the running bot (issue 15, item 9; bench/README.md, set Q).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Select

from storage.db import begin_if_deferred, reads_only

Processor = Callable[[Any], Any] | None


def _native(dialect: Dialect) -> Dialect:
    """`dialect`, writing the placeholders the database itself reads (`$1`) where its driver has a
    cursor that sends SQL unchanged (psycopg's `RawCursor`); otherwise `dialect` itself."""
    if dialect.driver != "psycopg":
        return dialect
    native = copy.copy(dialect)  # the engine's dialect, as initialised on connecting (server version …)
    native.paramstyle = "numeric_dollar"
    native.positional = True
    native.identifier_preparer = native.preparer(native)  # it knows whether to double a literal `%`
    return native


class _Compiled:
    """One statement's SQL for one dialect, and how its values go in and its rows come out."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        native = _native(dialect)
        #: Run on psycopg's RawCursor (the SQL has `$n` placeholders), or on the driver's own cursor.
        self.raw = native is not dialect
        compiled = statement.compile(dialect=native)
        if compiled.escaped_bind_names or getattr(compiled, "has_out_parameters", False):
            raise ValueError("Prepared cannot run a statement with escaped or OUT parameters")
        self.sql = compiled.string
        #: A plain SELECT: it runs before a put-off transaction begins (storage.db.transaction).
        self.reads_only = reads_only(self.sql)
        names: dict[str, tuple[str | None, Any, Processor]] = {}
        for bind, name in compiled.bind_names.items():
            if bind.expanding or bind.literal_execute:
                raise ValueError(f"Prepared cannot run an expanding parameter ({bind.key})")
            # A required bind comes from the caller's values by its key; any other is a constant of the statement.
            key = bind.key if bind.required else None
            names[name] = (
                key,
                None if bind.required else bind.effective_value,
                bind.type.dialect_impl(dialect).bind_processor(dialect),
            )
        self.positional = compiled.positiontup  # the names in order for a positional paramstyle (qmark, $n)
        self.binds = names
        # The rows it returns: a SELECT's columns, or those of an INSERT/UPDATE … RETURNING.
        columns = list(statement.selected_columns if isinstance(statement, Select) else statement.exported_columns)
        self.returns = isinstance(statement, Select) or bool(columns)
        self.row_processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        self.plain_rows = not any(self.row_processors)

    def values(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        bound: dict[str, Any] = {}
        for name, (key, constant, process) in self.binds.items():
            value = params[key] if key is not None else constant
            bound[name] = process(value) if process is not None else value
        return [bound[name] for name in self.positional] if self.positional is not None else bound

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        if self.plain_rows:
            return tuple(raw)
        return tuple(p(v) if p is not None else v for p, v in zip(self.row_processors, raw, strict=True))


class Prepared:
    """A Core statement run on the driver's cursor of the caller's connection (see the module's text)."""

    #: Statements run, all instances together (bench/intake_cost.py counts them beside SQLAlchemy's).
    executed = 0

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            found = self._by_dialect[dialect.name] = _Compiled(self.statement, dialect)
        return found

    def rows(
        self, connection: sa.Connection, params: Mapping[str, Any], *, on_its_own: bool = False
    ) -> list[tuple[Any, ...]]:
        """Run with `params`; the rows it returns (a SELECT or a RETURNING), processed by their types.

        `on_its_own`: the statement needs no transaction around it (it is atomic, and the last of
        its transaction): if `storage.db.transaction` put the transaction off and nothing began
        it, it runs without one."""
        compiled = self._compiled(connection.dialect)
        if not (compiled.reads_only or on_its_own):
            begin_if_deferred(connection)
        return self._run(connection, compiled, compiled.values(params), many=False)

    def run_many(self, connection: sa.Connection, params: Sequence[Mapping[str, Any]]) -> None:
        """Run once per set of values (`executemany`); a statement returning rows is refused."""
        compiled = self._compiled(connection.dialect)
        if compiled.returns:
            raise ValueError("run_many returns no rows: use rows() for a statement that does")
        if not compiled.reads_only:
            begin_if_deferred(connection)
        self._run(connection, compiled, [compiled.values(p) for p in params], many=True)

    def _run(self, connection: sa.Connection, compiled: _Compiled, values: Any, *, many: bool) -> list[tuple]:
        Prepared.executed += 1
        dialect = connection.dialect
        driver = connection.connection.dbapi_connection
        assert driver is not None
        cursor = dialect.loaded_dbapi.RawCursor(driver) if compiled.raw else driver.cursor()
        try:
            if many:
                cursor.executemany(compiled.sql, values)
                return []
            cursor.execute(compiled.sql, values)
            return [compiled.row(raw) for raw in cursor.fetchall()] if compiled.returns else []
        except dialect.loaded_dbapi.Error as exc:
            # As Connection.execute does: a lost server invalidates the connection (the pool makes a
            # new one), and the error is SQLAlchemy's, so callers catch one family of exceptions.
            gone = dialect.is_disconnect(exc, driver, cursor)
            if gone:
                connection.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                compiled.sql,
                values,
                exc,
                dialect.loaded_dbapi.Error,
                hide_parameters=True,  # customers' text: never in a log line
                connection_invalidated=gone,
                dialect=dialect,
            ) from exc
        finally:
            with contextlib.suppress(dialect.loaded_dbapi.Error):  # a connection invalidated above
                cursor.close()
