"""The one place that wires adapters to the bot: store, router, intake, dispatcher, channels.

`Runtime` is used by `deskbot run` (every configured channel, supervised) and
by the tests; `chat` runs the console channel in the foreground.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, TextIO

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from adapters.channel import Channel, ChannelError, CommandShape, PermanentChannelError
from adapters.console import ENGINEER, STRANGER, ConsoleChannel
from bot import i18n
from bot.channel_health import ChannelHealth
from bot.channel_start import start_channels
from bot.commands import ParseError, Registry, parse_args, split_command, with_words
from bot.config import Settings
from bot.deployment import Deployment
from bot.dispatcher import Dispatcher
from bot.intake import Intake, system_clock
from bot.metrics import AlreadyTold, Metrics
from bot.reminders import remind_expiring_credits
from bot.router import Handled, Router
from bot.services import credits, customers
from bot.services.outgoing import Outgoing
from bot.watcher import check_targets
from storage import outbox
from storage.db import make_engine, ping, transaction, upgrade
from storage.files import StoredFiles
from storage.leases import ChannelLease

if TYPE_CHECKING:
    from adapters.zulip import ZulipChannel

log = logging.getLogger("deskbot.runtime")

Clock = Callable[[], datetime]
#: How often a replica without a channel's lease checks whether it can take over.
LEASE_RETRY_SECONDS = 2.0
#: Longest wait before restarting a failed channel: a recovered platform is noticed within seconds.
RESTART_MAX_SECONDS = 5.0
#: A receive loop that ran this long before failing had a good run: its next failure is news again.
GOOD_RUN_SECONDS = 60.0
#: How often each channel's connection is looked at (bot.channel_health).
HEALTH_CHECK_SECONDS = 1.0
#: How often a receiving replica checks that its channel's lock is still its own (a database
#: restart frees every lock, and another replica may take the channel within LEASE_RETRY_SECONDS).
LEASE_CHECK_SECONDS = 2.0
#: Stopping (SPEC §7: "exits within 10 seconds", as a container runtime's SIGKILL does after 10 s
#: by default): its stages share the ten seconds, each cut off at its end whatever hangs. The
#: drain (the receive loops' end, then in-flight sends) takes what the others leave.
STOP_SECONDS = 10.0
#: … the threads, all together, once the drain is over (one stuck in a send ends at the closing).
JOIN_SECONDS = 1.0
#: … closing all channels together (it cuts a request a hung platform holds).
CLOSE_SECONDS = 3.0
#: … the health server, the locks and the interpreter's own exit, after `Runtime.stop`.
EXIT_SECONDS = 1.0
DRAIN_SECONDS = STOP_SECONDS - JOIN_SECONDS - CLOSE_SECONDS - EXIT_SECONDS
#: The name the database's outages are told under (bot.channel_health, `store_health`).
DATABASE = "database"


class NoChannelConfigured(Exception):
    pass


def zulip_channel(settings: Settings) -> ZulipChannel:
    """The Zulip channel as the settings describe it (they must switch it on)."""
    from adapters.zulip import ZulipChannel

    return ZulipChannel(
        site=settings.zulip_site,
        email=settings.zulip_email,
        api_key=settings.zulip_api_key.get_secret_value() if settings.zulip_api_key else None,
        config_file=str(settings.zulip_config) if settings.zulip_config else None,
        stream=settings.zulip_stream,
        engineer_ids=settings.engineer_entries.user_ids,
        engineer_emails=settings.engineer_entries.emails,
        engineer_groups=settings.engineer_entries.groups,
    )


def build_channels(settings: Settings) -> list[Channel]:
    """The platform channels the settings switch on (Zulip, Mastodon, email)."""
    channels: list[Channel] = []
    if settings.zulip_configured:
        channels.append(zulip_channel(settings))
    if settings.mastodon_configured:
        from adapters.mastodon import MastodonChannel

        channels.append(
            MastodonChannel(
                api_base_url=settings.mastodon_api_base_url,
                access_token=settings.mastodon_access_token.get_secret_value(),
            )
        )
    if settings.email_configured:
        channels.append(email_channel(settings))
    return channels


def email_channel(settings: Settings) -> Channel:
    """The email channel as the settings describe it (they must switch it on: `load_settings` checked them)."""
    from adapters.email import EmailChannel, EmailSettings
    from adapters.email.servers import parse_server_url

    assert settings.email_address and settings.email_imap_url and settings.email_smtp_url
    assert settings.email_password or settings.email_oauth2_token_url
    return EmailChannel(
        EmailSettings(
            address=settings.email_address,
            imap=parse_server_url(settings.email_imap_url, "imap"),
            smtp=parse_server_url(settings.email_smtp_url, "smtp"),
            username=settings.email_username or settings.email_address,
            password=settings.email_password.get_secret_value() if settings.email_password else "",
            display_name=settings.email_name,
            authserv_id=settings.email_authserv_id,
            ca_file=str(settings.email_ca_file) if settings.email_ca_file else None,
            answers_per_hour=settings.email_answers_per_hour,
            aliases=settings.email_alias_list,
            oauth2=_oauth2(settings),
        )
    )


def _oauth2(settings: Settings):  # noqa: ANN202 (adapters.email.oauth.OAuth2Settings, imported with the channel)
    """What EMAIL_OAUTH2_* say (`load_settings` checked them), or None for a password login."""
    from adapters.email.oauth import OAuth2Settings

    if not settings.email_oauth2_token_url or not settings.email_oauth2_client_id:
        return None
    secret, refresh = settings.email_oauth2_client_secret, settings.email_oauth2_refresh_token
    return OAuth2Settings(
        token_url=settings.email_oauth2_token_url,
        client_id=settings.email_oauth2_client_id,
        client_secret=secret.get_secret_value() if secret else None,
        scope=settings.email_oauth2_scope,
        refresh_token=refresh.get_secret_value() if refresh else None,
    )


def customer_command(commands: Registry, text: str) -> CommandShape | None:
    """What `text` is as a customer's command, as the router reads it (`Channel.customer_command`,
    which the email channel asks of a new mail's subject and of its body's first line): None when
    its first word is no customer command, or the rest is no arguments of it ("Status of my
    order?"); "names_case" when it is a command and its arguments, nothing else, naming an incident
    ("close 12", "severity 12 1", "reopen 12 it broke"): the router takes words written after it as
    the customer's about that incident (`bot.commands.with_words`, or the command's own text);
    "command" for any other it runs ("status", "lang pt", "open the VPN drops", "close 12 thanks")."""
    line = split_command(text)
    cmd = commands.find("customer", line.word, line.rest) if line.word else None
    if cmd is None:
        return None
    try:
        values = parse_args(cmd, line.rest, None)
    except ParseError:
        return "command" if with_words(cmd, line.rest) is not None else None
    named = any(arg.kind == "case" and values.get(arg.name) is not None for arg in cmd.args)
    return "names_case" if named else "command"


class Runtime:
    """Channels, intake, dispatcher and watcher for one process."""

    def __init__(
        self,
        settings: Settings,
        channels: list[Channel],
        *,
        engine: Engine | None = None,
        clock: Clock = system_clock,
        trusted_engineers: frozenset[tuple[str, str]] = frozenset(),
        migrate: bool = True,
        foreground: bool = False,
    ) -> None:
        """`foreground`: no dispatch loops will run; whoever hands a message over sends its answers
        before `deliver` returns (`deskbot chat`)."""
        self.settings = settings
        self.channels = {c.name: c for c in channels}
        self.engine = engine or make_engine(settings.database_url)
        if migrate:
            months = settings.pack_validity_months
            if engine is None:
                upgrade(settings.database_url, pack_validity_months=months)
            else:
                upgrade_engine(self.engine, months)
        self.deployment = Deployment.of(settings, channels, trusted_engineers, is_down=self._in_outage)
        self.router = Router(
            self.deployment, answer_caps={c.name: c.answers_per_hour for c in channels if c.answers_per_hour}
        )
        self.clock = clock
        self.metrics = Metrics()
        self.dispatcher = Dispatcher(
            self.engine,
            self.channels,
            clock,
            case_channel=self.deployment.case_channel,
            settings=settings,
            on_result=self._count_delivery,
            caller_sends=foreground,
            on_store=self._store_seen,
        )
        self.intake = Intake(self.engine, self.router, self.dispatcher, clock, on_handled=self._count_handled)
        self.stop_event = threading.Event()
        self.intake_stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.leases: list[ChannelLease] = []
        self._started: set[str] = set()
        #: Channels whose receive loop is running in this process (for /readyz).
        self.receiving: set[str] = set()
        #: Channels this process has tried to take the lease of: received here (`receiving`), or by
        #: another replica. Until then nobody may be receiving them: not ready (for /readyz).
        self.placed: set[str] = set()
        #: Channels stopped by a permanent error while running, with the reason (for /readyz).
        self.failed: dict[str, str] = {}
        self.health = ChannelHealth(self.channels, on_change=self._channel_up)
        #: The database's outages, told as the channels' are (not as theirs, nor as a traceback a second).
        self.store_health = ChannelHealth([DATABASE], what="the database", field="component")
        #: Per channel, the event that ends its current receive loop: set when stopping, or when
        #: this process no longer holds the channel's lock.
        self._receive_stops: dict[str, threading.Event] = {}
        #: Held while the health watch judges a receiving channel and while a receive loop leaves
        #: `receiving` (`_left_receiving`): what the watch saw of a loop on its way out is undone with it.
        self._judging = threading.Lock()
        for name, channel in self.channels.items():
            channel.on_rate_limit_wait = lambda _seconds, name=name: self.metrics.rate_limit_waits.labels(name).inc()
            channel.on_trouble = lambda reason, name=name: self.health.trouble(name, reason)
            channel.recorded_elsewhere = self.dispatcher.recorded_elsewhere
            channel.files = StoredFiles(self.engine)
            channel.max_attachment_bytes = settings.max_attachment_bytes
            channel.customer_command = partial(customer_command, self.router.commands)
            self._channel_up(name, False)  # until it has started

    def _count_handled(self, channel: str, handled: Handled) -> None:
        self.metrics.messages_in.labels(channel).inc()
        if handled.counted.incident_opened:
            self.metrics.incidents_opened.inc()
            self.metrics.credits_consumed.inc()
        if handled.counted.first_response is not None:
            self.metrics.first_response.observe(handled.counted.first_response)

    def _count_delivery(self, channel: str, result: str, age: float) -> None:
        if result == "sent":
            self.metrics.messages_out.labels(channel).inc()
            self.metrics.delivery_latency.labels(channel).observe(age)
        else:
            self.metrics.delivery_failures.labels(channel, result).inc()
        # Where another replica receives the channel, sends are this process's only contact with it.
        if channel in self.channels and channel not in self.receiving and channel in self._started:
            if result == "sent":
                self.health.reached(channel)
            elif result == "retry":
                self.health.failing(channel)

    def _in_outage(self, channel: str) -> bool:
        """`Deployment.is_down`: the channel is in an outage, as /readyz tells it (bot.channel_health)."""
        return channel in self.channels and self.health.is_down(channel)

    def _channel_up(self, channel: str, up: bool) -> None:
        self.metrics.channel_up.labels(channel).set(1 if up else 0)

    def _store_seen(self, error: BaseException | None) -> None:
        """A loop reached the store (`error` None) or found it unreachable."""
        if error is None:
            self.store_health.reached(DATABASE)
        else:
            orig = getattr(error, "orig", None) or error
            self.store_health.failing(DATABASE, f"{type(orig).__name__}: {str(orig).strip().splitlines()[0]}"[:300])

    def ready(self) -> tuple[bool, str]:
        """Database reachable, every configured channel connected (by this process or a replica) and
        allowed to post everything (`Channel.held_back`: not while the support stream is public)."""
        try:
            ping(self.engine)
        except Exception as exc:  # noqa: BLE001 — any failure means not ready
            return False, f"database unreachable: {type(exc).__name__}"
        if self.failed:
            return False, "; ".join(f"{name} stopped: {why}" for name, why in self.failed.items())
        down = self.health.outages()
        if down:
            return False, "; ".join(f"{name} {why}" for name, why in down.items())
        held = [
            f"{name} holds back {kind} messages: {why}"
            for name, channel in self.channels.items()
            if name in self._started
            for kind, why in channel.held_back().items()
        ]
        if held:
            return False, "; ".join(held)
        # Between start() and a receive loop taking the channel, nobody receives it: a message sent
        # then to a channel that has never run would be taken for history from before the bot.
        starting = [n for n in self.channels if n not in self.placed]
        if starting:
            return False, "starting: " + ", ".join(starting)
        waiting = [n for n, c in self.channels.items() if n in self.receiving and not c.connected]
        if waiting:
            return False, "not connected: " + ", ".join(waiting)
        return True, "ready"

    def refresh_gauges(self) -> None:
        try:
            with transaction(self.engine) as session:
                depth, oldest = outbox.depth(session, self.clock())
        except DBAPIError as exc:
            self._store_seen(exc)
            raise AlreadyTold(str(exc.orig)) from None
        self.metrics.outbox_depth.set(depth)
        self.metrics.outbox_oldest.set(oldest)

    # -- supervised run ----------------------------------------------------------

    def start(self) -> None:
        """Start every channel (`bot.channel_start`), then all loops in threads.

        A PermanentChannelError (bad credentials, a public support stream, a platform that did not
        answer within DESKBOT_STARTUP_TIMEOUT) propagates: start-up stops.
        """
        i18n.load(self.settings.calendar.tz)
        start_channels(self.channels.values(), self.settings, self.intake_stop)
        engineers = self.settings.engineer_entries
        if "zulip" in self.channels and not (engineers.user_ids or engineers.emails or engineers.groups):
            # Not a stop (customers are still answered), but every engineer would be refused. Told
            # once the channels run: a start that fails has its own one line to say.
            log.warning(
                "DESKBOT_ENGINEERS is empty: every engineer command on Zulip will be refused as not"
                " authorised; name the engineers there (Zulip user ids, emails or @groups)"
            )
        for name in self.channels:
            self._started.add(name)
            self._channel_up(name, True)
        for name, channel in self.channels.items():
            self._spawn(f"receive-{name}", self._supervise, channel)
            self._spawn(f"dispatch-{name}", self.dispatcher.run, name, self.stop_event)
        self._spawn("outbox-leases", self.dispatcher.renew_leases, self.stop_event)
        self._spawn("watcher", self._watch)
        self._spawn("channel-health", self._watch_channels)
        self._spawn("channel-leases", self._watch_leases)

    def _spawn(self, name: str, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _supervise(self, channel: Channel) -> None:
        """Keep a channel receiving; back off with jitter after failures, reset after a good run.

        With several replicas, only the holder of the channel's lease receives; the others wait
        and take over within a few seconds of its death. A replica that loses the lease (the
        database restarted: every lock is freed) stops receiving at once (`_watch_leases`) and
        stands by like the others.
        """
        failures = 0
        lease = ChannelLease(self.engine, channel.name)
        self.leases.append(lease)
        standing_by = False
        while not self.intake_stop.is_set():
            began = time.monotonic()
            try:
                if not lease.try_acquire():
                    if not standing_by:
                        log.info(
                            "%s: another deskbot receives this channel; standing by to take over",
                            channel.name,
                            extra={"channel": channel.name},
                        )
                        standing_by = True
                    self.receiving.discard(channel.name)
                    self.placed.add(channel.name)  # another replica receives it
                    self.intake_stop.wait(LEASE_RETRY_SECONDS)
                    continue
                if standing_by:
                    log.info("%s: took over receiving this channel", channel.name, extra={"channel": channel.name})
                    standing_by = False
                if channel.name not in self._started:
                    channel.start()
                    self._started.add(channel.name)
                stop = self._receive_stops[channel.name] = threading.Event()
                if self.intake_stop.is_set():
                    break
                self.receiving.add(channel.name)
                self.placed.add(channel.name)  # after `receiving`: ready waits for it to connect
                channel.receive(self.intake, stop)
                self._left_receiving(channel.name, platform_fine=True)  # told to stop
                failures = 0
                if not self.intake_stop.is_set():
                    # Its lock went with its connection (`_watch_leases`): a standby, which tries
                    # every LEASE_RETRY_SECONDS, has the first chance at the channel.
                    self.intake_stop.wait(LEASE_RETRY_SECONDS + 1.0)
            except PermanentChannelError as exc:
                # Leave the lease so that a replica with working settings can take the channel.
                log.error("channel stopped for good: %s", exc, extra={"channel": channel.name})
                self.receiving.discard(channel.name)
                self.failed[channel.name] = str(exc)
                self.health.stopped(channel.name)  # no "cannot reach" reminders for a channel stopped
                self._channel_up(channel.name, False)
                lease.release()
                return
            except Exception as exc:  # transient: restart this channel only
                self._left_receiving(channel.name, platform_fine=isinstance(exc, DBAPIError))
                failures = 1 if time.monotonic() - began >= GOOD_RUN_SECONDS else failures + 1
                wait = random.uniform(0, min(RESTART_MAX_SECONDS, 2.0**failures))
                if isinstance(exc, DBAPIError):
                    # The store, not the platform: told once as the database's outage.
                    self._store_seen(exc)
                    log.debug("channel's store unreachable, restarting in %.1fs: %s", wait, exc)
                    self.intake_stop.wait(wait)
                    continue
                self.health.failing(channel.name, str(exc) or type(exc).__name__)
                # The first failure after a good run is told (with the traceback if it is not a
                # platform's); the restarts that follow are the outage's, which channel_health tells.
                news = failures == 1 and not self.health.is_down(channel.name)
                log.log(
                    logging.WARNING if news else logging.DEBUG,
                    "channel failed, restarting in %.1fs: %s",
                    wait,
                    exc,
                    exc_info=news and not isinstance(exc, ChannelError),
                    extra={"channel": channel.name},
                )
                self.intake_stop.wait(wait)

    def _left_receiving(self, name: str, *, platform_fine: bool) -> None:
        """The receive loop of `name` ended. `platform_fine`: on purpose (told to stop) or for the
        store's sake, not the platform's: a disconnection the health watch saw of it on its way out
        (between the loop giving up and this call), not told as an outage yet, is forgotten."""
        with self._judging:
            was_receiving = name in self.receiving
            self.receiving.discard(name)
            if was_receiving and platform_fine and not self.health.is_down(name):
                self.health.reached(name)  # nothing is logged: it was not down

    def _watch_leases(self) -> None:
        """Every few seconds: is each channel received here still ours? If its lock went with its
        connection (a database restart), another replica may be receiving it already: stop."""
        while not self.intake_stop.wait(LEASE_CHECK_SECONDS):
            for lease in list(self.leases):
                stop = self._receive_stops.get(lease.channel)
                if lease.channel not in self.receiving or stop is None or stop.is_set():
                    continue
                try:
                    held = lease.holds()
                except Exception:  # noqa: BLE001 — a check that fails proves nothing: next round
                    log.debug("lease check failed", exc_info=True)
                    continue
                if not held and not self.intake_stop.is_set():
                    # INFO: with one replica this is the database's outage, which is told as such.
                    log.info(
                        "%s: lost this channel's lock (the database connection that held it is gone); "
                        "stopping receiving, then taking it again or standing by",
                        lease.channel,
                        extra={"channel": lease.channel},
                    )
                    stop.set()

    def _watch_channels(self) -> None:
        """Each second: is each channel received here connected? (See bot.channel_health.)"""
        while not self.stop_event.wait(HEALTH_CHECK_SECONDS):
            if self.intake_stop.is_set():
                continue  # stopping: receive loops end on purpose
            try:
                for name, channel in self.channels.items():
                    with self._judging:
                        if name in self.failed or name not in self.receiving:
                            continue
                        connected = channel.connected  # before the stop: a loop that saw it disconnects
                        stop = self._receive_stops.get(name)
                        if stop is not None and stop.is_set():
                            # Told to stop (its lease lost, `_watch_leases`): the loop ends on purpose,
                            # and with the database unreachable its last cursor write takes a few timeouts.
                            continue
                        if connected:
                            self.health.reached(name)
                        else:
                            self.health.failing(name)
                self.health.tick()
                self.store_health.tick()
            except Exception:
                log.exception("channel health check failed")

    def _watch(self, every: float = 30.0) -> None:
        while not self.stop_event.is_set():
            try:
                self.watch_once()
            except DBAPIError as exc:
                self._store_seen(exc)
                log.debug("watcher: the store is unreachable: %s", exc)
            except Exception:
                log.exception("watcher (response targets, credit reminders) failed")
            self.stop_event.wait(every)

    def watch_once(self) -> None:
        """One pass of the watcher: response-target warnings in case topics, then credit expiry
        reminders to customers, each in a transaction of its own (a failing reminder never holds
        back a warning); what each says is sent once it commits."""
        with transaction(self.engine) as session:
            out = Outgoing(session, self.clock())
            posted = check_targets(out, self.deployment)
        self.dispatcher.hand_over(out.rows)
        for _incident, kind in posted:
            if kind == "missed":
                self.metrics.targets_missed.inc()
        with transaction(self.engine) as session:
            out = Outgoing(session, self.clock())
            reminded = remind_expiring_credits(out, self.settings, self.channels)
        self.dispatcher.hand_over(out.rows)
        self.metrics.credit_reminders.inc(len(reminded))

    def stop(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """Stop intake, give in-flight sends up to `drain_seconds`, then stop everything: in all at
        most `drain_seconds + JOIN_SECONDS + CLOSE_SECONDS`, however many platforms hang (each
        stage waits until a deadline shared by all it waits for, never a timeout of its own each)."""
        drained_by = time.monotonic() + drain_seconds
        self.intake_stop.set()
        for receive_stop in list(self._receive_stops.values()):
            receive_stop.set()
        for thread in self.threads:
            if thread.name.startswith("receive-"):
                # Half the drain at most: a loop stuck on a hung platform leaves the sends their turn.
                thread.join(timeout=max(0.0, drained_by - drain_seconds / 2 - time.monotonic()))
        self.dispatcher.wake()
        while time.monotonic() < drained_by and self._pending():
            time.sleep(min(0.1, max(0.0, drained_by - time.monotonic())))
        self.stop_event.set()
        self.dispatcher.wake()
        joined_by = time.monotonic() + JOIN_SECONDS
        for thread in self.threads:
            thread.join(timeout=max(0.0, joined_by - time.monotonic()))
        self._close_channels(CLOSE_SECONDS)
        for lease in self.leases:
            lease.release()

    def _close_channels(self, seconds: float) -> None:
        """Close every channel, all together within `seconds`: a platform that hangs mid-request
        must not hold the process past SPEC §7's ten seconds (what it held waits in the outbox)."""

        def close(channel: Channel) -> None:
            try:
                channel.close()
            except Exception:  # noqa: BLE001 — stopping goes on; the reason is logged
                log.warning("%s: closing failed", channel.name, exc_info=True)

        closers = [
            threading.Thread(target=close, args=(channel,), name=f"close-{name}", daemon=True)
            for name, channel in self.channels.items()
        ]
        for closer in closers:
            closer.start()
        deadline = time.monotonic() + seconds
        for closer in closers:
            closer.join(timeout=max(0.0, deadline - time.monotonic()))
            if closer.is_alive():
                log.warning("%s did not close within %.0fs; stopping without it", closer.name[6:], seconds)

    def _pending(self) -> bool:
        """Is anything due that may be sent now (rows a channel holds back wait for the next start)?

        With the database gone there is nothing to send from it: the rows wait in it for the
        next start, and stopping goes on (exit 0, one line) rather than ending in a traceback."""
        held = [(name, kind) for name in self.channels for kind in self.dispatcher.held(name)]
        try:
            with transaction(self.engine) as session:
                return outbox.has_due(session, list(self.channels), self.clock(), held=held)
        except DBAPIError as exc:
            log.warning("database unreachable while stopping; unsent replies wait for the next start: %s", exc.orig)
            return False


def upgrade_engine(engine: Engine, pack_validity_months: int) -> None:
    """Migrate the database `engine` opens; `pack_validity_months` as `storage.db.upgrade` takes it."""
    upgrade(engine.url.render_as_string(hide_password=False), pack_validity_months=pack_validity_months)


def chat(
    settings: Settings,
    role: str = "customer",
    customer: str = "Demo customer",
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    clock: Clock = system_clock,
    engine: Engine | None = None,
) -> None:
    """`deskbot chat`: the console channel in the foreground, answers printed before the next prompt.

    `role` is "customer" (`customer`, created and linked if needed), "engineer" or "stranger"
    (a console account linked to no customer); the console says on start how to play each.
    """
    holder: dict[str, Runtime] = {}

    def on_switch(new_role: str, name: str) -> str | None:
        if new_role == "customer":
            try:
                _ensure_console_customer(holder["rt"], name)
            except customers.CustomerError as exc:  # a name no customer can have ("2": an id)
                return str(exc)
        elif new_role == "stranger":
            _console_stranger(holder["rt"])
        return None

    console = ConsoleChannel(customer=customer, role=role, stdin=stdin, stdout=stdout, on_switch=on_switch)
    runtime = Runtime(
        settings,
        [console],
        engine=engine,
        clock=clock,
        trusted_engineers=frozenset({("console", ENGINEER)}),
        foreground=True,
    )
    holder["rt"] = runtime
    left = _ensure_console_customer(runtime, customer)
    if role == "stranger":
        _console_stranger(runtime)
    console.note = (
        f"({console.customer} has {left} credit{'s' if left != 1 else ''} left.)"
        if left
        else f"({console.customer} has no credits yet: grant some as the engineer, as above.)"
    )
    runtime.dispatcher.drain("console")
    console.receive(runtime.intake, threading.Event())


def _ensure_console_customer(runtime: Runtime, name: str) -> int:
    """The console plays a known customer: create it if needed and link the console account.
    The customer's credits left."""
    now = runtime.clock()
    with transaction(runtime.engine) as session:
        found = customers.find_customer(session, name)
        if found is None:
            found, _code = customers.create_customer(session, name, None, None, now)
        customers.link_identity(session, found, "console", found.name, now)
        settings = runtime.settings
        left = credits.credit_summary(session, found.id, settings.today(now)).total_left
    # The console sends as the exact stored name.
    console = runtime.channels["console"]
    if isinstance(console, ConsoleChannel):
        console.customer = found.name
    return left


def _console_stranger(runtime: Runtime) -> None:
    """`\\as stranger`: the first console account of "stranger", "stranger 2" … linked to no customer
    (a stranger who linked itself with an activation code has become that customer's account)."""
    now = runtime.clock()
    with Session(runtime.engine) as session:  # only looks: rolled back, nothing is written
        for number in itertools.count(1):
            address = STRANGER if number == 1 else f"{STRANGER} {number}"
            if customers.get_identity(session, "console", address, None, now).customer_id is None:
                break
    console = runtime.channels["console"]
    if isinstance(console, ConsoleChannel):
        console.stranger = address
