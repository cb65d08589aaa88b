"""End to end through the installed `deskbot` console script, on a fresh SQLite file (no migrations run yet)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "deskbot"


@pytest.mark.skipif(not SCRIPT.exists(), reason="deskbot is not installed in this environment (uv pip install -e .)")
def test_fresh_machine(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DESKBOT_", "ZULIP_", "MASTODON_"))}
    env["DESKBOT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'fresh.db'}"

    def deskbot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    added = deskbot("customers", "add", "Fresh Co", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["name"] == "Fresh Co"
    assert [c["name"] for c in json.loads(deskbot("customers", "list", "--json").stdout)] == ["Fresh Co"]

    missing = deskbot("cases", "show", "7")
    assert missing.returncode == 1
    assert missing.stderr == "error: no case #7\n" and "Traceback" not in missing.stdout
