"""Settings that were quietly not what the operator meant, and start-up failures that did not name
the setting to fix (SPEC §6), through the installed `deskbot` in a child process, as
tests/ops/test_startup_settings.py runs it.

* A name in `.env` that is no setting (a misspelling) stops every command, naming the closest
  setting; in the environment, which carries other programs' variables too, it is one warning.
* A `NAME_FILE` that is set but empty, or names an empty file, stops start-up saying so.
* `deskbot run` on Zulip with no engineers says at start that every engineer will be refused.
* A Zulip or Mastodon address that reaches no such server names its setting (and, for a bare host
  given https://, how to say http://).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakes.mastodon import FakeMastodon
from tests.fakes.zulip import FakeZulip
from tests.ops.test_startup_settings import (
    FOREIGN,
    SCRIPT,
    STARTUP_TIMEOUT,
    ZULIP,
    deskbot,
    free_port,
    one_error_line,
)

pytestmark = pytest.mark.timeout(180)

BOT, KEY, ENGINEER = "bot@example.com", "zk-s3cret", "erin@example.com"


# -- names that are no settings -----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("DESKBOT_DATABSE_URL=sqlite:///other.db", "DESKBOT_DATABSE_URL in .env; did you mean DESKBOT_DATABASE_URL?"),
        ("DESKBOT_ENGINERS=eng@example.com", "DESKBOT_ENGINERS in .env; did you mean DESKBOT_ENGINEERS?"),
        ("zulip_site=zulip.example.com", "zulip_site in .env; did you mean ZULIP_SITE?"),
        ("ZULIP_STREAM=helpdesk", "ZULIP_STREAM in .env; did you mean DESKBOT_ZULIP_STREAM?"),
        ("export EMAIL_XYZZY=1", "EMAIL_XYZZY in .env (README.md, Configuration, lists every setting)"),
    ],
    ids=["database", "engineers", "lower-case", "own-prefix", "nothing-close"],
)
@pytest.mark.parametrize("command", ["run", "customers"])
def test_a_name_in_the_env_file_that_is_no_setting_stops_every_command(
    tmp_path: Path, line: str, said: str, command: str
) -> None:
    (tmp_path / ".env").write_text(f"DESKBOT_TIMEZONE=UTC\n{line}\n")
    args = ("run",) if command == "run" else ("customers", "list")
    assert one_error_line(deskbot(tmp_path, *args, **ZULIP)) == f"unknown setting {said}"
    assert not list(tmp_path.glob("*.db"))  # stopped before any database was touched
    # Other programs' names, without deskbot's prefixes, are theirs.
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=x\nTZ=UTC\n")
    assert deskbot(tmp_path, "customers", "list").code == 0


def test_a_name_in_the_environment_that_is_no_setting_is_one_warning(tmp_path: Path) -> None:
    # Logged as the command's own lines are (bot.cli.errors): before `run` sets up its logging.
    warning = (
        "WARNING deskbot.settings: unknown setting DESKBOT_ENGINERS in the environment; did you mean DESKBOT_ENGINEERS?"
    )
    listed = deskbot(tmp_path, "customers", "list", DESKBOT_ENGINERS=ENGINEER)
    assert listed.code == 0, listed
    assert listed.stderr.splitlines() == [warning]
    ran = deskbot(tmp_path, "run", DESKBOT_ENGINERS=ENGINEER)  # no channel: exit status 2, after the warning
    assert ran.code == 2 and ran.stderr.splitlines()[0] == warning, ran.stderr
    # Names of deskbot's own that are no settings, read from the environment: nothing said. (CI
    # runs the tests with DESKBOT_NO_SKIPS=1, which every deskbot the tests start inherits.)
    own = {
        "DESKBOT_NO_SKIPS": "1",
        "DESKBOT_TEST_BACKENDS": "sqlite",
        "DESKBOT_REVISION": "abc123",
        "ZULIP_ALLOW_INSECURE": "false",
    }
    quiet = deskbot(tmp_path, "customers", "list", **own)
    assert quiet.code == 0 and quiet.stderr == "", quiet


# -- NAME_FILE -----------------------------------------------------------------------------


def test_a_file_setting_that_is_set_but_empty_stops_start_up(tmp_path: Path) -> None:
    # Read as unset, it left DESKBOT_DATABASE_URL (here the environment's) or ./deskbot.db in use.
    (tmp_path / ".env").write_text("DESKBOT_DATABASE_URL_FILE=\n")
    line = one_error_line(deskbot(tmp_path, "customers", "list"))
    assert line == "DESKBOT_DATABASE_URL_FILE is set but empty (in .env): give the file's path, or remove it"
    (tmp_path / ".env").unlink()
    line = one_error_line(deskbot(tmp_path, "run", **ZULIP, ZULIP_API_KEY_FILE=""))
    assert line == "ZULIP_API_KEY_FILE is set but empty (in the environment): give the file's path, or remove it"
    assert not list(tmp_path.glob("*.db"))
    # Empty in the environment, a path in `.env`: the path.
    url_file = tmp_path / "database_url"
    url_file.write_text(f"sqlite:///{tmp_path / 'from-file.db'}\n")
    (tmp_path / ".env").write_text(f"DESKBOT_DATABASE_URL_FILE={url_file}\n")
    assert deskbot(tmp_path, "customers", "list", DESKBOT_DATABASE_URL_FILE="").code == 0
    assert (tmp_path / "from-file.db").exists()


def test_an_empty_secret_file_stops_start_up_unless_it_leaves_its_channel_off(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    line = one_error_line(deskbot(tmp_path, "customers", "list", DESKBOT_DATABASE_URL_FILE=str(empty)))
    assert line == f"DESKBOT_DATABASE_URL_FILE: the file {empty} is empty"
    zulip = {"ZULIP_SITE": ZULIP["ZULIP_SITE"], "ZULIP_EMAIL": BOT}
    line = one_error_line(deskbot(tmp_path, "run", **zulip, ZULIP_API_KEY_FILE=str(empty)))
    assert line == f"ZULIP_API_KEY_FILE: the file {empty} is empty"
    # deploy/compose.yaml: an empty key file, and nothing else of the channel set, leaves it off.
    off = deskbot(tmp_path, "customers", "list", ZULIP_API_KEY_FILE=str(empty), MASTODON_ACCESS_TOKEN_FILE=str(empty))
    assert off.code == 0 and off.stderr == "", off


# -- deskbot run on Zulip without engineers --------------------------------------------------


def run_until_running(where: Path, **settings: str) -> str:
    """`deskbot run` in `where` (as `deskbot` runs it) until it says it runs, then SIGTERM; its stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN) and k != "PYTEST_CURRENT_TEST"}
    env.update(DESKBOT_DATABASE_URL=f"sqlite:///{where / 'deskbot.db'}", DESKBOT_HTTP_ADDR=f"127.0.0.1:{free_port()}")
    env.update(settings)
    log = where / "run.err"
    with log.open("w") as err:
        proc = subprocess.Popen([str(SCRIPT), "run"], cwd=where, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 60
            while "deskbot running" not in log.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            proc.terminate()
            assert proc.wait(30) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return log.read_text()


def test_run_on_zulip_without_engineers_warns_once_at_start(tmp_path: Path) -> None:
    with FakeZulip(heartbeat=1.0) as zulip:
        zulip.add_user(BOT, "Desk Bot", KEY, is_bot=True)
        zulip.add_user(ENGINEER, "Erin", "erin-key")
        zulip.add_stream("support", subscribers=[BOT, ENGINEER])
        settings = {"ZULIP_SITE": zulip.url, "ZULIP_EMAIL": BOT, "ZULIP_API_KEY": KEY}
        told = [line for line in run_until_running(tmp_path, **settings).splitlines() if "DESKBOT_ENGINEERS" in line]
        assert len(told) == 1 and " WARNING " in told[0], told
        assert "DESKBOT_ENGINEERS is empty: every engineer command on Zulip will be refused" in told[0]
        assert "DESKBOT_ENGINEERS is empty" not in run_until_running(tmp_path, **settings, DESKBOT_ENGINEERS=ENGINEER)


# -- platform addresses that reach no such platform ---------------------------------------------


def cannot_start(done_stderr: str) -> str:
    """What the last line of a `deskbot run` that could not start says after "cannot start: "."""
    last = done_stderr.splitlines()[-1]
    assert " ERROR " in last and "cannot start: " in last, done_stderr
    return last.split("cannot start: ", 1)[1]


def test_a_tls_error_on_a_bare_zulip_host_names_the_setting_and_how_to_say_http(tmp_path: Path) -> None:
    with FakeZulip() as zulip:  # plain HTTP
        zulip.add_user(BOT, "Desk Bot", KEY, is_bot=True)
        host = zulip.url.removeprefix("http://")
        hint = f"(https:// was added to the bare host {host}; a server that speaks plain HTTP needs http://{host})"
        done = deskbot(tmp_path, "run", ZULIP_SITE=host, ZULIP_EMAIL=BOT, ZULIP_API_KEY=KEY)
        assert done.code == 1 and done.seconds < STARTUP_TIMEOUT, done
        assert cannot_start(done.stderr) == f"ZULIP_SITE: TLS error talking to Zulip at https://{host} {hint}"
        zuliprc = tmp_path / "zuliprc"
        zuliprc.write_text(f"[api]\nemail={BOT}\nkey={KEY}\nsite={host}\n")
        done = deskbot(tmp_path, "run", ZULIP_CONFIG=str(zuliprc))
        said = f"ZULIP_CONFIG (the site in {zuliprc}): TLS error talking to Zulip at https://{host} {hint}"
        assert cannot_start(done.stderr) == said
        assert KEY not in done.stderr


def test_a_site_that_is_no_zulip_or_no_mastodon_names_the_setting(tmp_path: Path) -> None:
    # Each fake answers the other platform's first request as a web server does: not found.
    with FakeZulip() as zulip, FakeMastodon() as mastodon:
        done = deskbot(tmp_path, "run", ZULIP_SITE=mastodon.url, ZULIP_EMAIL=BOT, ZULIP_API_KEY=KEY)
        said = f"ZULIP_SITE: {mastodon.url} does not answer like a Zulip server (no zulip_version)"
        assert cannot_start(done.stderr) == said
        done = deskbot(tmp_path, "run", MASTODON_API_BASE_URL=zulip.url, MASTODON_ACCESS_TOKEN="mt-s3cret")
        said = f"MASTODON_API_BASE_URL: {zulip.url} does not answer like a Mastodon server (HTTP 404: "
        assert cannot_start(done.stderr).startswith(said), done.stderr


def test_a_tls_error_on_a_bare_mastodon_host_names_the_setting_and_how_to_say_http(tmp_path: Path) -> None:
    with FakeMastodon() as mastodon:  # plain HTTP
        host = mastodon.url.removeprefix("http://")
        done = deskbot(tmp_path, "run", MASTODON_API_BASE_URL=host, MASTODON_ACCESS_TOKEN="mt-s3cret")
        # Told at once: waiting DESKBOT_STARTUP_TIMEOUT for a server to start speaking TLS changes nothing.
        assert done.code == 1 and done.seconds < STARTUP_TIMEOUT, done
        assert cannot_start(done.stderr) == (
            f"MASTODON_API_BASE_URL: TLS error talking to Mastodon at https://{host}: the server does not speak TLS"
            f" there (https:// was added to the bare host {host}; a server that speaks plain HTTP needs http://{host})"
        )
