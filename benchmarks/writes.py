"""Write paths and large transfers, pypicloud beside the in-memory ceiling in the same run.

The ceiling is ``ceiling.py`` on the same waitress with the same threads (issue 17).
Every figure is a rate, and its ratio is pypicloud's rate over the ceiling's:

- **uploads, 1 connection** (twine uploads one file after another) and **uploads,
  4 connections**: fresh wheels and sdists posted as twine posts them; the runs go
  ceiling, pypicloud, ceiling, and the ceiling's figure is the mean of its two runs;
- **large upload / large download**: one wheel of ``--big-upload-mb`` MB (200 by
  default), streamed up in 1 MB chunks and read back and checked by sha256, on the
  ceiling and then on pypicloud.

The read paths, ``.metadata`` and small downloads included, are in the read matrix
(``matrix.py``), where every case also runs on the ceiling right beside pypicloud.

Alone (a smoke run, seconds): ``python -m benchmarks.writes --files 10 --big-upload-mb 5``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from . import corpus, load
from .largefile import download
from .server import ADMIN_PASSWORD, ADMIN_USER, Server, ceiling_ini, free_port, get, pypicloud_ini

BIG_NAME = "Big_Upload.Bench"


def _fresh(label: str, files: int) -> list[corpus.Dist]:
    """``files`` distributions (wheel + sdist per release) of projects nobody uploaded yet."""
    dists: list[corpus.Dist] = []
    i = 0
    while len(dists) < files:
        dists += corpus.release(f"Write.{label}_{i}", "1.0.0")
        i += 1
    return dists[:files]


def _rate(port: int, auth: str, dists: list[corpus.Dist], workers: int) -> float:
    started = time.perf_counter()
    count = load.upload_all(port, auth, dists, workers=workers)
    return count / (time.perf_counter() - started)


def _row(path: str, unit: str, ours: float, ceiling: list[float]) -> dict:
    mean = sum(ceiling) / len(ceiling)
    return {
        "path": path,
        "unit": unit,
        "ours": round(ours, 1),
        "ceiling": round(mean, 1),
        "ceiling_runs": [round(c, 1) for c in ceiling],
        "ratio": round(ours / mean, 3) if mean else None,
    }


def uploads(ours: int, ceiling: int, auth: str, files: int, connections: tuple[int, ...], log=print) -> list:
    for port in (ours, ceiling):
        # The first login verifies the password (argon2id): a login cost, not an upload cost.
        get(port, "/simple/", {"Authorization": auth})
    rows = []
    for conns in connections:
        label = f"c{conns}"
        before = _rate(ceiling, auth, _fresh(f"{label}_before", files), conns)
        mine = _rate(ours, auth, _fresh(f"{label}_ours", files), conns)
        after = _rate(ceiling, auth, _fresh(f"{label}_after", files), conns)
        row = _row(f"upload, {conns} connection{'s' if conns > 1 else ''}", "files/s", mine, [before, after])
        rows.append(row)
        log(f"  {row['path']:<24} {mine:7.1f} files/s (ceiling {before:.1f}/{after:.1f}, x {row['ratio']})")
    return rows


def big_file(ours: int, ceiling: int, auth: str, directory: str, megabytes: float, log=print) -> list:
    os.makedirs(directory, exist_ok=True)
    path = corpus.write_large_wheel(directory, int(megabytes * 1024 * 1024), name=BIG_NAME)
    size = os.path.getsize(path)
    filename = os.path.basename(path)
    dist = corpus.Dist(BIG_NAME, corpus.LARGE_VERSION, "wheel", filename, b"", b"", True)
    figures: dict[str, dict[str, float]] = {}
    for name, port in (("ceiling", ceiling), ("ours", ours)):
        started = time.perf_counter()
        expected = load.stream_upload(port, auth, dist, path)
        up = time.perf_counter() - started
        started = time.perf_counter()
        got, sha = download(port, f"/api/package/{dist.project}/{filename}")
        down = time.perf_counter() - started
        if got != size or sha != expected:
            raise RuntimeError(f"{name}: downloaded {got} bytes of {size}, or other bytes")
        figures[name] = {"up": size / 1e6 / up, "down": size / 1e6 / down}
    rows = [
        _row(f"upload {size / 1e6:.0f} MB", "MB/s", figures["ours"]["up"], [figures["ceiling"]["up"]]),
        _row(f"download {size / 1e6:.0f} MB", "MB/s", figures["ours"]["down"], [figures["ceiling"]["down"]]),
    ]
    for row in rows:
        log(f"  {row['path']:<24} {row['ours']:7.1f} MB/s (ceiling {row['ceiling']:.1f}, x {row['ratio']})")
    return rows


def measure(
    ours: int, ceiling: int, auth: str, workdir: str, *, files: int, big_mb: float, log=print
) -> list:
    """Every write-path row: uploads at 1 and 4 connections, then the large file (``big_mb`` 0 skips)."""
    rows = uploads(ours, ceiling, auth, files, (1, 4), log=log)
    if big_mb > 0:
        rows += big_file(ours, ceiling, auth, os.path.join(workdir, "big"), big_mb, log=log)
    return rows


def main(argv: list[str] | None = None) -> int:
    from pypicloud.access.passwords import hash_password

    from .report import write_table

    parser = argparse.ArgumentParser(prog="python -m benchmarks.writes", description=__doc__)
    parser.add_argument("--files", type=int, default=100, help="files per upload run (100)")
    parser.add_argument("--big-upload-mb", type=float, default=200.0, help="large wheel in MB (200; 0 skips)")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (8)")
    args = parser.parse_args(argv)
    auth = load.basic_auth(ADMIN_USER, ADMIN_PASSWORD)
    with tempfile.TemporaryDirectory(prefix="ppc-bench-writes-") as workdir:
        ours_port, ceiling_port = free_port(), free_port()
        ours_ini = pypicloud_ini(
            os.path.join(workdir, "ours.ini"),
            storage_dir=os.path.join(workdir, "ours", "packages"),
            db_path=os.path.join(workdir, "ours", "index.sqlite"),
            port=ours_port,
            threads=args.threads,
            admin_hash=hash_password(ADMIN_PASSWORD),
        )
        cini = ceiling_ini(
            os.path.join(workdir, "ceiling.ini"),
            port=ceiling_port,
            threads=args.threads,
            folder=os.path.join(workdir, "ceiling"),
        )
        with (
            Server(ours_ini, ours_port, os.path.join(workdir, "ours.log")) as ours,
            Server(cini, ceiling_port, os.path.join(workdir, "ceiling.log")) as ceiling,
        ):
            ours.start().wait_ready("/simple/")
            ceiling.start().wait_ready("/simple/")
            rows = measure(
                ours_port, ceiling_port, auth, workdir, files=args.files, big_mb=args.big_upload_mb
            )
    print()
    print("\n".join(write_table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
