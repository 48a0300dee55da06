"""A real local HTTP receiver for webhook tests: records every request, fails when told to.

Imported by the tests as `webhooks.webhook_receiver` (tests/ is on the path).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = "whsec_test_secret_0123456789"
START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Answers `fail_times` requests with `fail_status`, then 200 (or fails always)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        self.fail_times = 0
        self.fail_status = 500
        self.always_fail = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def _decide(self, received: Received) -> int:
        with self.lock:
            self.requests.append(received)
            if self.always_fail:
                return self.fail_status
            if self.fail_times > 0:
                self.fail_times -= 1
                return self.fail_status
            return 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status = receiver._decide(Received(self.path, dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
