"""Progress on a terminal (SPEC §5: long-running work shows progress there): a spinner on stderr
while the work runs, gone when it ends; nothing at all when stderr is a file or a pipe (logs, CI,
a container), where a spinner's frames would be noise."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType


class _Spinner(AbstractContextManager[object]):
    """rich's status, built when the `with` block is entered: `deskbot run` on a terminal passes one to
    the migrations, which enter it only when one is due, so an up-to-date start never imports rich."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._shown: AbstractContextManager[object] | None = None

    def __enter__(self) -> object:
        from rich.console import Console

        self._shown = Console(stderr=True).status(self._text)
        return self._shown.__enter__()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool | None:
        assert self._shown is not None
        return self._shown.__exit__(kind, error, trace)


def status(text: str) -> AbstractContextManager[object]:
    """A spinner saying `text` while the `with` block runs, on a terminal."""
    return _Spinner(text) if sys.stderr.isatty() else nullcontext()
