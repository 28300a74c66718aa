"""The cost of one request inside the app, without waitress, sockets or wrk.

Much steadier than req/s on a busy 2-core machine: each case is called
``requests`` times in a row with the same WSGI environ, three times over, and the
best round counts. It shows what the app itself costs per request, anonymous and
with Basic credentials (after the first, which fills the credential cache).
"""

from __future__ import annotations

import io
import sys
import tempfile
import time

import pypicloud
from pypicloud.access.passwords import hash_password
from pypicloud.storage.file import FileStorage

from . import corpus, load, matrix
from .server import ADMIN_PASSWORD, ADMIN_USER


def build_app(root: str, projects: int):
    storage_dir = f"{root}/packages"
    load.bulk_put(FileStorage(storage_dir, fsync=False), corpus.corpus(projects, 1))
    settings = {
        "pypi.storage": "file",
        "storage.dir": storage_dir,
        "db.url": f"sqlite:///{root}/index.sqlite",
        "auth.admins": ADMIN_USER,
        f"user.{ADMIN_USER}": hash_password(ADMIN_PASSWORD),
        "pypi.default_read": "everyone",
    }
    return pypicloud.main({"here": root}, **settings)  # empty index: rebuilt from storage


def environ_for(case: matrix.Case, auth: str | None) -> dict:
    path, _, query = case.path.partition("?")
    env = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "HTTP_HOST": "127.0.0.1:8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    for key, value in case.with_headers(auth).items():
        env["HTTP_" + key.upper().replace("-", "_")] = value
    return env


def call(app, environ: dict) -> str:
    status = []
    body = app(dict(environ), lambda s, h, e=None: status.append(s))
    for _ in body:
        pass
    if hasattr(body, "close"):
        body.close()
    return status[0]


def measure(projects: int = 100, requests: int = 1000, rounds: int = 3) -> list[dict]:
    """Microseconds per request for every read case, anonymous and with Basic auth."""
    auth = load.basic_auth(ADMIN_USER, ADMIN_PASSWORD)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ppc-inprocess-") as root:
        app = build_app(root, projects)
        for case in matrix.read_cases():
            for mode in ("anonymous", "basic"):
                environ = environ_for(case, auth if mode == "basic" else None)
                status = call(app, environ)
                if not status.startswith("200"):
                    raise RuntimeError(f"{case.name} ({mode}): {status}")
                best = float("inf")
                for _ in range(rounds):
                    started = time.perf_counter()
                    for _ in range(requests):
                        call(app, environ)
                    best = min(best, (time.perf_counter() - started) / requests)
                rows.append({"case": case.name, "auth": mode, "us_per_request": round(best * 1e6, 1)})
    return rows
