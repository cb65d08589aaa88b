"""What an operator sees when a setting stops start-up (SPEC §6: one clear line naming it, no
traceback, no secret), through the installed `deskbot` console script in a child process each
time, from an empty working directory (its own `.env`, if any) and an environment holding no
deskbot, platform or CA-bundle setting of the developer's.

With DESKBOT_LOG_FORMAT=json (the container image's) the line is a JSON log line, as the logs
are; a setting that names a file, a site or a database is checked when the settings are read,
not when a channel first connects (after DESKBOT_STARTUP_TIMEOUT, blaming another setting).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.db import HEAD_REVISION
from tests.fakes.zulip import FakeZulip

SCRIPT = Path(sys.executable).parent / "deskbot"

pytestmark = [
    pytest.mark.skipif(
        not SCRIPT.exists(), reason="deskbot is not installed in this environment (uv pip install -e .)"
    ),
    pytest.mark.timeout(180),
]

#: Variables of the developer's environment that would change what these tests see.
FOREIGN = ("DESKBOT_", "ZULIP_", "MASTODON_", "EMAIL_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_")
#: Longer than any check of a setting takes; the channels' wait for their platform is this long.
STARTUP_TIMEOUT = 20.0
ZULIP = {"ZULIP_SITE": "https://127.0.0.1:9", "ZULIP_EMAIL": "bot@example.com", "ZULIP_API_KEY": "zk-s3cret"}
EMAIL = {
    "EMAIL_ADDRESS": "support@example.com",
    "EMAIL_IMAP_URL": "imap://127.0.0.1:1",
    "EMAIL_SMTP_URL": "smtp://127.0.0.1:1",
    "EMAIL_PASSWORD": "pw-s3cret",
}


@dataclass(frozen=True)
class Done:
    code: int
    stdout: str
    stderr: str
    seconds: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def deskbot(where: Path, *args: str, **settings: str) -> Done:
    """`deskbot ARGS` run in `where`, with `settings` (a database of its own in `where` unless given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN) and k != "PYTEST_CURRENT_TEST"}
    env["DESKBOT_DATABASE_URL"] = f"sqlite:///{where / 'deskbot.db'}"
    env["DESKBOT_HTTP_ADDR"] = f"127.0.0.1:{free_port()}"
    env["DESKBOT_STARTUP_TIMEOUT"] = f"{STARTUP_TIMEOUT:g}"
    env.update(settings)
    began = time.monotonic()
    done = subprocess.run([str(SCRIPT), *args], cwd=where, env=env, capture_output=True, text=True, timeout=120)
    return Done(done.returncode, done.stdout, done.stderr, time.monotonic() - began)


def one_error_line(done: Done, *fragments: str) -> str:
    """The single `error: ` line of a command that failed at once; what follows `error: `."""
    assert done.code == 1, done
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.seconds < STARTUP_TIMEOUT, f"took {done.seconds:.1f}s: the channels were started first"
    line = done.stderr[len("error: ") :].rstrip("\n")
    for fragment in fragments:
        assert fragment in line, line
    assert "s3cret" not in done.stdout + done.stderr
    return line


def json_lines(done: Done) -> list[dict[str, object]]:
    """Every stderr line, each of which must be one JSON object."""
    records = []
    for line in done.stderr.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\n{done.stderr}") from None
    return records


# -- DESKBOT_LOG_LEVEL, DESKBOT_LOG_FORMAT -----------------------------------------


def test_the_log_level_and_format_are_taken_in_any_case(tmp_path: Path) -> None:
    listed = deskbot(tmp_path, "customers", "list", DESKBOT_LOG_LEVEL="debug")
    assert listed.code == 0, listed
    assert "Traceback" not in listed.stderr and "DESKBOT_LOG_LEVEL" not in listed.stderr
    # `run` gets as far as its own first check: no channel is configured (exit status 2).
    ran = deskbot(tmp_path, "run", DESKBOT_LOG_LEVEL="Debug", DESKBOT_LOG_FORMAT="JSON")
    assert ran.code == 2, ran
    errors = [r for r in json_lines(ran) if r["level"] == "error"]
    assert len(errors) == 1 and str(errors[0]["message"]).startswith("no channel configured"), ran.stderr


def test_a_bad_setting_is_one_line_without_a_traceback_even_at_debug(tmp_path: Path) -> None:
    line = one_error_line(deskbot(tmp_path, "run", DESKBOT_LOG_LEVEL="DEBUG", DESKBOT_TIMEZONE="X/Y"))
    assert line == "DESKBOT_TIMEZONE: unknown time zone 'X/Y'"
    one_error_line(deskbot(tmp_path, "customers", "list", DESKBOT_LOG_LEVEL="loud"), "DESKBOT_LOG_LEVEL: ")
    # Any other failure still logs its traceback at DEBUG.
    missing = deskbot(tmp_path, "cases", "show", "7", DESKBOT_LOG_LEVEL="debug")
    assert missing.code == 1 and "Traceback" in missing.stderr
    assert missing.stderr.splitlines()[-1] == "error: no case #7"


@pytest.mark.parametrize(
    ("args", "settings", "said"),
    [
        pytest.param(("run",), {"DESKBOT_TIMEZONE": "X/Y"}, "DESKBOT_TIMEZONE: unknown time zone 'X/Y'", id="setting"),
        pytest.param(
            ("customers", "list"),
            {"DESKBOT_DATABASE_URL": "postgresql+psycopg://deskbot:s3cret@127.0.0.1:1/nothing"},
            "cannot use the database: ",
            id="database",
        ),
        pytest.param(("cases", "show", "7"), {}, "no case #7", id="command"),
    ],
)
def test_with_json_logs_the_failure_is_a_json_log_line(
    tmp_path: Path, args: tuple[str, ...], settings: dict[str, str], said: str
) -> None:
    done = deskbot(tmp_path, *args, DESKBOT_LOG_FORMAT="json", **settings)
    assert done.code == 1, done
    last = json_lines(done)[-1]
    assert set(last) == {"time", "level", "logger", "message"}, last
    assert last["level"] == "error" and last["logger"] == "deskbot.cli"
    assert str(last["message"]).startswith(said), last
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr


def test_json_logs_named_in_the_env_file_count_too_and_a_bad_format_is_told_in_plain_text(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DESKBOT_LOG_FORMAT=json\nDESKBOT_TIMEZONE=X/Y\n")
    (record,) = json_lines(deskbot(tmp_path, "customers", "list"))
    assert record["level"] == "error" and record["message"] == "DESKBOT_TIMEZONE: unknown time zone 'X/Y'"
    (tmp_path / ".env").unlink()
    one_error_line(deskbot(tmp_path, "customers", "list", DESKBOT_LOG_FORMAT="xml"), "DESKBOT_LOG_FORMAT: ")


# -- files the settings name -----------------------------------------------------------


def test_an_email_ca_file_that_is_not_there_or_holds_no_certificates_stops_start_up_naming_it(tmp_path: Path) -> None:
    line = one_error_line(deskbot(tmp_path, "run", **EMAIL, EMAIL_CA_FILE=str(tmp_path / "nonexistent.pem")))
    assert line == f"EMAIL_CA_FILE: no file at {tmp_path / 'nonexistent.pem'}"
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    line = one_error_line(deskbot(tmp_path, "run", **EMAIL, EMAIL_CA_FILE=str(tmp_path / "notes.txt")))
    assert line == f"EMAIL_CA_FILE: {tmp_path / 'notes.txt'} holds no PEM certificates"
    one_error_line(deskbot(tmp_path, "run", **EMAIL, EMAIL_CA_FILE=str(tmp_path)), "EMAIL_CA_FILE: ", "directory")


@pytest.mark.parametrize("name", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "ZULIP_CERT_BUNDLE"])
def test_a_ca_bundle_the_environment_names_for_the_platforms_is_checked_at_start(tmp_path: Path, name: str) -> None:
    missing = str(tmp_path / "company-ca.pem")
    line = one_error_line(deskbot(tmp_path, "run", **ZULIP, **{name: missing}))
    assert line == f"{name}: no file at {missing}"


def test_the_site_and_the_files_a_zuliprc_names_are_checked_at_start(tmp_path: Path) -> None:
    zuliprc = tmp_path / "zuliprc"
    zuliprc.write_text("[api]\nemail=bot@example.com\nkey=zk-s3cret\nsite=ftp://zulip.example.invalid\n")
    line = one_error_line(deskbot(tmp_path, "run", ZULIP_CONFIG=str(zuliprc)))
    assert line.startswith(f"ZULIP_CONFIG: the site in {zuliprc}: expected an http:// or https:// address"), line
    # ZULIP_SITE overrides the file's site, as the channel takes it.
    assert deskbot(tmp_path, "customers", "list", ZULIP_CONFIG=str(zuliprc), ZULIP_SITE="zulip.example.com").code == 0
    zuliprc.write_text(
        f"[api]\nemail=bot@example.com\nkey=zk-s3cret\nsite=https://127.0.0.1:9\ncert_bundle={tmp_path / 'ca.pem'}\n"
    )
    line = one_error_line(deskbot(tmp_path, "run", ZULIP_CONFIG=str(zuliprc)))
    assert line == f"ZULIP_CONFIG: cert_bundle in {zuliprc}: no file at {tmp_path / 'ca.pem'}"


# -- platform addresses ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ZULIP_SITE", "ftp://zulip.example.invalid"),
        ("ZULIP_SITE", "not a url"),
        ("ZULIP_SITE", "https://zulip.example.invalid:port"),
        ("ZULIP_SITE", "https://"),
        ("MASTODON_API_BASE_URL", "not a url"),
        ("MASTODON_API_BASE_URL", "gopher://mastodon.example.invalid"),
    ],
)
def test_a_platform_address_of_the_wrong_form_stops_start_up_at_once_naming_it(
    tmp_path: Path, name: str, value: str
) -> None:
    settings = (
        {**ZULIP, name: value} if name.startswith("ZULIP") else {"MASTODON_ACCESS_TOKEN": "mt-s3cret", name: value}
    )
    line = one_error_line(deskbot(tmp_path, "run", **settings))
    assert line.startswith(f"{name}: expected ") and value in line, line


@pytest.mark.parametrize(
    "value", ["zulip.example.com", "https://zulip.example.com/", "http://127.0.0.1:9991", "https://[::1]:8443"]
)
def test_the_platform_addresses_taken_until_now_are_still_taken(tmp_path: Path, value: str) -> None:
    settings = {"MASTODON_API_BASE_URL": value, "MASTODON_ACCESS_TOKEN": "mt-s3cret"}
    assert deskbot(tmp_path, "customers", "list", **{**ZULIP, "ZULIP_SITE": value}).code == 0
    assert deskbot(tmp_path, "customers", "list", **settings).code == 0


# -- DESKBOT_DATABASE_URL --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("sqlite:relative.db", "DESKBOT_DATABASE_URL: cannot be read as a database URL"),
        ("postgresql://deskbot:s3cret@127.0.0.1:abc/x", "DESKBOT_DATABASE_URL: the port is not a number"),
        (
            "postgresql+psycopg2://deskbot:s3cret@127.0.0.1/x",
            "DESKBOT_DATABASE_URL: the database driver psycopg2 is not installed: deskbot runs on "
            "postgresql+psycopg:// (psycopg 3) and sqlite:///",
        ),
        (
            "sqlite:////nonexistent/dir/x.db",
            "DESKBOT_DATABASE_URL: the directory of the SQLite file, /nonexistent/dir, does not exist",
        ),
    ],
)
@pytest.mark.parametrize("command", ["run", "customers"])
def test_a_database_url_that_cannot_work_is_one_line_naming_it(
    tmp_path: Path, url: str, said: str, command: str
) -> None:
    args = ("run",) if command == "run" else ("customers", "list")
    line = one_error_line(deskbot(tmp_path, *args, **ZULIP, DESKBOT_DATABASE_URL=url))
    assert line.startswith(said), line


def test_a_database_newer_than_this_deskbot_says_what_to_do(tmp_path: Path, db_url: str) -> None:
    newer = f"{int(HEAD_REVISION) + 1:04d}"
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{newer}'")
    try:
        for args in (("customers", "list"), ("db", "upgrade"), ("run",)):
            line = one_error_line(deskbot(tmp_path, *args, **ZULIP, DESKBOT_DATABASE_URL=db_url))
            assert line == (
                f"database migrations: the database is at revision {newer}, newer than this deskbot knows"
                f" ({newer} is unknown; this build's newest is {HEAD_REVISION}): run the newer deskbot, or"
                " restore the backup taken before the upgrade"
            )
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{HEAD_REVISION}'")
        engine.dispose()


# -- .env ------------------------------------------------------------------------------


def test_an_env_file_that_is_not_utf8_names_the_file_and_the_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"DESKBOT_TIMEZONE=UTC\n\nEMAIL_PASSWORD=s3cret-\xe9t\xe9\n")
    line = one_error_line(deskbot(tmp_path, "customers", "list"))
    assert line == ".env, line 3 (EMAIL_PASSWORD): not UTF-8 text (save the file as UTF-8)"


def test_an_env_file_that_is_a_directory_or_a_dangling_link_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()
    assert one_error_line(deskbot(tmp_path, "run")) == ".env: a directory, not a file of NAME=value lines"
    (tmp_path / ".env").rmdir()
    (tmp_path / ".env").symlink_to(tmp_path / "deploy.env")
    line = one_error_line(deskbot(tmp_path, "customers", "list"))
    assert line == f".env: a symbolic link to {tmp_path / 'deploy.env'}, which does not exist"


# -- DESKBOT_HTTP_ADDR -----------------------------------------------------------------


@pytest.mark.parametrize("taken", [True, False], ids=["in-use", "not-on-this-host"])
def test_an_http_address_that_cannot_be_listened_on_names_the_setting(tmp_path: Path, taken: bool) -> None:
    busy = socket.create_server(("127.0.0.1", 0))
    # 192.0.2.1 (TEST-NET-1) is no address of this host.
    addr = f"127.0.0.1:{busy.getsockname()[1]}" if taken else "192.0.2.1:8080"
    with FakeZulip(heartbeat=1.0) as zulip:
        zulip.add_user("bot@example.com", "Desk Bot", "zk-s3cret", is_bot=True)
        zulip.add_stream("support", subscribers=["bot@example.com"])
        done = deskbot(tmp_path, "run", **{**ZULIP, "ZULIP_SITE": zulip.url}, DESKBOT_HTTP_ADDR=addr)
        # Refused before any platform is touched: not one request to Zulip (no event queue registered).
        registered = [f"{r.method} {r.path}" for r in zulip.requests]
    busy.close()
    assert registered == []
    assert done.code == 1, done
    last = done.stderr.splitlines()[-1]
    why = "Address already in use" if taken else "Cannot assign requested address"
    assert last.startswith(f"error: DESKBOT_HTTP_ADDR: cannot listen on {addr}: {why}"), done.stderr
    assert "Traceback" not in done.stderr
