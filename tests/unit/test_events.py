"""The event bus: every subscriber sees every event; a failing subscriber fails nothing."""

import logging

from pypicloud.events import Event, EventBus, current_address, request_context


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
