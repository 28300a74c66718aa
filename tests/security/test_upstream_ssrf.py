"""Item 9: upstream pages cannot make the server fetch internal addresses.

The review's attack: an upstream page whose file and metadata URLs point at
other hosts (an internal service, Redis, a closed port) or redirect there; the
server fetched them and its error texts told which ports answered. Here every
"internal service" is another loopback port (never a real private address).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from tests.functional.helpers import auth_headers, make_wheel

KINDS = ("ssrf-direct", "ssrf-closed", "ssrf-redirect")
WHEELS = {kind: make_wheel(kind, "1.0", payload=b"SSRF = 1\n") for kind in KINDS}


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Http:
    """A tiny HTTP server on 127.0.0.1 that records the paths it is asked for."""

    def __init__(self, handler):
        self.paths: list[str] = []
        self.handler = handler
        self.server = make_server("127.0.0.1", 0, self.app, server_class=_Server, handler_class=_Quiet)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def app(self, environ, start_response):
        self.paths.append(environ["PATH_INFO"])
        status, headers, body = self.handler(self, environ["PATH_INFO"])
        start_response(status, headers + [("Content-Length", str(len(body)))])
        return [body]

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def internal():
    """The "internal service": serves the wheel to anyone who asks."""
    server = Http(
        lambda s, path: ("200 OK", [("Content-Type", "application/octet-stream")], WHEELS["ssrf-direct"][1])
    )
    yield server
    server.stop()


@pytest.fixture
def evil_upstream(internal):
    targets = {
        "direct": f"{internal.root}/canary/direct",
        "closed": f"http://127.0.0.1:{closed_port()}/canary/closed",
    }

    def handler(server, path):
        if path.startswith("/redirect/"):
            return "302 Found", [("Location", f"{internal.root}/canary/after-redirect")], b""
        if path.startswith("/simple/"):
            kind = path.split("/")[2]
            url = {
                "ssrf-direct": targets["direct"],
                "ssrf-closed": targets["closed"],
                "ssrf-redirect": f"{server.root}/redirect/x",
            }.get(kind)
            if url is None:
                return "404 Not Found", [("Content-Type", "text/plain")], b"no"
            filename, data = WHEELS[kind]
            doc = {
                "meta": {"api-version": "1.1"},
                "name": kind,
                "files": [
                    {"filename": filename, "url": url, "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}
                ],
            }
            return (
                "200 OK",
                [("Content-Type", "application/vnd.pypi.simple.v1+json")],
                json.dumps(doc).encode(),
            )
        return "404 Not Found", [("Content-Type", "text/plain")], b"no"

    server = Http(handler)
    yield server
    server.stop()


def fallback_app(make_app, upstream, **extra):
    settings = {
        "pypi.fallback": "cache",
        "pypi.fallback_base_url": upstream.root + "/simple/",
        "pypi.fallback_timeout": "5",
    }
    settings.update(extra)
    return make_app(settings)


def download(app, project):
    return app.get(
        f"/api/package/{project}/{WHEELS[project][0]}", headers=auth_headers("admin"), expect_errors=True
    )


def test_files_on_internal_addresses_are_not_fetched(make_app, evil_upstream, internal):
    app = fallback_app(make_app, evil_upstream)
    answers = {project: download(app, project) for project in KINDS}
    assert not [p for p in internal.paths if p.startswith("/canary")], internal.paths
    for project, response in answers.items():
        assert response.status_int == 502, (project, response.status)
    # One text whatever the target did (answered, refused, redirected): no port oracle.
    assert len({r.text for r in answers.values()}) == 1, {p: r.text for p, r in answers.items()}
    assert "refused" not in answers["ssrf-closed"].text.lower()


def test_an_admin_may_allow_internal_file_hosts(make_app, evil_upstream, internal):
    app = fallback_app(make_app, evil_upstream, **{"pypi.fallback_allow_private": "true"})
    assert download(app, "ssrf-direct").status_int == 200
    assert "/canary/direct" in internal.paths
