"""`deskbot run` loads only what it uses: no Alembic at head, no record-keeping commands, no Mastodon."""

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
    "babel.messages",  # the .po reader, the first time someone is answered in Portuguese
    "mastodon",  # the Mastodon channel, when it is configured
    "httpx",
    "bs4",
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
