"""A webhook receiver on 127.0.0.1 for the tests: records every POST, refuses the first few.

``WebhookReceiver(fail_first=2)`` answers 503 to the first two requests and 204
to the rest; ``received`` holds ``(headers, body, status)`` of each request in
order. It serves from a daemon thread until ``close()`` (the fixture's
teardown); ``wait_for(n)`` waits, bounded, until ``n`` requests were accepted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._changed:
                    status = 503 if len(receiver.received) < receiver.fail_first else 204
                    receiver.received.append((dict(self.headers.items()), body, status))
                    receiver._changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()

    def accepted(self) -> list[tuple[dict[str, str], bytes]]:
        with self._changed:
            return [(h, b) for h, b, status in self.received if status < 300]

    def wait_until(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait (bounded) until ``condition()``; fail the test if it never holds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                assert left > 0, f"gave up waiting; the receiver got {len(self.received)} requests"
                self._changed.wait(min(left, 0.05))

    def wait_for(self, accepted: int, timeout: float = 30.0) -> None:
        self.wait_until(lambda: sum(1 for *_, s in self.received if s < 300) >= accepted, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` (bounded) until it holds; fail the test if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.02)
