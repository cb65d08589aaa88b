"""Progress on a terminal (SPEC §5: long-running work shows progress there): a spinner on stderr
while the work runs, gone when it ends; nothing at all when stderr is a file or a pipe (logs, CI,
a container), where a spinner's frames would be noise."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext


def status(text: str) -> AbstractContextManager[object]:
    """A spinner saying `text` while the `with` block runs, on a terminal."""
    if not sys.stderr.isatty():
        return nullcontext()
    from rich.console import Console  # only on a terminal: `deskbot run` in a container never pays for it

    return Console(stderr=True).status(text)
