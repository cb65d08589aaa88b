"""One receiver per channel: advisory locks on PostgreSQL, one process on SQLite."""

from __future__ import annotations

import pytest

from storage.db import make_engine
from storage.leases import AlreadyRunning, ChannelLease, SingleProcessLock


def test_one_process_receives_a_channel_and_another_takes_over_when_it_goes(engine, db_url):
    if engine.dialect.name == "sqlite":
        first, second = SingleProcessLock(engine), SingleProcessLock(make_engine(db_url))
        first.acquire()
        with pytest.raises(AlreadyRunning, match="SQLite allows one process"):
            second.acquire()
        first.release()
        second.acquire()
        second.release()
        return
    other_engine = make_engine(db_url)
    active, standby = ChannelLease(engine, "zulip"), ChannelLease(other_engine, "zulip")
    assert active.try_acquire()
    assert not standby.try_acquire()
    assert ChannelLease(other_engine, "mastodon").try_acquire()  # channels are independent
    assert active.try_acquire()  # the holder keeps it
    # The holder dies: its connection goes, and PostgreSQL frees the lock with it.
    active._connection.invalidate()
    assert standby.try_acquire()
    standby.release()
    other_engine.dispose()
