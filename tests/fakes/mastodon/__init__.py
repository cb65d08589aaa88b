"""A fake Mastodon server for tests: real HTTP on 127.0.0.1, driven by Mastodon.py.

    with FakeMastodon(bot_acct="deskbot", bot_token="t") as fake:
        fake.add_account("alice@remote.example")
        fake.post_status("alice@remote.example", "@deskbot hello", visibility="direct")

Run it on its own with `python -m tests.fakes.mastodon --help`.
"""

from .limits import Fault
from .model import Account, Posted
from .server import FakeMastodon, Stats

__all__ = ("Account", "FakeMastodon", "Fault", "Posted", "Stats")
