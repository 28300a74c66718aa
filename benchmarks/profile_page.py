"""Profile one read path of pypicloud in-process, without waitress or sockets.

    .venv/bin/python -m benchmarks.profile_page                      # project page, HTML
    .venv/bin/python -m benchmarks.profile_page --case download --auth
    .venv/bin/python -m benchmarks.profile_page --pyinstrument       # needs pip install pyinstrument

The app is built as ``pserve`` builds it (``pypicloud.main``) on a temporary file
store holding the benchmark's probe project; the WSGI app is then called
``--requests`` times with the same environ, under cProfile (or pyinstrument), and
the top costs are printed with the time per request.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time

from . import load, matrix
from .inprocess import build_app, call, environ_for
from .server import ADMIN_PASSWORD, ADMIN_USER


def main(argv: list[str] | None = None) -> int:
    cases = {c.name: c for c in matrix.read_cases()}
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_page",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--case", choices=sorted(cases), default="project_html")
    parser.add_argument("--auth", action="store_true", help="send Basic credentials")
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pyinstrument", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ppc-profile-") as root:
        app = build_app(root, args.projects)
        auth = load.basic_auth(ADMIN_USER, ADMIN_PASSWORD) if args.auth else None
        environ = environ_for(cases[args.case], auth)
        status = call(app, environ)  # warms the page cache and the credential cache
        if not status.startswith(("200", "304")):
            raise SystemExit(f"{args.case}: {status}")
        started = time.perf_counter()
        for _ in range(args.requests):
            call(app, environ)
        plain = (time.perf_counter() - started) / args.requests
        print(
            f"{args.case}{' (Basic auth)' if auth else ''}: {plain * 1e6:.0f} us per request "
            f"in-process, unprofiled ({1 / plain:.0f} req/s on one core)\n"
        )
        if args.pyinstrument:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002)
            profiler.start()
            for _ in range(args.requests):
                call(app, environ)
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False))
            return 0
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.requests):
            call(app, environ)
        profile.disable()
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
        print(out.getvalue().replace(sys.prefix, "<venv>"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
