"""The benchmark's first pass asks every page exactly once (a real loopback server)."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchmarks import page_pass


def _server(asked: Counter, lock: threading.Lock):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            with lock:
                asked[self.path] += 1
            status = 404 if self.path.endswith("/missing/") else 200
            body = b"page"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def test_every_path_is_asked_once_and_a_bad_answer_is_an_error():
    asked: Counter = Counter()
    server = _server(asked, threading.Lock())
    try:
        paths = [f"/simple/p{i}/" for i in range(300)] + ["/simple/missing/"]
        got = page_pass.run(server.server_address[1], paths, connections=4, budget_s=30)
    finally:
        server.shutdown()
        server.server_close()
    assert set(asked) == set(paths) and set(asked.values()) == {1}
    assert got["asked"] == got["paths"] == 301
    assert got["errors"] == 1 and got["rps"] > 0


def test_the_budget_stops_the_pass_early():
    asked: Counter = Counter()
    server = _server(asked, threading.Lock())
    try:
        got = page_pass.run(server.server_address[1], ["/a/", "/b/"], connections=2, budget_s=0)
    finally:
        server.shutdown()
        server.server_close()
    assert got["asked"] == 0 and not asked
