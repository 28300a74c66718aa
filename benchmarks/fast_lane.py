"""The fast lane on and off, beside the in-memory ceiling (issue 17's read targets).

    .venv/bin/python -m benchmarks.fast_lane                 # 3 s per run, c=16, 8 threads
    .venv/bin/python -m benchmarks.fast_lane --duration 5 --rounds 2

Three ``pserve`` children on 127.0.0.1 (free ports), waitress with ``--threads``
threads each: the in-memory ceiling (``ceiling.py``, fed the same files by upload),
pypicloud as shipped (``pypi.fast_reads`` on) and pypicloud with
``pypi.fast_reads = false``, over one corpus (file storage, SQLite). For each read
case the three are loaded in turn with wrk for ``--duration`` seconds; the table gives
req/s and the ratio to the ceiling run of the same round. Everything lives in a
temporary folder that is removed afterwards; every server is stopped by its PID.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile

from pypicloud.access.passwords import hash_password
from pypicloud.storage.file import FileStorage

from . import corpus, load, matrix, wrk
from .server import ADMIN_PASSWORD, ADMIN_USER, Server, ceiling_ini, free_port, pypicloud_ini

CASES = ("project_html", "metadata", "download")


def _pypicloud(root: str, name: str, storage_dir: str, threads: int, extra: dict[str, str]) -> Server:
    port = free_port()
    settings = {"pypi.storage": "file", "storage.dir": storage_dir, **extra}
    ini = pypicloud_ini(
        os.path.join(root, f"{name}.ini"),
        storage_dir=storage_dir,
        db_path=os.path.join(root, f"{name}.sqlite"),
        port=port,
        threads=threads,
        admin_hash=hash_password(ADMIN_PASSWORD),
        storage=settings,
    )
    return Server(ini, port, os.path.join(root, f"{name}.log"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fast_lane", description=__doc__)
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run (3)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8, help="waitress threads per server (8)")
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    cases = [c for c in matrix.read_cases() if c.name in CASES]
    auth = load.basic_auth(ADMIN_USER, ADMIN_PASSWORD)
    with tempfile.TemporaryDirectory(prefix="ppc-fastlane-") as root, contextlib.ExitStack() as stack:
        storage_dir = os.path.join(root, "packages")
        load.bulk_put(FileStorage(storage_dir, fsync=False), corpus.corpus(args.projects, 1))
        port = free_port()
        ini = ceiling_ini(
            os.path.join(root, "ceiling.ini"), port=port, threads=args.threads, folder=root + "/c"
        )
        servers = {"ceiling": stack.enter_context(Server(ini, port, os.path.join(root, "ceiling.log")))}
        servers["ceiling"].start().wait_ready("/simple/")
        load.upload_all(port, auth, corpus.corpus(args.projects, 1))
        for name, extra in (("lane on", {}), ("lane off", {"pypi.fast_reads": "false"})):
            server = _pypicloud(root, name.replace(" ", "-"), storage_dir, args.threads, extra)
            servers[name] = stack.enter_context(server)
            server.start().wait_ready("/simple/")
        for case in cases:
            for server in servers.values():
                matrix.check(server.port, case, None)  # right answer, warm caches
        print(f"c={args.connections}, waitress threads={args.threads}, wrk {args.duration} s per run")
        print("| case | round | ceiling req/s | lane on req/s (x ceiling) | lane off req/s (x ceiling) |")
        print("|---|---|---|---|---|")
        for case in cases:
            for round_ in range(1, args.rounds + 1):
                rps = {
                    name: wrk.run(
                        server.port,
                        case.path,
                        connections=args.connections,
                        duration=args.duration,
                        headers=case.with_headers(None),
                    )["rps"]
                    for name, server in servers.items()
                }
                ceiling = rps["ceiling"] or 1.0
                print(
                    f"| {case.name} | {round_} | {rps['ceiling']:,.0f} | "
                    f"{rps['lane on']:,.0f} ({rps['lane on'] / ceiling:.2f} x) | "
                    f"{rps['lane off']:,.0f} ({rps['lane off'] / ceiling:.2f} x) |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
