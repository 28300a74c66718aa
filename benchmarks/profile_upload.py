"""Profile the small-file upload path of pypicloud in-process, without waitress or sockets.

    .venv/bin/python -m benchmarks.profile_upload                    # cProfile, 200 uploads
    .venv/bin/python -m benchmarks.profile_upload --pyinstrument     # needs pip install pyinstrument
    .venv/bin/python -m benchmarks.profile_upload --no-fsync         # storage without fsyncs

The app is built as ``pserve`` builds it (``pypicloud.main``) on a temporary file
store and SQLite index; fresh wheels and sdists (twine's form, Basic auth) are
posted to ``/simple/`` as WSGI calls: first ``--uploads`` unprofiled (the time per
upload), then as many again under the profiler, whose top costs are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import pstats
import sys
import tempfile
import time
import uuid

import pypicloud
from pypicloud.access.passwords import hash_password

from . import corpus, load
from .server import ADMIN_PASSWORD, ADMIN_USER


def build_app(root: str, fsync: bool):
    settings = {
        "pypi.storage": "file",
        "storage.dir": f"{root}/packages",
        "db.url": f"sqlite:///{root}/index.sqlite",
        "auth.admins": ADMIN_USER,
        f"user.{ADMIN_USER}": hash_password(ADMIN_PASSWORD),
        "pypi.default_read": "everyone",
        "pypi.spool_dir": f"{root}/spool",
    }
    app = pypicloud.main({"here": root}, **settings)
    if not fsync:
        app.registry.service.storage.fsync = False
    return app


def upload_environ(dist: corpus.Dist, auth: str) -> dict:
    boundary = uuid.uuid4().hex
    head, tail = load._form_parts(dist, hashlib.sha256(dist.data).hexdigest(), boundary)
    body = head + dist.data + tail
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/simple/",
        "QUERY_STRING": "",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "HTTP_HOST": "127.0.0.1:8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": auth,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def post_all(app, environs: list[dict]) -> tuple[float, float]:
    """Post every upload; (wall seconds, CPU seconds) per upload."""
    started, cpu = time.perf_counter(), time.process_time()
    for environ in environs:
        status: list[str] = []
        body = app(environ, lambda s, h, e=None: status.append(s))
        for _ in body:
            pass
        if not status[0].startswith("200"):
            raise SystemExit(f"upload failed: {status[0]}")
    count = len(environs)
    return (time.perf_counter() - started) / count, (time.process_time() - cpu) / count


def fresh(label: str, count: int, auth: str) -> list[dict]:
    dists: list[corpus.Dist] = []
    i = 0
    while len(dists) < count:
        dists += corpus.release(f"Profile.{label}_{i}", "1.0.0")
        i += 1
    return [upload_environ(d, auth) for d in dists[:count]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_upload",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--pyinstrument", action="store_true")
    args = parser.parse_args(argv)
    auth = load.basic_auth(ADMIN_USER, ADMIN_PASSWORD)
    with tempfile.TemporaryDirectory(prefix="ppc-profile-upload-") as root:
        app = build_app(root, fsync=not args.no_fsync)
        post_all(app, fresh("warm", 2, auth))  # the first login verifies the password
        wall, cpu = post_all(app, fresh("plain", args.uploads, auth))
        print(
            f"upload (wheel or sdist, 1 thread): {wall * 1e3:.2f} ms per upload in-process, "
            f"{cpu * 1e3:.2f} ms of it CPU, unprofiled\n"
        )
        profiled = fresh("profiled", args.uploads, auth)
        if args.pyinstrument:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
            post_all(app, profiled)
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False))
            return 0
        profile = cProfile.Profile()
        profile.enable()
        post_all(app, profiled)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
