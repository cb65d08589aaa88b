"""`NAME_FILE` secrets given in `.env` work as they do in the environment (issue 15, item 5).

Through the real command line: `deskbot customers add` from a directory whose `.env` names the
database in `DESKBOT_DATABASE_URL_FILE` must write to that database, not to `./deskbot.db`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.cli.conftest import Run, assert_one_error_line


@pytest.fixture
def workdir(cli: Run, cli_env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory of its own (the SQLite test database lives in tmp_path), no URL in the environment."""
    cli_env.delenv("DESKBOT_DATABASE_URL", raising=False)
    directory = tmp_path / "work"
    directory.mkdir()
    cli_env.chdir(directory)
    return directory


def _customers(db_url: str) -> list[str]:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text("SELECT name FROM customer ORDER BY id")).scalars())
    finally:
        engine.dispose()


def test_database_url_file_in_dotenv(cli: Run, workdir: Path, db_url: str, tmp_path: Path) -> None:
    secret = tmp_path / "secrets" / "database_url"
    secret.parent.mkdir()
    secret.write_text(db_url + "\n")
    Path(".env").write_text(f"DESKBOT_DATABASE_URL_FILE={secret}\n")

    added = cli("customers", "add", "Acme", "--json")
    assert added.code == 0, added
    assert json.loads(added.stdout)["name"] == "Acme"
    assert _customers(db_url) == ["Acme"]
    assert not Path("deskbot.db").exists()


def test_environment_file_wins_over_dotenv_file(
    cli: Run, workdir: Path, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "good"
    good.write_text(db_url)
    Path(".env").write_text(f"DESKBOT_DATABASE_URL_FILE={tmp_path / 'missing'}\n")
    monkeypatch.setenv("DESKBOT_DATABASE_URL_FILE", str(good))

    assert cli("customers", "add", "Beta").code == 0
    assert _customers(db_url) == ["Beta"]


def test_unreadable_file_in_dotenv_is_one_line(cli: Run, workdir: Path, tmp_path: Path) -> None:
    Path(".env").write_text(f"DESKBOT_DATABASE_URL_FILE={tmp_path / 'missing'}\n")

    assert_one_error_line(cli("customers", "list"), "DESKBOT_DATABASE_URL_FILE", "cannot read")
    assert not Path("deskbot.db").exists()


def test_secret_from_dotenv_file_is_scrubbed(cli: Run, workdir: Path, tmp_path: Path) -> None:
    # A password in the URL file: the error line about the unreachable database must not show it.
    secret = tmp_path / "database_url"
    secret.write_text("postgresql+psycopg://deskbot:s3cr3t-pw@127.0.0.1:1/deskbot")
    Path(".env").write_text(f"DESKBOT_DATABASE_URL_FILE={secret}\n")

    failed = cli("customers", "list")
    assert_one_error_line(failed, "database")
    assert "s3cr3t-pw" not in failed.output


def test_a_dotenv_line_that_cannot_be_read_stops_start_up(
    cli: Run, workdir: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # python-dotenv skips such a line with a warning of its own: the URL on it was lost, and the
    # command ran on ./deskbot.db instead. The line may hold a secret: its text is not shown.
    Path(".env").write_text(f'# the database\n\nDESKBOT_DATABASE_URL="{db_url}\nEMAIL_PASSWORD="s3cr3t-pw\n')

    failed = cli("customers", "list")
    assert_one_error_line(failed, ".env, line 3 (DESKBOT_DATABASE_URL): cannot be read as NAME=value")
    assert db_url not in failed.output
    assert not [r for r in caplog.records if "could not parse" in r.getMessage()]  # said once, in the error
    assert not Path("deskbot.db").exists()
    Path(".env").write_text(f'DESKBOT_DATABASE_URL="{db_url}"\nEMAIL_PASSWORD="s3cr3t-pw\n')
    failed = cli("customers", "list")
    assert_one_error_line(failed, ".env, line 2 (EMAIL_PASSWORD)")
    assert "s3cr3t-pw" not in failed.output
    Path(".env").write_text(f'DESKBOT_DATABASE_URL="{db_url}"\nEMAIL_ALIASES="a@example.com,\n  b@example.com"\n')
    assert cli("customers", "list").code == 0  # a quoted value may go on over lines
