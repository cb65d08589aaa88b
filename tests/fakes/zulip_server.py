"""`python -m tests.fakes.zulip_server`: the fake Zulip server on its own.

The implementation is the package `tests.fakes.zulip`; this module keeps the
documented command line stable.
"""

from tests.fakes.zulip import FakeZulipServer
from tests.fakes.zulip.__main__ import main

__all__ = ["FakeZulipServer", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
