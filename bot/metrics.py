"""Prometheus metrics (served on /metrics). One registry per Runtime so tests stay independent.

Counters and histograms are updated where things happen. The gauges that need the database
(outbox depth and age) are set by a `GaugeRefresher` at a fixed interval, never by a scrape:
a scrape only reads what is cached here, so scraping costs no query however often it comes.
The process, platform and garbage-collector collectors read this process's own state
(`/proc/self`, `gc.get_stats()`), no database either. deploy/README.md lists every metric with
its meaning; deploy/alerts.yml has the alerts built on them.

No `*_created` series: a counter's creation time is noise to an operator (Prometheus notices a
restart by the counter going down), so they are turned off for the whole process.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
from collections.abc import Callable
from importlib import metadata

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

log = logging.getLogger("deskbot.metrics")

disable_created_metrics()


def deskbot_version() -> str:
    """The installed distribution's version ("unknown" when run from a tree that was not installed)."""
    try:
        return metadata.version("deskbot")
    except metadata.PackageNotFoundError:
        return "unknown"


def deskbot_revision() -> str:
    """The source revision the running build was made from: the container image records it at
    build time (`DESKBOT_REVISION`, from `--build-arg REVISION=…`); "unknown" elsewhere. The
    version alone does not tell builds apart: it changes only with a release."""
    return os.environ.get("DESKBOT_REVISION", "").strip()[:40] or "unknown"


#: How often the database-backed gauges are read again; their values are at most this old.
GAUGE_REFRESH_SECONDS = 15.0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # The same collectors prometheus_client puts on its default registry, on this one:
        # process_* (CPU, memory, file descriptors, start time), python_info, python_gc_*.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build_info = Info(
            "deskbot_build", "The deskbot version, the revision it was built from, the Python running it", registry=r
        )
        self.build_info.info(
            {"version": deskbot_version(), "revision": deskbot_revision(), "python": platform.python_version()}
        )
        self.channel_up = Gauge(
            "deskbot_channel_up",
            "1 while this process reaches the channel's platform, 0 during an outage or once stopped for good",
            ["channel"],
            registry=r,
        )
        self.messages_in = Counter("deskbot_messages_in", "Inbound messages handled", ["channel"], registry=r)
        self.messages_out = Counter("deskbot_messages_out", "Outbox rows delivered", ["channel"], registry=r)
        self.delivery_failures = Counter(
            "deskbot_delivery_failures", "Failed delivery attempts", ["channel", "kind"], registry=r
        )
        self.rate_limit_waits = Counter(
            "deskbot_rate_limit_waits", "Waits caused by platform rate limits", ["channel"], registry=r
        )
        self.outbox_depth = Gauge("deskbot_outbox_depth", "Pending outbox rows", registry=r)
        self.outbox_oldest = Gauge(
            "deskbot_outbox_oldest_age_seconds", "Age of the oldest pending outbox row", registry=r
        )
        self.gauges_refreshed = Gauge(
            "deskbot_gauges_refreshed_timestamp_seconds",
            "When the outbox gauges were last read from the database (Unix time; 0 before the first time)",
            registry=r,
        )
        self.incidents_opened = Counter("deskbot_incidents_opened", "Incidents opened", registry=r)
        self.credits_consumed = Counter("deskbot_credits_consumed", "Credits consumed", registry=r)
        self.targets_missed = Counter("deskbot_response_targets_missed", "Response targets missed", registry=r)
        self.credit_reminders = Counter(
            "deskbot_credit_reminders", "Customers reminded that a pack's unused credits lapse", registry=r
        )
        self.first_response = Histogram(
            "deskbot_first_response_seconds",
            "Time from opening to the first engineer reply",
            buckets=(600, 3600, 4 * 3600, 8 * 3600, 24 * 3600, 48 * 3600, 96 * 3600, 168 * 3600),
            registry=r,
        )
        self.delivery_latency = Histogram(
            "deskbot_delivery_latency_seconds", "From outbox row written to delivered", ["channel"], registry=r
        )
        self.http_dropped = Counter(
            "deskbot_http_dropped_connections",
            "Health-server connections closed without an answer (overload, timeout, disconnect)",
            ["reason"],
            registry=r,
        )


class AlreadyTold(Exception):
    """A refresh could not read the store, and the outage is told elsewhere (the runtime's database
    health): the refresher leaves the gauges as they were without a warning of its own."""


class GaugeRefresher:
    """Runs `refresh` (which reads the database and sets gauges) at start and then every `every`
    seconds, in one thread of its own, until `stop`.

    A failed refresh is logged and leaves the gauges at their last values;
    `deskbot_gauges_refreshed_timestamp_seconds` tells a scraper how old they are.
    """

    def __init__(self, refresh: Callable[[], None], metrics: Metrics, every: float = GAUGE_REFRESH_SECONDS) -> None:
        self.refresh = refresh
        self.metrics = metrics
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-gauges", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
                self.metrics.gauges_refreshed.set_to_current_time()
            except AlreadyTold as exc:
                log.debug("metrics gauges not refreshed: %s", exc)
            except Exception as exc:  # noqa: BLE001 — the database may be down; /readyz reports that
                log.warning("metrics gauges not refreshed: %s: %s", type(exc).__name__, exc)
            self._stop.wait(self.every)
