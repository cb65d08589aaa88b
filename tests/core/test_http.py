"""/healthz, /readyz and /metrics of a running desk."""

from __future__ import annotations

import urllib.error
import urllib.request

from bot.http import HealthServer
from tests.desk import Desk


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_readiness_and_metrics(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    runtime = desk.runtime
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open Disk full")
    desk.engineer("/reply 1 Delete the snapshots")
    server = HealthServer("127.0.0.1:0", runtime.metrics, runtime.ready, runtime.refresh_gauges)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert _get(f"{base}/healthz") == (200, "ok\n")
        assert _get(f"{base}/readyz") == (200, "ready\n")
        status, text = _get(f"{base}/metrics")
        assert status == 200
        assert 'deskbot_messages_in_total{channel="console"} 2.0' in text
        assert 'deskbot_messages_out_total{channel="console"}' in text
        assert "deskbot_incidents_opened_total 1.0" in text
        assert "deskbot_credits_consumed_total 1.0" in text
        assert "deskbot_first_response_seconds_count 1.0" in text
        assert "deskbot_outbox_depth 0.0" in text
        runtime.failed["console"] = "credentials revoked"
        assert _get(f"{base}/readyz") == (503, "console stopped: credentials revoked\n")
        assert _get(f"{base}/nope")[0] == 404
    finally:
        server.stop()
