"""Prometheus metrics (served on /metrics). One registry per Runtime so tests stay independent."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
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
        self.incidents_opened = Counter("deskbot_incidents_opened", "Incidents opened", registry=r)
        self.credits_consumed = Counter("deskbot_credits_consumed", "Credits consumed", registry=r)
        self.targets_missed = Counter("deskbot_response_targets_missed", "Response targets missed", registry=r)
        self.first_response = Histogram(
            "deskbot_first_response_seconds",
            "Time from opening to the first engineer reply",
            buckets=(600, 3600, 4 * 3600, 8 * 3600, 24 * 3600, 48 * 3600, 96 * 3600, 168 * 3600),
            registry=r,
        )
        self.delivery_latency = Histogram(
            "deskbot_delivery_latency_seconds", "From outbox row written to delivered", ["channel"], registry=r
        )
