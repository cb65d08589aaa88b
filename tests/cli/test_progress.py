"""Long-running work shows progress on a terminal (SPEC §5), and nothing where stderr is not one.

Each command runs as a child process on a real pseudo-terminal (`pty`), as a person at a shell
runs it: migrations, whichever command is the first to run them, show a spinner naming the
database (without its password) while they run, and none once it is up to date; an import shows
its rows counted. With stderr a pipe (a script, CI, a container), no spinner's frames are written.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "HOME": str(tmp_path),
        "TERM": "xterm-256color",
        "COLUMNS": "120",
        "LINES": "40",
        "DESKBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'deskbot.db'}",
    }


def on_a_terminal(tmp_path: Path, *args: str, timeout: float = 120) -> tuple[int, str]:
    """`deskbot ARGS` with stdin, stdout and stderr on a pseudo-terminal: its exit status and all it wrote."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        cwd=tmp_path,
        env=_env(tmp_path),
        close_fds=True,
    )
    os.close(child)
    written = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            written += chunk
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    return status, written.decode(errors="replace")


def test_the_first_command_on_a_new_database_shows_the_migrations_on_a_terminal(tmp_path: Path) -> None:
    status, shown = on_a_terminal(tmp_path, "customers", "list")
    assert status == 0, shown
    assert f"Applying migrations to sqlite:///{tmp_path / 'deskbot.db'}" in shown, shown
    assert "No customers" in shown or "no customers" in shown.lower(), shown

    status, shown = on_a_terminal(tmp_path, "customers", "list")  # up to date: nothing to show
    assert status == 0 and "Applying migrations" not in shown, shown


def test_db_upgrade_shows_them_too_and_says_what_it_did(tmp_path: Path) -> None:
    status, shown = on_a_terminal(tmp_path, "db", "upgrade")
    assert status == 0, shown
    assert "Applying migrations to" in shown and "upgraded from revision (empty) to" in shown, shown


def test_an_import_counts_its_rows_on_a_terminal(tmp_path: Path) -> None:
    rows = "".join(f"Customer {i},c{i}@example.com,2,2026-06-01\n" for i in range(300))
    (tmp_path / "packs.csv").write_text("customer,email,incidents,purchased\n" + rows)
    status, shown = on_a_terminal(tmp_path, "credits", "import", "packs.csv")
    assert status == 0, shown
    assert "importing" in shown and "/300" in shown, shown


def test_no_spinner_where_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "customers", "list"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "Applying migrations" not in done.stdout + done.stderr


def test_an_up_to_date_start_on_a_terminal_does_not_load_the_spinner(tmp_path: Path) -> None:
    """`deskbot run` migrates first; on a terminal with nothing to apply it must not pay for rich."""
    assert on_a_terminal(tmp_path, "db", "upgrade")[0] == 0
    probe = (
        "import sys\n"
        "from bot.cli.context import migrate, settings\n"
        "migrate(settings())\n"
        "print('on a terminal:', sys.stderr.isatty(), 'rich loaded:', 'rich' in sys.modules)\n"
    )
    main, child = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        stdin=child,
        stdout=subprocess.PIPE,
        stderr=child,
        cwd=tmp_path,
        env=_env(tmp_path),
        text=True,
        timeout=120,
    )
    os.close(child)
    os.close(main)
    assert proc.returncode == 0, proc.stdout
    assert "on a terminal: True rich loaded: False" in proc.stdout, proc.stdout
