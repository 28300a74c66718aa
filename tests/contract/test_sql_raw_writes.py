"""SQLite's upload calls skip SQLAlchemy (pypicloud/index/sql_raw_writes.py): they must
store the very rows SQLAlchemy's path stores, be seen by other processes as soon as they
return, leave nothing behind when they fail, and survive a connection that died."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from pypicloud.errors import BackendUnavailable
from pypicloud.events import ChangeRows, Event
from pypicloud.index import sql_upload
from pypicloud.index.sql import SQLIndex
from pypicloud.index.webhook_queue import Delivery
from pypicloud.models import FileRecord

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _rec(filename: str, project: str = "demo", **kw) -> FileRecord:
    values = dict(
        project=project,
        name=project.title(),
        version="1.0",
        filename=filename,
        size=1234,
        sha256="a" * 64,
        md5="b" * 32,
        upload_time=T0,
        key=f"{project}/{filename}",
    )
    values.update(kw)
    return FileRecord(**values)


def _event(n: int, filename: str) -> Event:
    return Event(
        "file.upload",
        "alice",
        project="demo",
        version="1.0",
        filename=filename,
        detail={"size": n, "note": "ünïcode"},
        address="127.0.0.1",
        request_id=f"req-{n}",
        at=T0 + timedelta(seconds=n, microseconds=n),
        id=f"{n:032x}",
    )


def _delivery(n: int) -> Delivery:
    return Delivery(
        id=f"d{n:031x}",
        webhook="hook",
        action="file.upload",
        body=json.dumps({"n": n}),
        created=T0,
        next_attempt_at=T0 + timedelta(minutes=n),
    )


# Every write an upload makes: a new project (marked local), a second file of it with two
# events (an executemany) and one delivery, a name moved to another project (both summary
# rows rebuilt), a file without intent or rows, and an intent left open.
UPLOADS = [
    (_rec("demo-1.0.tar.gz"), ChangeRows([_event(1, "demo-1.0.tar.gz")], [])),
    (
        _rec(
            "demo-1.0-py3-none-any.whl",
            requires_python=">=3.9",
            summary="ünïcode summary",
            uploader="alice",
            metadata_sha256="c" * 64,
            storage_tag="etag-1",
            # Stored as UTC: the same instant.
            upload_time=datetime(2024, 5, 2, 1, 2, 3, 5, tzinfo=timezone(timedelta(hours=5))),
        ),
        ChangeRows([_event(2, "w"), _event(3, "w")], [_delivery(1)]),
    ),
    (_rec("demo-1.0.tar.gz", "other", size=2**40), ChangeRows([], [_delivery(2), _delivery(3)])),
]


@pytest.fixture
def fixed(monkeypatch):
    """Intent ids and times the same in every run, so two databases can be compared."""
    ids = iter(f"{n:032x}" for n in range(1000, 2000))
    monkeypatch.setattr(sql_upload, "uuid", SimpleNamespace(uuid4=lambda: SimpleNamespace(hex=next(ids))))
    monkeypatch.setattr(sql_upload, "utcnow", lambda: T0 + timedelta(hours=1))


def _open(path) -> SQLIndex:
    return SQLIndex(f"sqlite:///{path}")


def _upload(index: SQLIndex, record: FileRecord, rows: ChangeRows, *, intent: bool = True) -> bool:
    view = index.upload_view(record.project, record.filename)
    assert view.files == index.files(record.project)
    intent_id = index.begin_upload(record.project, record.filename) if intent else None
    return index.finish_upload(record, intent_id, rows)


def _dump(path) -> dict[str, list[tuple]]:
    """Every table, every value as SQLite's own literal (its type shows: 1, 1.0, '1')."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        dump = {}
        for table in tables:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            quoted = ", ".join(f'quote("{c}")' for c in columns)
            dump[table] = sorted(conn.execute(f"SELECT {quoted} FROM {table}").fetchall())
        return dump
    finally:
        conn.close()


def _write_all(index: SQLIndex) -> None:
    assert [_upload(index, record, rows) for record, rows in UPLOADS] == [True, True, True]
    assert _upload(index, _rec("solo-1.0.tar.gz", "solo"), ChangeRows(), intent=False) is True
    index.begin_upload("demo", "demo-2.0.tar.gz")  # left open


def test_the_rows_are_those_sqlalchemy_writes(tmp_path, fixed, monkeypatch):
    raw, through_sqlalchemy = _open(tmp_path / "raw.sqlite"), _open(tmp_path / "sa.sqlite")
    try:
        assert raw._raw_writes() is not None  # SQLite: the raw path is the one under test
        start = raw.generation()
        monkeypatch.setattr(through_sqlalchemy, "_raw_writes", lambda: None)
        engine_calls = []
        monkeypatch.setattr(raw, "_run", lambda fn: engine_calls.append(fn))
        _write_all(raw)
        assert engine_calls == []  # not one transaction through SQLAlchemy
        monkeypatch.undo()
        fixed_again = iter(f"{n:032x}" for n in range(1000, 2000))
        monkeypatch.setattr(
            sql_upload, "uuid", SimpleNamespace(uuid4=lambda: SimpleNamespace(hex=next(fixed_again)))
        )
        monkeypatch.setattr(sql_upload, "utcnow", lambda: T0 + timedelta(hours=1))
        monkeypatch.setattr(through_sqlalchemy, "_raw_writes", lambda: None)
        _write_all(through_sqlalchemy)
        expected = _dump(tmp_path / "sa.sqlite")
        assert _dump(tmp_path / "raw.sqlite") == expected
        # What was compared: every kind of row an upload writes.
        assert [len(expected[t]) for t in ("ppc_files", "ppc_projects", "ppc_intents")] == [3, 3, 1]
        assert [len(expected[t]) for t in ("ppc_events", "ppc_webhook_deliveries")] == [3, 3]
        assert expected["ppc_counters"] == [("'generation'", str(start + 4))]  # one per file written
        assert raw.generation() == through_sqlalchemy.generation() == start + 4
        view = raw.upload_view("demo", "demo-1.0.tar.gz")
        assert view.existing == through_sqlalchemy.get("demo-1.0.tar.gz")
        assert view.existing is not None and view.existing.project == "other"
        assert view.files == through_sqlalchemy.files("demo") == [UPLOADS[1][0]]
    finally:
        raw.close()
        through_sqlalchemy.close()


READER = """
import json, sys
from pypicloud.index.sql import SQLIndex
index = SQLIndex(sys.argv[1], migrate=False)
print(json.dumps([index.generation(), [r.filename for r in index.files("demo")]]))
index.close()
"""


def test_an_upload_is_seen_by_another_process_as_soon_as_it_returns(tmp_path):
    path = tmp_path / "index.sqlite"
    index, other = _open(path), _open(path)
    try:
        start = other.generation()
        assert _upload(index, *UPLOADS[0]) is True
        # Another index on the file (its own connection and shared-memory counter) ...
        assert other.generation() == start + 1
        assert [r.filename for r in other.files("demo")] == ["demo-1.0.tar.gz"]
        # ... and another process.
        out = subprocess.run(
            [sys.executable, "-c", READER, f"sqlite:///{path}"], capture_output=True, text=True, check=True
        )
        assert json.loads(out.stdout) == [start + 1, ["demo-1.0.tar.gz"]]
    finally:
        index.close()
        other.close()


def test_a_failure_inside_the_transaction_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "index.sqlite"
    index = _open(path)
    try:
        _upload(index, *UPLOADS[0])
        before, generation = _dump(path), index.generation()
        intent = index.begin_upload("demo", "demo-2.0.tar.gz")
        opened = _dump(path)
        assert len(opened["ppc_intents"]) == 1

        def broken(conn, project):  # after the counter, the file row and the old row's delete
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(index, "_refresh_project", broken)
        record = _rec("demo-2.0.tar.gz", version="2.0")
        with pytest.raises(RuntimeError, match="disk on fire"):
            index.finish_upload(record, intent, ChangeRows([_event(9, "x")], []))
        assert _dump(path) == opened  # no row, no event, the intent kept, the counter unmoved
        assert index.generation() == generation and index.get("demo-2.0.tar.gz") is None

        def unavailable(conn, project):
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(index, "_refresh_project", unavailable)
        with pytest.raises(BackendUnavailable, match="unavailable: disk I/O error"):
            index.finish_upload(record, intent, ChangeRows())
        assert _dump(path) == opened
        monkeypatch.undo()
        # The same connection goes on: the upload finishes.
        assert index.finish_upload(record, intent, ChangeRows()) is True
        assert index.get("demo-2.0.tar.gz") == record and index.generation() == generation + 1
        assert _dump(path)["ppc_intents"] == before["ppc_intents"] == []
    finally:
        index.close()


def test_rows_the_database_refuses_leave_the_record_written_alone(tmp_path):
    index = _open(tmp_path / "index.sqlite")
    try:
        start = index.generation()
        _upload(index, *UPLOADS[0])
        intent = index.begin_upload("demo", "demo-2.0.tar.gz")
        record = _rec("demo-2.0.tar.gz", version="2.0")
        # The first event's id again: the whole first transaction rolls back on its UNIQUE key.
        refused = ChangeRows([_event(5, "demo-2.0.tar.gz"), _event(1, "demo-2.0.tar.gz")], [_delivery(7)])
        assert index.finish_upload(record, intent, refused) is False
        assert index.get("demo-2.0.tar.gz") == record
        dump = _dump(tmp_path / "index.sqlite")
        assert dump["ppc_intents"] == [] and dump["ppc_webhook_deliveries"] == []
        assert [row[1] for row in dump["ppc_events"]] == [f"'{1:032x}'"]
        assert index.generation() == start + 2
    finally:
        index.close()


def test_a_dead_connection_is_made_again(tmp_path):
    index = _open(tmp_path / "index.sqlite")
    try:
        start = index.generation()
        _upload(index, *UPLOADS[0])
        index._local.conn.close()  # as if the database had gone away while the thread idled
        assert _upload(index, *UPLOADS[1]) is True
        index._local.conn.close()
        assert index.begin_upload("demo", "demo-2.0.tar.gz") is not None
        assert [r.filename for r in index.files("demo")] == ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"]
        assert index.generation() == start + 2
    finally:
        index.close()


def test_an_upload_waits_for_another_processs_write(tmp_path):
    path = tmp_path / "index.sqlite"
    index = _open(path)
    index.upload_view("demo", "x")  # the thread's connection made
    start = index.generation()
    holder = sqlite3.connect(path, isolation_level=None)
    outcome: list = []
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        holder.execute("UPDATE ppc_counters SET value = value + 10 WHERE name = 'generation'")

        def upload() -> None:
            try:
                outcome.append(_upload(index, *UPLOADS[0]))
            except Exception as exc:  # reported below
                outcome.append(exc)

        thread = threading.Thread(target=upload)
        thread.start()
        thread.join(0.5)
        assert outcome == []  # still waiting for the lock, not failed
        holder.execute("COMMIT")
        thread.join(60)
        assert outcome == [True]
        assert index.generation() == start + 11  # counted after the other writer's commit
    finally:
        holder.close()
        index.close()
