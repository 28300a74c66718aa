"""The change counter of PostgreSQL and Redis indexes, pushed to every process (index/push.py).

Warm pages read the counter from memory while a listener (LISTEN/NOTIFY, pub/sub)
vouches for it. These tests hold it to what a user must not notice: a change
through any index object or process is seen, reads make no round trip while the
listener is up, and when its connection is killed the index asks the database on
every read until the listener is back and has read the counter again, so a change
made while it was down is never missed.

Waits are bounded loops for an event (a notification, a reconnection), never
assertions on time.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from datetime import UTC, datetime

import pytest
import redis
import sqlalchemy as sa

from pypicloud.index import push as push_module
from pypicloud.index.redis import RedisIndex
from pypicloud.index.sql import SQLIndex
from pypicloud.models import FileRecord

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
WAIT = 20.0  # the bound of every wait for an event


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


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT} s: {what}")
        time.sleep(0.01)


class Target:
    """Opens index objects on one PostgreSQL schema or one Redis prefix."""

    def __init__(self, kind: str, url: str, place: str):
        self.kind, self.url, self.place = kind, url, place
        self.opened: list = []

    def open(self, **kw):
        if self.kind == "postgres":
            index = SQLIndex(self.url, schema=self.place, **kw)
        else:
            index = RedisIndex(self.url, prefix=self.place, **kw)
        self.opened.append(index)
        return index

    def kill(self, connection_id) -> None:
        """End one server session from outside, as a database restart or an admin would."""
        if self.kind == "postgres":
            engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
            with engine.begin() as conn:
                assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": connection_id}).scalar()
            engine.dispose()
        else:
            client = redis.Redis.from_url(self.url)
            assert client.client_kill_filter(_id=connection_id) == 1
            client.close()

    def session_exists(self, connection_id) -> bool:
        if self.kind == "postgres":
            engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
            with engine.begin() as conn:
                found = conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": connection_id}
                ).scalar()
            engine.dispose()
            return bool(found)
        client = redis.Redis.from_url(self.url)
        try:
            return any(int(c["id"]) == connection_id for c in client.client_list())
        finally:
            client.close()

    def close(self) -> None:
        for index in self.opened:
            index.close()


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def target(request):
    if request.param == "postgres":
        helper = Target("postgres", *request.getfixturevalue("postgres_schema"))
    else:
        helper = Target("redis", *request.getfixturevalue("redis_prefix"))
    yield helper
    helper.close()


class RoundTrips:
    """Counts the counter reads that went to the database from the calling thread."""

    def __init__(self, index, monkeypatch):
        self.count = 0
        me = threading.get_ident()

        def counted(original):
            def wrapper(*args, **kwargs):
                if threading.get_ident() == me:
                    self.count += 1
                return original(*args, **kwargs)

            return wrapper

        if isinstance(index, SQLIndex):
            monkeypatch.setattr(index, "_query_generation", counted(index._query_generation))
        else:
            monkeypatch.setattr(index.client, "execute_command", counted(index.client.execute_command))


def live(index) -> object:
    """Start the listener (the first read does) and wait until it vouches for the counter."""
    index.generation()
    wait_until(lambda: index._push.live, "the listener is up")
    return index._push.connection_id


def test_warm_reads_make_no_round_trip(target, monkeypatch):
    index = target.open()
    index.add(rec("demo-1.0.tar.gz"))
    live(index)
    expected = index.generation()
    trips = RoundTrips(index, monkeypatch)
    assert [index.generation() for _ in range(200)] == [expected] * 200
    assert trips.count == 0


def test_a_change_through_another_index_object_is_seen_at_once(target, monkeypatch):
    reader, writer = target.open(), target.open()
    live(reader)
    before = reader.generation()
    trips = RoundTrips(reader, monkeypatch)
    writer.add(rec("demo-1.0.tar.gz"))
    assert reader.generation() == before + 1
    writer.set_yanked("demo-1.0.tar.gz", True)
    writer.remove("demo-1.0.tar.gz")
    assert reader.generation() == before + 3
    assert writer.remove("demo-1.0.tar.gz") is False  # no change, nothing announced
    assert reader.generation() == before + 3
    assert trips.count == 0


def _write_in_child(kind: str, url: str, place: str, count: int) -> None:
    index = Target(kind, url, place).open(listen=False)
    for i in range(count):
        index.add(rec(f"demo-{i}.0.tar.gz", version=f"{i}.0"))
    index.close()


def _child(target: Target, count: int) -> None:
    process = multiprocessing.get_context("spawn").Process(
        target=_write_in_child, args=(target.kind, target.url, target.place, count)
    )
    process.start()
    process.join(60)
    assert process.exitcode == 0


def test_a_change_in_another_process_arrives_as_a_notification(target, monkeypatch):
    reader = target.open()
    live(reader)
    before = reader.generation()
    trips = RoundTrips(reader, monkeypatch)
    _child(target, 3)
    wait_until(lambda: reader.generation() == before + 3, "the other process's changes are seen")
    assert trips.count == 0
    assert len(reader.files("demo")) == 3


def test_a_killed_listener_falls_back_to_queries_and_recovers(target, monkeypatch):
    monkeypatch.setattr(push_module, "RETRY_MAX_SECONDS", 0.2)  # retry often while held off
    reader = target.open()
    other = target.open(listen=False)  # announces nothing in this process: stands for another one
    first_session = live(reader)
    push = reader._push
    # Hold the listener off the server after the kill, so the fallback can be watched.
    allowed = threading.Event()
    subscribe = push._subscribe

    def gated():
        if not allowed.is_set():
            raise ConnectionError("the test keeps the listener out")
        subscribe()

    monkeypatch.setattr(push, "_subscribe", gated)
    target.kill(first_session)
    wait_until(lambda: not push.live, "the listener notices its connection is gone")

    # Down: every read asks the database, and so sees a change whose
    # notification nobody received.
    trips = RoundTrips(reader, monkeypatch)
    before = reader.generation()
    other.add(rec("demo-1.0.tar.gz"))
    other.add(rec("demo-1.1.tar.gz", version="1.1"))
    assert reader.generation() == before + 2
    assert trips.count == 2

    # Back: the listener re-reads the counter, so the change made while it was
    # down is in it, and reads stop asking.
    allowed.set()
    wait_until(lambda: push.live, "the listener is back")
    assert push.connection_id != first_session
    trips.count = 0
    assert reader.generation() == before + 2
    other.remove("demo-1.0.tar.gz")
    wait_until(lambda: reader.generation() == before + 3, "a change after the recovery arrives")
    assert trips.count == 0


def test_a_change_between_subscribing_and_reading_is_not_missed(target, monkeypatch):
    """The listener subscribes before it reads the counter: a change committed
    right after that read still arrives as a notification."""
    reader, writer = target.open(), target.open(listen=False)
    push = reader._push
    push.check_seconds = 3600  # the periodic check must not be what finds it
    read_truth = push._read_truth
    done: list[int] = []

    def read_then_change():
        truth = read_truth()
        if not done:
            writer.add(rec("demo-1.0.tar.gz"))  # another process's write, between read and trust
            done.append(truth)
        return truth

    monkeypatch.setattr(push, "_read_truth", read_then_change)
    live(reader)
    trips = RoundTrips(reader, monkeypatch)
    wait_until(lambda: reader.generation() == done[0] + 1, "the change right after the read arrives")
    assert trips.count == 0


def test_close_stops_the_listener_and_ends_its_session(target):
    index = target.open()
    session = live(index)
    thread = index._push._thread
    assert target.session_exists(session)
    index.close()
    assert not thread.is_alive()
    wait_until(lambda: not target.session_exists(session), "the server sees the session end")


def test_listen_false_asks_the_database_every_time(target, monkeypatch):
    index = target.open(listen=False)
    assert index._push is None
    index.add(rec("demo-1.0.tar.gz"))
    expected = index.generation()
    trips = RoundTrips(index, monkeypatch)
    assert [index.generation() for _ in range(3)] == [expected] * 3
    assert trips.count == 3


def test_a_forked_child_listens_on_its_own_and_the_parent_keeps_listening(target, monkeypatch):
    """gunicorn --preload: workers are forked from a process that already read the counter."""
    index = target.open()
    parent_session = live(index)
    before = index.generation()
    pid = os.fork()
    if pid == 0:  # the child reuses the parent's index object
        code = 1
        try:
            assert index.generation() == before  # asks the database: no listener of its own yet
            wait_until(lambda: index._push.live, "the child's listener is up")
            assert index._push.connection_id != parent_session
            index.add(rec("demo-1.0.tar.gz"))
            assert index.generation() == before + 1
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    trips = RoundTrips(index, monkeypatch)
    wait_until(lambda: index.generation() == before + 1, "the parent sees the child's change")
    assert trips.count == 0
    assert index._push.connection_id == parent_session and index._push.live


def test_a_listener_whose_check_does_not_answer_stops_vouching(target, monkeypatch):
    """A connection that died without closing (or a starved thread): no answer to the
    periodic check means no trust after the grace, without waiting for TCP to give up."""
    reader = target.open()
    push = reader._push
    push.check_seconds = push.grace_seconds = 0.2
    answer = threading.Event()
    read_truth = push._read_truth
    checks: list[int] = []

    def hanging():
        checks.append(1)
        if len(checks) > 1:  # the first read (at start) answers, the next ones hang
            assert answer.wait(WAIT), "the test never let the check answer"
        return read_truth()

    monkeypatch.setattr(push, "_read_truth", hanging)
    live(reader)
    wait_until(lambda: not push.live, "the value is no longer vouched for")
    other = target.open(listen=False)
    other.add(rec("demo-1.0.tar.gz"))
    trips = RoundTrips(reader, monkeypatch)
    assert reader.generation() == other.generation()  # asked the database
    assert trips.count == 1
    answer.set()
    wait_until(lambda: push.live, "the check answered")
    trips.count = 0
    assert reader.generation() == other.generation()
    assert trips.count == 0


@pytest.mark.redis
def test_a_redis_user_without_channel_rights_still_writes_and_reads(redis_prefix, monkeypatch):
    """Redis 7 gives new ACL users no pub/sub channels: writes must not depend on PUBLISH,
    and reads fall back to asking Redis."""
    url, prefix = redis_prefix
    admin = redis.Redis.from_url(url)
    user = f"ppc-test-{os.getpid()}-{threading.get_ident()}"
    admin.acl_setuser(
        user, enabled=True, passwords=["+secret"], keys=["*"], commands=["+@all"], reset_channels=True
    )
    index = None
    try:
        host, port_db = url.split("//", 1)[1].split(":", 1)
        index = RedisIndex(f"redis://{user}:secret@{host}:{port_db}", prefix=prefix)
        before = index.generation()  # starts the listener, which is refused
        index.add(rec("demo-1.0.tar.gz"))
        trips = RoundTrips(index, monkeypatch)
        assert index.generation() == before + 1
        assert trips.count == 1  # asked Redis: no listener vouches for the value
        assert not index._push.live
        assert [r.filename for r in index.files("demo")] == ["demo-1.0.tar.gz"]
    finally:
        if index is not None:
            index.close()
        admin.acl_deluser(user)
        admin.close()
