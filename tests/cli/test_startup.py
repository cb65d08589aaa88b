"""`deskbot run` loads only what it uses: no Alembic at head, no record-keeping commands, no Mastodon;
and what every replica soon uses (the catalogues and dates of every language) at start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Modules the start of `deskbot run` on Zulip must not import (each costs memory in every replica).
NOT_ON_THE_RUN_PATH = (
    "alembic",  # only when a migration runs (storage.db.upgrade)
    "bot.cli.cases",  # the record-keeping command groups (bot.cli.LAZY_GROUPS)
    "bot.cli.credits",
    "bot.cli.customers",
    "bot.cli.reports",
    "rich",  # their tables and progress bars
    "mastodon",  # the Mastodon channel, when it is configured
    "httpx",
    "adapters.html_text",  # the HTML converter (and html.parser): a Mastodon status, an HTML-only mail
    "filetype",  # its matchers: the first file a customer sends (adapters.download.sniff)
    "holidays.countries",  # every country's module: the calendar loads its own country's alone
)

START = """
import sys
from bot.cli import app, settings
from bot.i18n import render
from bot.runtime import build_channels
import bot.serve

config = settings()
config.calendar
build_channels(config)
render("en", "{when} ({city} time)", when="now", city="Lisbon")
print(" ".join(name for name in sys.argv[1:] if name in sys.modules))
"""


def test_the_run_path_leaves_heavy_modules_out(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "ZULIP_SITE": "http://127.0.0.1:9",
        "ZULIP_EMAIL": "bot@example.com",
        "ZULIP_API_KEY": "key",
    }
    done = subprocess.run(
        [sys.executable, "-c", START, *NOT_ON_THE_RUN_PATH],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


STARTED = """
import io, sys
from datetime import datetime
from zoneinfo import ZoneInfo
from adapters.console import ConsoleChannel
from bot import i18n
from bot.runtime import Runtime
from tests.desk import make_settings

runtime = Runtime(make_settings("sqlite:///started.db"), [ConsoleChannel(customer="nobody", stdin=io.StringIO(), stdout=io.StringIO())])
runtime.start()
catalogues = i18n._catalogue.cache_info()
modules = set(sys.modules)
text = i18n.render("pt", "Your incidents:")
when = i18n.format_when(datetime(2027, 3, 1, 9, tzinfo=ZoneInfo("UTC")), "pt", runtime.settings.calendar.tz)
runtime.stop(drain_seconds=0.1)
print(catalogues.currsize, i18n._catalogue.cache_info().misses - catalogues.misses, sorted(set(sys.modules) - modules))
print(text)
print(when)
"""


def test_every_language_is_read_at_start_so_the_first_answer_in_it_reads_nothing(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", STARTED], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    counts, text, when = done.stdout.splitlines()
    # Both catalogues were read by start(); the first Portuguese answer read no file and loaded no module.
    assert counts == "2 0 []"
    assert text == "Os seus incidentes:"
    assert when.startswith("segunda-feira, 1 de março de 2027")
