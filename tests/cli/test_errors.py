"""The one error path: bad settings, an unreachable database, usage errors; help everywhere."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.cli.conftest import Run, assert_one_error_line

COMMANDS = [
    [],
    ["run"],
    ["chat"],
    ["db"],
    ["db", "upgrade"],
    ["customers"],
    ["customers", "add"],
    ["customers", "list"],
    ["customers", "show"],
    ["credits"],
    ["credits", "grant"],
    ["credits", "import"],
    ["cases"],
    ["cases", "list"],
    ["cases", "show"],
    ["report"],
    ["report", "billing"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "deskbot")
def test_every_command_has_help(cli_env: pytest.MonkeyPatch, command: list[str]) -> None:
    from tests.cli.conftest import CliRunner, exit_status, main

    cli_env.setenv("DESKBOT_RESPONSE_TARGET", "abc")  # help needs no settings
    with CliRunner().isolation() as (stdout, _stderr, _mixed):
        code = exit_status(main, [*command, "--help"])
        assert code == 0
        assert "Usage: deskbot" in stdout.getvalue().decode()


def test_version(cli: Run) -> None:
    result = cli("--version")
    assert result.code == 0 and result.stdout.startswith("deskbot ")


def test_a_bad_setting_is_one_line_naming_it(cli: Run, cli_env: pytest.MonkeyPatch) -> None:
    cli_env.setenv("DESKBOT_RESPONSE_TARGET", "abc")
    assert_one_error_line(cli("customers", "list"), "DESKBOT_RESPONSE_TARGET")
    cli_env.setenv("DESKBOT_RESPONSE_TARGET", "2")
    cli_env.setenv("DESKBOT_TIMEZONE", "Mars/Olympus")
    assert_one_error_line(cli("report", "billing", "--month", "2026-07"), "DESKBOT_TIMEZONE")


def test_database_unreachable(cli: Run, cli_env: pytest.MonkeyPatch) -> None:
    cli_env.setenv("DESKBOT_DATABASE_URL", "postgresql+psycopg://deskbot:s3cret@127.0.0.1:1/nothing")
    result = cli("customers", "list")
    assert_one_error_line(result, "cannot use the database")
    assert "s3cret" not in result.output


def test_unknown_command_and_option_are_usage_errors(cli: Run) -> None:
    assert_one_error_line(cli("customers", "remove", "x"), "No such command", code=2)
    assert_one_error_line(cli("customers", "list", "--bogus"), "--bogus", code=2)
    bad_choice = cli("cases", "list", "--state", "weird")
    assert_one_error_line(bad_choice, "'weird' is not one of 'open', 'resolved', 'closed'", code=2)
    assert "Value error" not in bad_choice.stderr
    no_args = cli()
    assert no_args.code == 2 and "Usage: deskbot" in no_args.output


def test_debug_logs_the_traceback(cli: Run, cli_env: pytest.MonkeyPatch) -> None:
    cli_env.setenv("DESKBOT_LOG_LEVEL", "DEBUG")
    result = cli("cases", "show", "99")
    assert result.code == 1
    assert "Traceback" in result.stderr and result.stderr.rstrip().splitlines()[-1] == "error: no case #99"


def test_db_upgrade(cli: Run) -> None:
    result = cli("db", "upgrade")
    assert result.code == 0, result
    assert "is up to date (revision" in result.stdout


def test_a_failed_migration_is_one_line(cli: Run, cli_env: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    # Alembic is imported only when a migration runs, and its errors are still recognised then.
    # (A database of its own: the PostgreSQL test database is shared by the whole session.)
    url = f"sqlite:///{tmp_path / 'unknown-revision.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('nonesuch')")
    engine.dispose()
    cli_env.setenv("DESKBOT_DATABASE_URL", url)
    assert_one_error_line(cli("db", "upgrade"), "database migrations:", "nonesuch")


def test_run_exits_with_the_status_of_serve(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.serve

    seen = []
    monkeypatch.setattr(bot.serve, "serve", lambda settings: seen.append(settings.database_url) or 3)
    assert cli("run").code == 3 and len(seen) == 1


def test_chat_plays_a_customer_until_end_of_input(cli: Run) -> None:
    result = cli("chat", "--customer", "Acme", input="help\n")
    assert result.code == 0, result
    assert "deskbot console" in result.stdout and "Traceback" not in result.output
    assert_one_error_line(cli("chat", "--as", "boss"), "--as", code=2)
