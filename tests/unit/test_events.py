"""The event bus: every subscriber sees every event; a failing subscriber fails nothing;
a row subscriber's rows ride along with a change published by ``publish_with``."""

import logging

import pytest

from pypicloud.events import ChangeRows, Event, EventBus, RowSubscriber, current_address, request_context


def test_subscribers_see_events_in_order_and_errors_stay_in_the_log(caplog):
    bus = EventBus()
    seen: list[tuple[str, str]] = []

    def broken(event: Event) -> None:
        raise RuntimeError("receiver down")

    bus.subscribe(lambda e: seen.append(("first", e.action)))
    bus.subscribe(broken)
    bus.subscribe(lambda e: seen.append(("last", e.action)))
    with caplog.at_level(logging.ERROR, logger="pypicloud.events"):
        bus.publish(Event("file.upload", "alice", project="demo"))
    assert seen == [("first", "file.upload"), ("last", "file.upload")]
    assert "receiver down" in caplog.text


def test_events_carry_the_request_context_only_inside_it():
    with request_context("203.0.113.9", "req-1"):
        inside = Event("file.delete", "bob")
        assert current_address() == "203.0.113.9"
    outside = Event("file.delete", "bob")
    assert (inside.address, inside.request_id) == ("203.0.113.9", "req-1")
    assert (outside.address, outside.request_id) == (None, "-")
    body = inside.to_json()
    assert body["action"] == "file.delete" and body["at"].endswith("Z") and len(body["id"]) == 32


class Recorder(RowSubscriber):
    """A row subscriber that records what the bus asks of it."""

    def __init__(self, name: str, fail_stage: bool = False):
        self.name, self.fail_stage = name, fail_stage
        self.wrote: list[str] = []
        self.told: list[str] = []

    def stage(self, event: Event, rows: ChangeRows) -> None:
        if self.fail_stage:
            raise RuntimeError("cannot stage")
        rows.events.append(Event(f"{self.name}:{event.action}", event.actor))

    def write(self, event: Event, rows: ChangeRows) -> None:
        self.wrote += [e.action for e in rows.events]

    def written(self, event: Event, rows: ChangeRows) -> None:
        self.told += [e.action for e in rows.events]


@pytest.mark.parametrize("carried", [True, False])
def test_rows_ride_with_the_change_or_are_written_apart(carried):
    bus = EventBus()
    audit, hooks, broken = Recorder("audit"), Recorder("hooks"), Recorder("broken", fail_stage=True)
    plain: list[str] = []
    for subscriber in (audit, broken, lambda e: plain.append(e.action), hooks):
        bus.subscribe(subscriber)
    given: list[list[str]] = []

    def change(rows: ChangeRows) -> bool:
        given.append([e.action for e in rows.events])
        assert plain == []  # plain subscribers hear of the change after it
        return carried

    bus.publish_with(Event("file.upload", "alice"), change)
    assert given == [["audit:file.upload", "hooks:file.upload"]]
    assert plain == ["file.upload"]
    for recorder in (audit, hooks):
        assert recorder.wrote == ([] if carried else [f"{recorder.name}:file.upload"])
        assert recorder.told == [f"{recorder.name}:file.upload"]
    assert broken.wrote == broken.told == []


def test_a_change_that_fails_publishes_nothing():
    bus = EventBus()
    audit = Recorder("audit")
    plain: list[str] = []
    bus.subscribe(audit)
    bus.subscribe(lambda e: plain.append(e.action))

    def change(rows: ChangeRows) -> bool:
        raise OSError("index down")

    with pytest.raises(OSError):
        bus.publish_with(Event("file.upload", "alice"), change)
    assert audit.wrote == audit.told == plain == []


def test_a_row_subscriber_published_plainly_writes_its_own_rows():
    bus = EventBus()
    audit = Recorder("audit")
    bus.subscribe(audit)
    bus.publish(Event("file.delete", "bob"))
    assert audit.wrote == audit.told == ["audit:file.delete"]
