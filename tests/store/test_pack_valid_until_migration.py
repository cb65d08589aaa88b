"""Migration 0017 gives every pack granted before it the last valid day that the deployment's
DESKBOT_PACK_VALIDITY_MONTHS at the upgrade gives it (the month arithmetic of a grant, not the
database's own), whichever way the upgrade is run: the bot, the command line, or the plain
`alembic` command (a year). On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import date

import pytest
import sqlalchemy as sa
from alembic import command

from adapters.console import ConsoleChannel
from bot.cli import main
from bot.runtime import Runtime
from storage.db import alembic_config, upgrade
from tests.cli.conftest import exit_status
from tests.conftest import BACKENDS, fresh_pg_database
from tests.desk import make_settings

#: Purchase dates whose month's end clamps, and the day each pack ends on with a year and a month.
PURCHASES = {
    date(2024, 2, 29): (date(2025, 2, 28), date(2024, 3, 29)),
    date(2026, 1, 31): (date(2027, 1, 31), date(2026, 2, 28)),
    date(2028, 1, 31): (date(2029, 1, 31), date(2028, 2, 29)),
    date(2026, 3, 31): (date(2027, 3, 31), date(2026, 4, 30)),
    date(2026, 12, 2): (date(2027, 12, 2), date(2027, 1, 2)),
}


@pytest.fixture(params=BACKENDS)
def before_0017(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # noqa: ANN001
    """A database at revision 0016 holding packs bought on each of PURCHASES (two on 31 Jan 2026)."""
    if request.param == "sqlite":
        yield from _with_packs(f"sqlite:///{tmp_path / 'old.db'}")
        return
    with fresh_pg_database(f"deskbot_test_migration_0017_{os.getpid()}") as url:
        yield from _with_packs(url)


def _with_packs(url: str) -> Iterator[str]:
    upgrade(url, "0016")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO customer (name, lang, created_at) VALUES ('Acme', 'en', '2024-01-01')"))
        for purchased in [*PURCHASES, date(2026, 1, 31)]:
            conn.execute(
                sa.text(
                    "INSERT INTO creditpack (customer_id, purchased, incidents, used, created_at, cancelled)"
                    " VALUES (1, :purchased, 5, 0, '2024-01-01', 0)"
                ),
                {"purchased": purchased},
            )
    engine.dispose()
    yield url


def _valid_until(url: str) -> dict[date, set[date]]:
    packs = sa.table("creditpack", sa.column("purchased", sa.Date()), sa.column("valid_until", sa.Date()))
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(packs.c.purchased, packs.c.valid_until)).all()
    engine.dispose()
    found: dict[date, set[date]] = {}
    for purchased, valid_until in rows:
        found.setdefault(purchased, set()).add(valid_until)
    return found


@pytest.mark.parametrize(("months", "which"), [(12, 0), (1, 1)])
def test_the_upgrade_fixes_each_pack_s_day_with_the_setting_at_the_upgrade(
    before_0017: str, months: int, which: int
) -> None:
    upgrade(before_0017, pack_validity_months=months)
    assert _valid_until(before_0017) == {bought: {ends[which]} for bought, ends in PURCHASES.items()}


def test_the_bot_upgrades_with_its_setting(before_0017: str) -> None:
    settings = make_settings(before_0017, DESKBOT_PACK_VALIDITY_MONTHS="1")
    console = ConsoleChannel(customer="nobody", stdin=io.StringIO(), stdout=io.StringIO())
    Runtime(settings, [console]).engine.dispose()
    assert _valid_until(before_0017) == {bought: {ends[1]} for bought, ends in PURCHASES.items()}


def test_the_command_line_upgrades_with_its_setting(
    before_0017: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,  # noqa: ANN001
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env read
    monkeypatch.setenv("DESKBOT_DATABASE_URL", before_0017)
    monkeypatch.setenv("DESKBOT_PACK_VALIDITY_MONTHS", "1")
    assert exit_status(main, ["db", "upgrade"]) == 0
    assert _valid_until(before_0017) == {bought: {ends[1]} for bought, ends in PURCHASES.items()}


def test_the_plain_alembic_command_gives_a_year_and_the_downgrade_drops_the_day(before_0017: str) -> None:
    config = alembic_config(before_0017)
    command.upgrade(config, "head")
    assert _valid_until(before_0017) == {bought: {ends[0]} for bought, ends in PURCHASES.items()}
    command.downgrade(config, "0016")
    engine = sa.create_engine(before_0017)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("creditpack")}
    engine.dispose()
    assert "valid_until" not in columns and "purchased" in columns
