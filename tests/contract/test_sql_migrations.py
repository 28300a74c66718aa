"""Schema migrations when several processes start at the same moment (gunicorn, scale-out)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from pypicloud.index.sql import SQLIndex
from pypicloud.models import FileRecord

MIGRATE = """
import sys, time
from pypicloud.index.sql import SQLIndex
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # all start migrating together
SQLIndex(sys.argv[1], schema=sys.argv[2] or None).close()
"""


def migrate_at_once(url: str, schema: str, count: int = 8) -> list[tuple[int, str]]:
    start = str(time.time() + 4)  # after every process has imported pypicloud
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, url, schema, start], stderr=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        results.append((proc.returncode, err[-500:]))
    return results


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_processes_starting_together_all_come_up(kind, request, tmp_path):
    if kind == "postgres":
        url, schema = request.getfixturevalue("postgres_schema")
    elif kind == "mariadb":
        url, _ = request.getfixturevalue("mariadb_database")
        schema = ""
    else:
        url, schema = f"sqlite:///{tmp_path / 'index.sqlite'}", ""
    results = migrate_at_once(url, schema)
    assert all(code == 0 for code, _ in results), results
    index = SQLIndex(url, schema=schema or None)
    try:
        index.add(
            FileRecord(
                project="demo",
                name="demo",
                version="1.0",
                filename="demo-1.0.tar.gz",
                size=1,
                sha256="a" * 64,
            )
        )
        assert [r.filename for r in index.files("demo")] == ["demo-1.0.tar.gz"]
    finally:
        index.close()
