"""The SQLite index's change counter in shared memory (cache/sharedcounter.py).

Warm pages read the counter from a memory-mapped file instead of asking SQLite;
these tests hold it to the promise that this changes nothing a user can see:
a change through any process is seen by every other on its next request, the
mapped value never goes back because writers publish out of order, and the
database stays the truth when the mapped value is stale or damaged.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from datetime import UTC, datetime

import pytest

from pypicloud.index import sql as sql_module
from pypicloud.index.sharedcounter import SharedCounter
from pypicloud.index.sql import SQLIndex
from pypicloud.models import FileRecord
from tests import threads

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def rec(filename: str, version: str = "1.0") -> FileRecord:
    return FileRecord(
        project="demo",
        name="demo",
        version=version,
        filename=filename,
        size=1,
        sha256="0" * 64,
        upload_time=T0,
    )


@pytest.fixture
def db(tmp_path):
    return tmp_path / "index.sqlite"


@pytest.fixture
def open_index(db):
    opened: list[SQLIndex] = []

    def open_() -> SQLIndex:
        index = SQLIndex(f"sqlite:///{db}")
        opened.append(index)
        return index

    yield open_
    for index in opened:
        index.close()


def no_queries(index: SQLIndex, monkeypatch) -> None:
    def refuse():
        raise AssertionError("the database was asked for the counter")

    monkeypatch.setattr(index, "_query_generation", refuse)


def test_counter_file_lives_beside_the_database(db, open_index):
    open_index()
    assert (db.parent / "index.sqlite.generation").stat().st_size == os.sysconf("SC_PAGESIZE")


def test_warm_reads_do_not_ask_the_database(open_index, monkeypatch):
    index = open_index()
    index.add(rec("demo-1.0.tar.gz"))
    expected = index.generation()
    no_queries(index, monkeypatch)
    assert [index.generation() for _ in range(100)] == [expected] * 100


def test_a_write_in_another_instance_is_seen_at_once_without_a_query(open_index, monkeypatch):
    reader, writer = open_index(), open_index()
    before = reader.generation()
    no_queries(reader, monkeypatch)
    writer.add(rec("demo-1.0.tar.gz"))
    assert reader.generation() == before + 1 == writer.generation()
    writer.set_yanked("demo-1.0.tar.gz", True)
    writer.remove("demo-1.0.tar.gz")
    assert reader.generation() == before + 3


def _write_in_child(url: str, count: int) -> None:
    index = SQLIndex(url)
    for i in range(count):
        index.add(rec(f"demo-{i}.0.tar.gz", version=f"{i}.0"))
    index.close()


def test_a_write_in_another_process_is_seen_at_once(db, open_index, monkeypatch):
    reader = open_index()
    before = reader.generation()
    no_queries(reader, monkeypatch)
    child = multiprocessing.get_context("spawn").Process(target=_write_in_child, args=(f"sqlite:///{db}", 3))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    # Starting a child takes longer than the check interval: pretend it did not.
    reader._checked_at = time.monotonic()
    assert reader.generation() == before + 3
    assert len(reader.files("demo")) == 3


def test_a_forked_child_publishes_to_the_parent(db, open_index, monkeypatch):
    reader = open_index()
    before = reader.generation()
    no_queries(reader, monkeypatch)
    pid = os.fork()
    if pid == 0:  # the child reuses the parent's index object, as gunicorn --preload does
        code = 1
        try:
            reader.add(rec("demo-1.0.tar.gz"))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # On a busy machine the child can take longer than the check interval: pretend
    # it did not (the check would ask the database, which this test forbids).
    reader._checked_at = time.monotonic()
    assert reader.generation() == before + 1


def test_writers_publishing_out_of_order_never_move_the_counter_back(tmp_path):
    counter = SharedCounter(str(tmp_path / "c.generation"))
    counter.publish(7)
    counter.publish(5)  # a writer that committed earlier but published later
    assert counter.read() == 7
    counter.close()


def test_concurrent_writers_leave_the_database_value(open_index, monkeypatch):
    writers = [open_index(), open_index()]
    reader = open_index()

    def work(thread: int):
        for i in range(15):
            writers[thread % 2].add(rec(f"demo-{thread}.{i}.tar.gz", version=f"{thread}.{i}"))

    errors = threads.errors_of(threads.run_together([lambda n=n: work(n) for n in range(4)], timeout=120))
    assert errors == []
    truth = reader._query_generation()
    reader.generation()  # the first call checks; from here on memory only
    no_queries(reader, monkeypatch)
    assert reader.generation() == truth
    assert reader._shared.read() == truth


def test_a_write_that_never_published_is_seen_within_the_check_interval(db, open_index):
    """A writer killed between its commit and its publish: the next check finds it."""
    index = open_index()
    before = index.generation()
    raw = sqlite3.connect(db)
    raw.execute("UPDATE ppc_counters SET value = value + 1 WHERE name = 'generation'")
    raw.commit()
    raw.close()
    assert index.generation() == before  # still trusting shared memory
    index._checked_at -= sql_module.SHARED_COUNTER_CHECK_SECONDS  # a second has passed
    assert index.generation() == before + 1


def test_the_check_may_lower_the_counter_when_the_database_went_back(db, open_index):
    index = open_index()
    index.add(rec("demo-1.0.tar.gz"))
    truth = index._query_generation()
    index._shared.publish(truth + 50)  # a value the database never had
    index._checked_at = float("-inf")
    assert index.generation() == truth
    assert index._shared.read() == truth


def test_a_damaged_counter_file_falls_back_to_the_database(db, open_index):
    index = open_index()
    index.add(rec("demo-1.0.tar.gz"))
    truth = index._query_generation()
    with open(str(db) + ".generation", "r+b") as f:
        f.write(b"\x01" * 16)  # value and check no longer agree
    assert index._shared.read() is None
    assert index.generation() == truth
    assert index._shared.read() == truth  # and the check repaired it


def test_an_unwritable_directory_means_queries_not_failure(tmp_path, monkeypatch):
    def refuse(cls, path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(SharedCounter, "__init__", refuse)
    index = SQLIndex(f"sqlite:///{tmp_path / 'ro.sqlite'}")
    try:
        assert index._shared is None
        index.add(rec("demo-1.0.tar.gz"))
        assert index.generation() == index._query_generation()
    finally:
        index.close()
