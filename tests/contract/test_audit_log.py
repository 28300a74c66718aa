"""The audit log's contract (index/base.py ``add_event``, ``list_events``, ``prune_events``),
run against every index backend with the fixtures of test_index.py: the in-memory
fake, SQLite, PostgreSQL, MariaDB, Redis and DynamoDB on the moto server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pypicloud.events import Event
from pypicloud.index.eventlog import EventQuery
from tests.contract.test_index import backend, index, rec  # noqa: F401 (fixtures)

T0 = datetime(2025, 3, 1, 9, 30, 0, 250000, tzinfo=UTC)


def ev(action: str, minutes: int, actor: str | None = "alice", project: str | None = None, **kw) -> Event:
    return Event(
        action,
        actor,
        project=project,
        at=T0 + timedelta(minutes=minutes),
        address=kw.pop("address", "198.51.100.7"),
        request_id=kw.pop("request_id", f"req-{minutes}"),
        **kw,
    )


def ids(events: list[Event]) -> list[str]:
    return [e.action + "@" + str(int((e.at - T0).total_seconds() // 60)) for e in events]


@pytest.fixture
def log(index):
    """An index holding eight events, one a minute, in the order they happened."""
    for event in [
        ev("file.upload", 0, project="demo", version="1.0", filename="demo-1.0.tar.gz"),
        ev("access.user.create", 1, actor="admin", detail={"user": "bob"}),
        ev("file.yank", 2, project="demo", detail={"reason": "broken"}),
        ev("access.grant.set", 3, actor="admin", project="demo", detail={"permission": "rw"}),
        ev("token.create", 4, actor="bob"),
        ev("file.upload", 5, actor="bob", project="other"),
        ev("access.user.delete", 6, actor="cli:root", detail={"user": "carol"}),
        ev("file.delete", 7, project="demo"),
    ]:
        index.add_event(event)
    return index


def test_empty_log(index):
    assert index.list_events(EventQuery()) == []
    assert index.prune_events(T0) == 0


def test_every_field_round_trips(index):
    event = Event(
        "file.upload",
        "alice",
        project="demo",
        version="1.0",
        filename="demo-1.0-py3-none-any.whl",
        detail={"size": 1234, "sha256": "a" * 64, "nested": {"list": [1, "two", None], "flag": True}},
        address="2001:db8::1",
        request_id="0123abcd",
        at=T0,
    )
    index.add_event(event)
    assert index.list_events(EventQuery()) == [event]


def test_optional_fields_may_be_empty(index):
    event = Event("oidc.mint", None, address=None, at=T0)
    index.add_event(event)
    [back] = index.list_events(EventQuery())
    assert back == event and back.detail == {} and back.request_id == "-"


def test_unicode_round_trips(index):
    event = Event(
        "access.user.create",
        "zoë",
        project="müsli",
        detail={"user": "名前", "note": "emoji 🐍 and \u2028 separators", "quote": "\"'<>&"},
        at=T0,
    )
    index.add_event(event)
    assert index.list_events(EventQuery(actor="zoë")) == [event]
    assert index.list_events(EventQuery(project="müsli")) == [event]


def test_newest_first(log):
    assert ids(log.list_events(EventQuery())) == [
        "file.delete@7",
        "access.user.delete@6",
        "file.upload@5",
        "token.create@4",
        "access.grant.set@3",
        "file.yank@2",
        "access.user.create@1",
        "file.upload@0",
    ]


def test_filter_by_exact_action(log):
    assert ids(log.list_events(EventQuery(action="file.upload"))) == ["file.upload@5", "file.upload@0"]
    assert log.list_events(EventQuery(action="file")) == []  # no dot: an exact name


def test_filter_by_action_prefix(log):
    assert ids(log.list_events(EventQuery(action="access."))) == [
        "access.user.delete@6",
        "access.grant.set@3",
        "access.user.create@1",
    ]
    assert ids(log.list_events(EventQuery(action="access.user."))) == [
        "access.user.delete@6",
        "access.user.create@1",
    ]


def test_filter_by_actor_and_project(log):
    assert ids(log.list_events(EventQuery(actor="bob"))) == ["file.upload@5", "token.create@4"]
    assert ids(log.list_events(EventQuery(project="demo"))) == [
        "file.delete@7",
        "access.grant.set@3",
        "file.yank@2",
        "file.upload@0",
    ]
    assert ids(log.list_events(EventQuery(actor="alice", project="demo", action="file."))) == [
        "file.delete@7",
        "file.yank@2",
        "file.upload@0",
    ]
    assert log.list_events(EventQuery(actor="nobody")) == []


def test_filter_by_time(log):
    window = EventQuery(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5))
    assert ids(log.list_events(window)) == ["token.create@4", "access.grant.set@3", "file.yank@2"]
    assert ids(log.list_events(EventQuery(since=T0 + timedelta(minutes=6)))) == [
        "file.delete@7",
        "access.user.delete@6",
    ]
    assert ids(log.list_events(EventQuery(until=T0 + timedelta(minutes=1)))) == ["file.upload@0"]


def test_paging_with_before_sees_every_event_once(log):
    seen: list[Event] = []
    query = EventQuery(limit=3)
    while True:
        page = log.list_events(query)
        assert len(page) <= 3
        if not page:
            break
        seen += page
        query = EventQuery(limit=3, before=page[-1].id)
    assert ids(seen) == ids(log.list_events(EventQuery()))


def test_paging_keeps_the_filters(log):
    first = log.list_events(EventQuery(project="demo", limit=2))
    assert ids(first) == ["file.delete@7", "access.grant.set@3"]
    rest = log.list_events(EventQuery(project="demo", limit=2, before=first[-1].id))
    assert ids(rest) == ["file.yank@2", "file.upload@0"]
    assert log.list_events(EventQuery(project="demo", before=rest[-1].id)) == []


def test_before_an_unknown_event_is_empty(log):
    assert log.list_events(EventQuery(before="0" * 32)) == []


def test_prune_removes_only_older_events(log):
    assert log.prune_events(T0 + timedelta(minutes=3)) == 3
    assert ids(log.list_events(EventQuery()))[-1] == "access.grant.set@3"
    assert len(log.list_events(EventQuery())) == 5
    assert log.list_events(EventQuery(action="access.user.create")) == []
    assert log.prune_events(T0 + timedelta(minutes=3)) == 0
    log.add_event(ev("file.upload", 9))
    assert ids(log.list_events(EventQuery(limit=1))) == ["file.upload@9"]
    assert log.prune_events(T0 + timedelta(days=1)) == 6
    assert log.list_events(EventQuery()) == []


def test_events_are_shared_by_instances_and_leave_the_records_alone(backend):  # noqa: F811
    first, second = backend.open(), backend.open()
    generation = first.generation()
    first.add_event(ev("file.upload", 0, project="demo"))
    assert ids(second.list_events(EventQuery())) == ["file.upload@0"]
    assert first.generation() == generation
    # A rebuild replaces the records, never the audit log.
    second.replace_all([rec("demo-1.0.tar.gz")])
    assert len(first.list_events(EventQuery())) == 1


def test_a_query_limits_its_size():
    with pytest.raises(ValueError):
        EventQuery(limit=0)
    with pytest.raises(ValueError):
        EventQuery(limit=100_000)


def test_old_events_are_reached_through_until_even_when_a_call_reads_little(log, monkeypatch):
    # Backends that bound the work of one call: make the bound tiny.
    from pypicloud.index import dynamo_events, redis_events

    monkeypatch.setattr(dynamo_events, "MAX_SCAN", 4)
    monkeypatch.setattr(dynamo_events, "BATCH", 2)
    monkeypatch.setattr(redis_events, "MAX_SCAN", 4)
    monkeypatch.setattr(redis_events, "CHUNK", 2)
    assert ids(log.list_events(EventQuery(until=T0 + timedelta(minutes=2)))) == [
        "access.user.create@1",
        "file.upload@0",
    ]
    assert ids(log.list_events(EventQuery(limit=2))) == ["file.delete@7", "access.user.delete@6"]
