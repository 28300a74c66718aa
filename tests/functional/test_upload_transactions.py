"""What one upload asks of the SQL index (issue 17, item 2: cheaper small uploads).

An upload reads once (the project's files and the stored file of the same name
together) and writes twice: (a) the project marked local and the intent
recorded, before storage is touched; (b) the row, the end of the intent, the
audit event and the webhook deliveries, in one transaction after the bytes.
Counted here on a SQLite index, on the request's own thread (the webhook
worker's claims are not the upload's), by SQLAlchemy's engine events and, for
the statements SQLite runs on the thread's plain connection (the upload's three
calls, index/sql_raw_writes.py), by the driver's trace callback.

Before this change an upload made 8 or 9 index calls of one transaction each
(files, was_local, mark_local's insert for a new project, get, begin_intent,
add, end_intent, add_event, enqueue_deliveries): 8 or 9 transactions, 5 or 6
of them writes, and 15 or 16 statements with one webhook configured.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from pypicloud.index.base import MetadataIndex
from pypicloud.index.webhook_queue import FAILED, PENDING

from .helpers import basic, make_sdist, make_wheel, registry, service, upload_dist

HOOK = {
    # Nothing listens on port 9 (discard): deliveries stay queued, retried much later.
    "webhooks.ci.url": "http://127.0.0.1:9/hook",
    "webhooks.ci.secret": "hook-secret-0123456789",
    "webhooks.backoff_base": "3600",
    "webhooks.poll_interval": "3600",
}
WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Counted:
    """Index calls and SQL transactions (each a list of statements) of one thread."""

    thread: int
    calls: list[str] = field(default_factory=list)
    transactions: list[list[str]] = field(default_factory=list)

    def clear(self) -> None:
        self.calls.clear()
        self.transactions.clear()

    @property
    def statements(self) -> int:
        return sum(len(t) for t in self.transactions)

    @property
    def writes(self) -> list[list[str]]:
        return [t for t in self.transactions if any(s.lstrip().upper().startswith(WRITES) for s in t)]


def counting(index) -> Counted:
    """Count ``index``'s contract calls and its engine's transactions made on this thread."""
    counted = Counted(threading.get_ident())

    def here() -> bool:
        return threading.get_ident() == counted.thread

    def wrap(name, method):
        def call(*args, **kwargs):
            if here():
                counted.calls.append(name)
            return method(*args, **kwargs)

        return call

    for name in dir(MetadataIndex):
        if name.startswith("_") or name in ("generation", "from_settings", "close"):
            continue
        method = getattr(index, name, None)
        if callable(method):
            setattr(index, name, wrap(name, method))

    def begin(conn):
        if here():
            counted.transactions.append([])

    def statement(conn, cursor, sql, *args):
        if here() and counted.transactions:
            counted.transactions[-1].append(sql)

    sa.event.listen(index.engine, "begin", begin)
    sa.event.listen(index.engine, "before_cursor_execute", statement)

    def traced(conn) -> None:
        def trace(sql: str) -> None:
            head = sql.lstrip().upper()
            if not here() or head.startswith(("COMMIT", "ROLLBACK")) or sql == index._generation_sql:
                return  # the change counter's own read is every request's, not the upload's
            if head.startswith("BEGIN"):
                counted.transactions.append([])
            elif conn.in_transaction and counted.transactions:
                counted.transactions[-1].append(sql)
            else:  # one statement in autocommit: a transaction of its own
                counted.transactions.append([sql])

        conn.set_trace_callback(trace)

    make = index._generation_connection

    def made():
        conn = make()
        traced(conn)
        return conn

    index._generation_connection = made
    kept = getattr(index._local, "conn", None)
    if kept is not None:
        traced(kept)
    return counted


@pytest.fixture
def hooked_app(make_app):
    return make_app(HOOK)


def warm(app) -> None:
    """A first request as admin: the login's throttle counters are read once, not per upload."""
    app.get("/simple/", headers=basic("admin"))


def test_an_upload_reads_once_and_writes_twice(hooked_app):
    index = service(hooked_app).index
    warm(hooked_app)
    counted = counting(index)
    wheel, sdist = make_wheel("demo", "1.0"), make_sdist("demo", "1.0")
    upload_dist(hooked_app, wheel, headers={"X-Request-ID": "req-wheel"})
    assert counted.calls == ["upload_view", "begin_upload", "finish_upload"]
    assert len(counted.transactions) == 3
    assert len(counted.writes) == 2
    # Read 1; (a) mark local + intent 2; (b) counter, old row, row, project
    # summary 2, intent, audit event, webhook delivery 8.
    assert [len(t) for t in counted.transactions] == [1, 2, 8]

    counted.clear()
    upload_dist(hooked_app, sdist, headers={"X-Request-ID": "req-sdist"})
    # The project is known to be local now: (a) only records the intent.
    assert [len(t) for t in counted.transactions] == [1, 1, 8]
    assert len(counted.writes) == 2

    # What a user sees: both files, one audit row each with actor and request id,
    # one queued delivery each.
    assert [r.filename for r in index.files("demo")] == sorted([wheel[0], sdist[0]])
    audit = registry(hooked_app).services.audit
    lines = [e for e in audit.index.list_events(audit_query()) if e.action == "file.upload"]
    assert sorted((e.filename, e.actor, e.request_id) for e in lines) == sorted(
        [(wheel[0], "admin", "req-wheel"), (sdist[0], "admin", "req-sdist")]
    )
    queued = index.list_deliveries(PENDING, 10) + index.list_deliveries(FAILED, 10)
    assert sorted(d.action for d in queued) == ["file.upload", "file.upload"]
    assert index.open_intents(older_than=far_future()) == []


def test_a_re_upload_of_the_same_bytes_only_reads(hooked_app):
    index = service(hooked_app).index
    wheel = make_wheel("demo", "1.0")
    upload_dist(hooked_app, wheel)
    counted = counting(index)
    upload_dist(hooked_app, wheel)  # twine --skip-existing's case: the same file again
    assert counted.writes == []
    assert len(counted.transactions) == 1


def audit_query():
    from pypicloud.index.eventlog import EventQuery

    return EventQuery(limit=100)


def far_future():
    from datetime import timedelta

    from pypicloud.models import utcnow

    return utcnow() + timedelta(days=1)
