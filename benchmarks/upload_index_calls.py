"""The index's share of an upload alone: ``upload_view``, ``begin_upload``, ``finish_upload``.

    .venv/bin/python -m benchmarks.upload_index_calls        # SQLite file, 3 rounds of 300

No storage, no form, no fsync of the package: only the three index calls an upload
makes (docs/architecture.md), with one audit event each, on a SQLite index in a
temporary folder, 40 projects so ``upload_view`` reads a growing project as a real one
does. Prints each round's milliseconds per upload, unprofiled, and the best. Much
steadier than a whole upload on a busy machine, whose time is mostly the disk's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime

from pypicloud.events import ChangeRows, Event
from pypicloud.index.sql import SQLIndex
from pypicloud.models import FileRecord


def _upload(index: SQLIndex, i: int) -> None:
    name = f"pkg{i}-1.0.tar.gz"
    record = FileRecord(
        project=f"pkg{i % 40}",
        name="Pkg",
        version="1.0",
        filename=name,
        size=10,
        sha256="a" * 64,
        md5="b" * 32,
        upload_time=datetime.now(UTC),
        key=f"k/{name}",
        summary="A summary",
    )
    index.upload_view(record.project, name)
    intent = index.begin_upload(record.project, name)
    event = Event("file.upload", "admin", project=record.project, version="1.0", filename=name)
    index.finish_upload(record, intent, ChangeRows([event]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.upload_index_calls", description=__doc__)
    parser.add_argument("--uploads", type=int, default=300, help="uploads per round (300)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ppc-index-calls-") as root:
        index = SQLIndex(f"sqlite:///{root}/index.sqlite")
        try:
            for i in range(50):  # warm: statements compiled, connections made
                _upload(index, i)
            rounds = []
            for r in range(args.rounds):
                started = time.perf_counter()
                for i in range(args.uploads):
                    _upload(index, 1_000_000 * (r + 1) + i)
                rounds.append((time.perf_counter() - started) / args.uploads * 1000)
        finally:
            index.close()
    print(
        "index calls per upload: " + " ".join(f"{ms:.3f}" for ms in rounds) + f" ms (best {min(rounds):.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
