"""The contract of an upload's three index calls (index/base.py ``upload_view``,
``begin_upload``, ``finish_upload``), on every backend of tests/contract/test_index.py.

The SQL index makes each one transaction and writes the upload's audit event and
webhook deliveries with its row (``finish_upload`` returns True); the others
compose the older calls and leave those rows to their subscribers (False).
"""

from __future__ import annotations

from datetime import timedelta

from pypicloud.events import ChangeRows, Event
from pypicloud.index.eventlog import EventQuery
from pypicloud.index.webhook_queue import PENDING
from pypicloud.models import ProjectSummary, utcnow
from tests.contract.test_index import T0, backend, index, rec  # noqa: F401  (fixtures)
from tests.contract.test_webhook_queue import delivery

CARRIES_ROWS = ("sqlite", "postgres", "mariadb")
WHEEL, SDIST = "demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"


def later():
    return utcnow() + timedelta(days=1)


def test_upload_view_answers_files_and_get_at_once(index):
    index.add(rec(SDIST))
    index.add(rec(WHEEL, sha256="c" * 64))
    index.add(rec("other-1.0.tar.gz", "other"))
    view = index.upload_view("demo", SDIST)
    assert view.files == index.files("demo") and len(view.files) == 2
    assert view.existing == index.get(SDIST)
    # A name another project holds (1.x layouts): found all the same.
    view = index.upload_view("demo", "other-1.0.tar.gz")
    assert view.files == index.files("demo")
    assert view.existing == index.get("other-1.0.tar.gz")
    view = index.upload_view("new", "new-1.0.tar.gz")
    assert (view.files, view.existing) == ([], None)


def test_an_upload_begins_with_the_project_local_and_its_intent(backend):
    first, second = backend.open(), backend.open()
    assert not second.was_local("demo")
    before = second.generation()
    ids = [first.begin_upload("demo", name) for name in (WHEEL, SDIST)]
    assert second.was_local("demo")
    assert second.generation() == before  # no record changed
    opened = second.open_intents(later())
    if ids[0] is not None:
        assert sorted((i.id, i.op, i.project, i.filename) for i in opened) == sorted(
            (intent, "upload", "demo", name) for intent, name in zip(ids, (WHEEL, SDIST), strict=True)
        )


def test_finish_upload_writes_the_row_and_ends_the_intent(backend):
    index = backend.open()
    intent = index.begin_upload("demo", WHEEL)
    before = index.generation()
    record = rec(WHEEL, name="Demo", when=T0)
    event = Event("file.upload", "alice", project="demo", version="1.0", filename=WHEEL)
    queued = delivery(1)
    carried = index.finish_upload(record, intent, ChangeRows([event], [queued]))
    other = backend.open()
    assert other.get(WHEEL) == record
    assert other.generation() > before
    assert other.open_intents(later()) == []
    assert other.projects() == [
        ProjectSummary(project="demo", name="Demo", summary="A summary", last_modified=T0)
    ]
    assert carried is (backend.kind in CARRIES_ROWS)
    events = other.list_events(EventQuery(limit=10))
    deliveries = other.list_deliveries(PENDING, 10)
    if carried:  # written with the row, every field as given
        assert events == [event]
        assert [d.id for d in deliveries] == [queued.id]
    else:  # left to the subscribers
        assert events == [] and deliveries == []


def test_finish_upload_replaces_a_row_of_the_name_and_both_summaries(backend):
    index = backend.open()
    index.add(rec(SDIST, "old", name="Old"))
    index.add(rec(WHEEL, when=T0 + timedelta(hours=1), name="Demo", summary="newest"))
    record = rec(SDIST, when=T0, name="demo", summary="older", sha256="d" * 64)
    index.finish_upload(record, index.begin_upload("demo", SDIST), ChangeRows())
    assert index.get(SDIST) == record
    assert [r.filename for r in index.files("demo")] == [WHEEL, SDIST]
    assert index.files("old") == []
    # The summary is the newest file's, which is not the one just written.
    assert index.projects() == [
        ProjectSummary(project="demo", name="Demo", summary="newest", last_modified=T0 + timedelta(hours=1))
    ]


def test_rows_the_index_refuses_never_cost_the_record(backend):
    index = backend.open()
    event = Event("file.upload", "alice", project="demo", filename=WHEEL)
    index.add_event(event)  # the same event id again is refused (ids are unique)
    intent = index.begin_upload("demo", WHEEL)
    record = rec(WHEEL)
    assert index.finish_upload(record, intent, ChangeRows([event], [delivery(2)])) is False
    assert index.get(WHEEL) == record
    assert index.open_intents(later()) == []
    assert [e.id for e in index.list_events(EventQuery(limit=10))] == [event.id]
    assert index.list_deliveries(PENDING, 10) == []  # the caller writes them apart
