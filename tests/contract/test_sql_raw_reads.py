"""SQLite's page and download reads skip SQLAlchemy (pypicloud/index/sql_reads.py): they
must give the very records SQLAlchemy's path gives, see every commit at once, and
survive a connection that died underneath."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pypicloud.index.schema import _record
from pypicloud.index.sql import SQLIndex
from pypicloud.index.sql_statements import FILENAME, PROJECT
from pypicloud.models import FileRecord


def _rec(filename: str, **kw) -> FileRecord:
    values = dict(
        project="demo",
        name="Demo",
        version="1.0",
        filename=filename,
        size=1234,
        sha256="a" * 64,
        md5="b" * 32,
        upload_time=datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
        key=f"demo/{filename}",
    )
    values.update(kw)
    return FileRecord(**values)


RECORDS = [
    _rec("demo-1.0.tar.gz"),
    _rec(
        "demo-1.0-py3-none-any.whl",
        requires_python=">=3.9",
        summary="ünïcode summary",
        uploader="alice",
        yanked=True,
        yanked_reason="broken",
        metadata_sha256="c" * 64,
        storage_tag="etag-1",
        # Stored as UTC, read back as UTC (the same instant).
        upload_time=datetime(2024, 5, 2, 1, 2, 3, 5, tzinfo=timezone(timedelta(hours=5))),
    ),
    _rec("demo-2.0.tar.gz", version="2.0", yanked=False, summary=None, size=2**40),
]


@pytest.fixture
def index(tmp_path):
    index = SQLIndex(f"sqlite:///{tmp_path / 'index.sqlite'}")
    yield index
    index.close()


def _through_sqlalchemy(index: SQLIndex, statement, params) -> list[FileRecord]:
    return [_record(row) for row in index._run(lambda c: c.execute(statement, params).all())]


def test_the_records_are_those_sqlalchemy_reads(index):
    for record in RECORDS:
        index.add(record)
    assert index._raw_reads() is not None  # SQLite: the raw path is the one under test
    hot = index._hot()
    expected = _through_sqlalchemy(index, hot.files, {PROJECT: "demo"})
    assert index.files("demo") == expected
    assert [r.filename for r in expected] == sorted(r.filename for r in RECORDS)
    whl = index.get("demo-1.0-py3-none-any.whl")
    assert [whl] == _through_sqlalchemy(index, hot.get, {FILENAME: "demo-1.0-py3-none-any.whl"})
    assert whl is not None and whl.yanked is True and whl.upload_time.tzinfo is not None
    assert whl.upload_time == datetime(2024, 5, 1, 20, 2, 3, 5, tzinfo=UTC)
    assert index.get("nothing.tar.gz") is None and index.files("nothing") == []


def test_a_commit_through_another_process_is_seen_at_once(index, tmp_path):
    index.add(RECORDS[0])
    assert [r.filename for r in index.files("demo")] == ["demo-1.0.tar.gz"]
    other = SQLIndex(f"sqlite:///{tmp_path / 'index.sqlite'}")
    try:
        other.add(RECORDS[2])
        other.remove("demo-1.0.tar.gz")
    finally:
        other.close()
    assert [r.filename for r in index.files("demo")] == ["demo-2.0.tar.gz"]
    assert index.get("demo-1.0.tar.gz") is None


def test_a_dead_kept_connection_is_replaced(index):
    index.add(RECORDS[0])
    index.files("demo")
    index._local.conn.close()  # as if the database had gone away while the thread idled
    assert [r.filename for r in index.files("demo")] == ["demo-1.0.tar.gz"]
