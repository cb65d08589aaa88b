"""The health and metrics server: /healthz (alive), /readyz (database and channels), /metrics."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.metrics import Metrics


class HealthServer:
    def __init__(
        self, addr: str, metrics: Metrics, ready: Callable[[], tuple[bool, str]], refresh: Callable[[], None]
    ) -> None:
        host, _sep, port = addr.rpartition(":")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/healthz":
                    self._answer(200, b"ok\n", "text/plain")
                elif self.path == "/readyz":
                    ok, detail = outer.ready()
                    self._answer(200 if ok else 503, (detail + "\n").encode(), "text/plain")
                elif self.path == "/metrics":
                    outer.refresh()
                    self._answer(200, generate_latest(outer.metrics.registry), CONTENT_TYPE_LATEST)
                else:
                    self._answer(404, b"not found\n", "text/plain")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # health probes are not news
                pass

        self.metrics = metrics
        self.ready = ready
        self.refresh = refresh
        self.server = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
