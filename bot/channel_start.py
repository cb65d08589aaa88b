"""Starting the channels at `deskbot run`: a bounded wait for platforms that do not answer yet.

A platform host that cannot be resolved or reached at start is most often a wrong setting (a
misspelled `ZULIP_SITE`), sometimes a platform still starting. So each channel is tried again with
back-off, all side by side, for at most DESKBOT_STARTUP_TIMEOUT seconds; the wait is told once.
Then start-up stops with one line that names the setting holding each address that never
answered. Outages after a channel has connected are another matter: they are waited out, quietly
(`bot.channel_health`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable

from adapters.channel import Channel, PermanentChannelError, TransientChannelError
from bot.config import Settings

log = logging.getLogger("deskbot.runtime")

#: Longest wait between two tries of a channel's start.
RETRY_MAX_SECONDS = 5.0
#: A try is not begun this close to the deadline.
LAST_TRY_MARGIN = 0.2


class StartupTimeout(PermanentChannelError):
    """A platform did not answer within DESKBOT_STARTUP_TIMEOUT; the message names the setting."""


def address_setting(settings: Settings, channel: str) -> str:
    """The setting that holds the platform address a channel uses."""
    if channel == "zulip":
        return "ZULIP_SITE" if settings.zulip_site or not settings.zulip_config else "ZULIP_CONFIG (its site)"
    if channel == "mastodon":
        return "MASTODON_API_BASE_URL"
    if channel == "email":
        return "EMAIL_IMAP_URL / EMAIL_SMTP_URL"
    return channel


def keep_trying(
    attempt: Callable[[], object],
    transient: Callable[[BaseException], bool],
    deadline: float,
    stop: threading.Event,
    on_failure: Callable[[BaseException, int], None],
) -> None:
    """Call `attempt` until it returns, trying again after an error `transient` says may pass (each
    told to `on_failure` with the count of failures so far) with jittered exponential back-off, up to
    RETRY_MAX_SECONDS between tries, until `deadline` (time.monotonic) or `stop`: then that error is
    raised, as is any other at once."""
    failures = 0
    while True:
        try:
            attempt()
            return
        except Exception as exc:
            if not transient(exc):
                raise
            failures += 1
            on_failure(exc, failures)
            wait = random.uniform(0.5, min(RETRY_MAX_SECONDS, 2.0**failures))
            left = deadline - time.monotonic() - LAST_TRY_MARGIN
            if left <= 0 or stop.wait(min(wait, left)):
                raise


def start_channels(channels: Iterable[Channel], settings: Settings, stop: threading.Event) -> None:
    """`start()` every channel, side by side, each tried again while its platform does not answer
    (TransientChannelError: host unknown, connection refused, 5xx) for `settings.startup_timeout`
    seconds in all.

    Raises the first PermanentChannelError (or other error) a channel raised; else, if a platform
    never answered, one StartupTimeout naming the setting of each such address and why.
    """
    timeout = settings.startup_timeout
    deadline = time.monotonic() + timeout
    outcome: dict[str, BaseException | None] = {}
    last: dict[str, BaseException] = {}

    def start(channel: Channel) -> None:
        def failed(exc: BaseException, failures: int) -> None:
            last[channel.name] = exc
            if failures == 1:
                log.warning(
                    "%s: %s; trying again for up to %ss (DESKBOT_STARTUP_TIMEOUT)",
                    channel.name,
                    exc,
                    f"{timeout:g}",
                    extra={"channel": channel.name},
                )

        try:
            keep_trying(channel.start, lambda exc: isinstance(exc, TransientChannelError), deadline, stop, failed)
            outcome[channel.name] = None
        except BaseException as exc:  # noqa: BLE001 — permanent, or a bug: raised by the caller below
            outcome[channel.name] = exc

    names = []
    starters = []
    for channel in channels:
        names.append(channel.name)
        starters.append(threading.Thread(target=start, args=(channel,), name=f"start-{channel.name}", daemon=True))
    for thread in starters:
        thread.start()
    # A start hung on a host that swallows packets is left behind at the deadline (a daemon
    # thread), or as soon as `stop` is set.
    while any(t.is_alive() for t in starters) and time.monotonic() < deadline and not stop.is_set():
        stop.wait(0.05)
    unreachable = []
    for name in names:
        error = outcome.get(name, last.get(name))
        if isinstance(error, TransientChannelError) or (name not in outcome and error is None):
            unreachable.append(f"{address_setting(settings, name)}: {error or 'no answer'}")
        elif error is not None:
            raise error
    if unreachable:
        raise StartupTimeout("; ".join(unreachable) + f" (gave up after {timeout:g}s, DESKBOT_STARTUP_TIMEOUT)")
