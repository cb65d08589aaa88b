"""`deskbot run`: every configured channel, the dispatcher, the watcher and the health server,
until SIGTERM or SIGINT — then intake stops, in-flight sends get what is left of SPEC §7's ten
seconds (`bot.runtime.STOP_SECONDS`), exit 0."""

from __future__ import annotations

import logging
import signal
import threading
import time

from sqlalchemy.exc import OperationalError

from adapters.channel import PermanentChannelError
from bot.channel_start import keep_trying
from bot.config import Settings
from bot.http import HealthServer
from bot.logs import configure
from bot.metrics import deskbot_revision, deskbot_version
from bot.runtime import DRAIN_SECONDS, Runtime, build_channels
from bot.terminal import status
from storage.db import make_engine, migration_engine, ping, upgrade
from storage.leases import AlreadyRunning, SingleProcessLock

log = logging.getLogger("deskbot")


def serve(settings: Settings, stop: threading.Event | None = None) -> int:
    """Run until `stop` is set or a signal arrives; return the process exit code."""
    configure(settings.log_format, settings.log_level, settings.secrets)
    channels = build_channels(settings)
    if not channels:
        log.error(
            "no channel configured: set EMAIL_ADDRESS/EMAIL_IMAP_URL/EMAIL_SMTP_URL/EMAIL_PASSWORD, "
            "ZULIP_SITE/ZULIP_EMAIL/ZULIP_API_KEY (or ZULIP_CONFIG), MASTODON_API_BASE_URL/MASTODON_ACCESS_TOKEN, "
            "or several of them; try `deskbot chat` for the console"
        )
        return 2
    stop = stop or threading.Event()
    _wait_for_database(settings, stop)
    engine = make_engine(settings.database_url)
    single = SingleProcessLock(engine)
    try:
        single.acquire()
    except AlreadyRunning as exc:
        log.error("%s", exc)
        return 1
    upgrade(
        settings.database_url,
        progress=status("Applying migrations to the database"),
        pack_validity_months=settings.pack_validity_months,
    )
    runtime = Runtime(settings, channels, engine=engine, migrate=False)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()
        runtime.intake_stop.set()  # ends a wait for a platform at start (bot.channel_start)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    # Listen before the channels start: an address that cannot be had stops start-up before any
    # platform is touched (a Zulip event queue registered, Mastodon's notification policy changed).
    # Meanwhile /readyz says "starting".
    try:
        http = HealthServer(settings.http_addr, runtime.metrics, runtime.ready, runtime.refresh_gauges)
    except OSError:
        single.release()
        raise  # bot.cli.errors names DESKBOT_HTTP_ADDR
    http.start()
    try:
        runtime.start()
    except PermanentChannelError as exc:
        http.stop()
        single.release()
        if stop.is_set():  # asked to stop while waiting for a platform: not a failure
            log.info("deskbot stopped before it started")
            return 0
        log.error("cannot start: %s", exc)
        return 1
    log.info(
        "deskbot running",
        extra={
            "channels": ",".join(runtime.channels),
            "http": settings.http_addr,
            "version": deskbot_version(),
            "revision": deskbot_revision(),
        },
    )
    stop.wait()
    runtime.stop(DRAIN_SECONDS)
    http.stop()
    single.release()
    log.info("deskbot stopped")
    return 0


def _wait_for_database(settings: Settings, stop: threading.Event) -> None:
    """A PostgreSQL server that takes no connection yet is tried again as the platforms are
    (bot.channel_start), for DESKBOT_STARTUP_TIMEOUT seconds; then its error stops start-up, one line
    naming DESKBOT_DATABASE_URL (bot.cli.errors). Told once, as they are. Any failure to connect is
    waited out: a server in a container started beside deskbot refuses connections, then answers
    "starting up", and its first start creates the database only after a while (psycopg gives no
    SQLSTATE for any of these to tell them from a wrong password)."""
    if settings.database_url.startswith("sqlite"):
        return  # a file: no server to wait for
    timeout = settings.startup_timeout
    engine = migration_engine(settings.database_url)

    def failed(exc: BaseException, failures: int) -> None:
        if failures == 1:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            log.warning("database: %s; trying again for up to %ss (DESKBOT_STARTUP_TIMEOUT)", reason, f"{timeout:g}")

    try:
        keep_trying(
            lambda: ping(engine),
            lambda exc: isinstance(exc, OperationalError),
            time.monotonic() + timeout,
            stop,
            failed,
        )
    finally:
        engine.dispose()
