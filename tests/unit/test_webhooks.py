"""Webhooks without a server: settings, body, signature, backoff, and the worker's decisions."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest

from pypicloud.errors import ConfigError
from pypicloud.events import UPLOAD, Event
from pypicloud.index.webhook_queue import FAILED, PENDING
from pypicloud.settings import Settings
from pypicloud.webhooks.config import DEFAULT_EVENTS, RetryPolicy, Webhook, webhooks_from_settings
from pypicloud.webhooks.dispatcher import WebhookDispatcher
from pypicloud.webhooks.signing import backoff, body_of, headers_for, signature, verify
from tests.fakes import MemoryIndex

SECRET = "s3cret-s3cret-s3cret"
NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)


# -- settings -----------------------------------------------------------------
def test_blocks_are_read_with_defaults_and_env_secrets():
    hooks, policy = webhooks_from_settings(
        Settings(
            {
                "webhooks.ci.url": "https://ci.example.internal/hook",
                "webhooks.ci.secret": "$HOOK_SECRET",
                "webhooks.audit.url": "http://127.0.0.1:9000/",
                "webhooks.audit.secret": SECRET,
                "webhooks.audit.events": "file.*, access",
                "webhooks.audit.timeout": "2.5",
                "webhooks.max_attempts": "3",
            },
            environ={"HOOK_SECRET": SECRET},
        )
    )
    assert [h.name for h in hooks] == ["audit", "ci"]
    audit, ci = hooks
    assert ci.secret == SECRET and ci.events == DEFAULT_EVENTS and ci.timeout == 10
    assert audit.events == ("file.*", "access") and audit.timeout == 2.5
    assert policy == RetryPolicy(max_attempts=3)


def test_no_blocks_no_webhooks():
    assert webhooks_from_settings(Settings({}, environ={}))[0] == []


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"webhooks.ci.url": "https://h.internal/"}, "webhooks.ci.secret"),
        ({"webhooks.ci.url": "https://h.internal/", "webhooks.ci.secret": "short"}, "webhooks.ci.secret"),
        ({"webhooks.ci.secret": SECRET}, "webhooks.ci.url"),
        ({"webhooks.ci.url": "file:///etc/passwd", "webhooks.ci.secret": SECRET}, "webhooks.ci.url"),
        ({"webhooks.ci.url": "https://", "webhooks.ci.secret": SECRET}, "webhooks.ci.url"),
        (
            {"webhooks.ci.url": "https://h/", "webhooks.ci.secret": SECRET, "webhooks.ci.events": "x y!"},
            "events",
        ),
        (
            {"webhooks.ci.url": "https://h/", "webhooks.ci.secret": SECRET, "webhooks.ci.timeout": "0"},
            "timeout",
        ),
        ({"webhooks.retries": "3"}, "webhooks.retries"),
        ({"webhooks.backoff_base": "10", "webhooks.backoff_max": "5"}, "webhooks.backoff_max"),
        ({"webhooks.poll_interval": "-1"}, "webhooks.poll_interval"),
    ],
)
def test_bad_settings_name_the_key(values, key):
    with pytest.raises(ConfigError) as caught:
        webhooks_from_settings(Settings(values, environ={}))
    assert key in str(caught.value)
    assert SECRET not in str(caught.value)


def test_events_match_actions_and_prefixes():
    hook = Webhook("w", "https://h/", SECRET, events=("file.yank", "access.*", "token"))
    assert hook.wants("file.yank") and not hook.wants("file.upload")
    assert hook.wants("access.user.create") and hook.wants("token.mint")
    assert not hook.wants("tokens.mint")
    assert Webhook("w", "https://h/", SECRET, events=("*",)).wants("anything.at.all")


# -- body, signature, backoff ----------------------------------------------------
def test_the_body_is_the_event_and_the_signature_an_hmac_of_it():
    event = Event(UPLOAD, "alice", project="demo", version="1.0", filename="demo-1.0.tar.gz")
    body = body_of("ci", event).encode()
    assert json.loads(body) == {"webhook": "ci", "event": event.to_json()}
    headers = headers_for(SECRET, body, UPLOAD, "d-1", 2)
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Pypicloud-Signature"] == signature(SECRET, body) == f"sha256={expected}"
    assert (headers["X-Pypicloud-Event"], headers["X-Pypicloud-Delivery"]) == (UPLOAD, "d-1")
    assert headers["Content-Type"] == "application/json"
    assert verify(SECRET, body, headers["X-Pypicloud-Signature"])
    assert not verify(SECRET, body + b" ", headers["X-Pypicloud-Signature"])
    assert not verify(SECRET, body, None)


def test_backoff_doubles_with_jitter_up_to_the_cap():
    rand = random.Random(7)
    for attempts, full in [(1, 10), (2, 20), (3, 40), (4, 80), (10, 300), (40, 300)]:
        for _ in range(20):
            assert full / 2 <= backoff(attempts, 10, 300, rand) <= full


# -- the worker's decisions (a fake sender, a clock the test moves) ------------------
class FakeSender:
    def __init__(self, answers):
        self.answers = list(answers)
        self.sent = []

    def send(self, webhook, delivery):
        self.sent.append((webhook.name, delivery.id, delivery.attempts))
        return self.answers.pop(0) if self.answers else None

    def close(self):
        pass


def dispatcher(answers, **policy):
    clock = {"now": NOW}
    index = MemoryIndex()
    hooks = [
        Webhook("ci", "https://h/", SECRET),
        Webhook("yanks", "https://y/", SECRET, events=("file.yank",)),
    ]
    sender = FakeSender(answers)
    d = WebhookDispatcher(
        index,
        hooks,
        RetryPolicy(backoff_base=10, backoff_max=60, **policy),
        sender=sender,
        clock=lambda: clock["now"],
    )
    outcomes = []
    d.observers.append(lambda hook, outcome: outcomes.append((hook, outcome)))
    return d, index, sender, clock, outcomes


def test_one_delivery_per_matching_webhook_retried_then_delivered():
    d, index, sender, clock, outcomes = dispatcher(["HTTP 503", "cannot reach the receiver"])
    d.on_event(Event(UPLOAD, "alice", project="demo"))
    assert index.count_deliveries(PENDING) == 1  # "yanks" does not want uploads
    assert d.run_once() == 1
    assert d.run_once() == 0  # not due yet: backoff
    clock["now"] += timedelta(seconds=10)
    assert d.run_once() == 1
    clock["now"] += timedelta(seconds=20)
    assert d.run_once() == 1
    assert [a for _, _, a in sender.sent] == [1, 2, 3]
    assert outcomes == [("ci", "retried"), ("ci", "retried"), ("ci", "delivered")]
    assert index.count_deliveries(PENDING) == 0


def test_failed_after_max_attempts_and_for_a_removed_webhook():
    d, index, sender, clock, outcomes = dispatcher(["HTTP 500"] * 5, max_attempts=2)
    d.on_event(Event(UPLOAD, "alice"))
    d.run_once()
    clock["now"] += timedelta(seconds=60)
    d.run_once()
    assert outcomes == [("ci", "retried"), ("ci", "failed")]
    (failed,) = index.list_deliveries(FAILED, 5)
    assert failed.last_error == "HTTP 500" and failed.attempts == 2

    del d.webhooks["ci"]  # the ini no longer has it
    index.redeliver(failed.id, clock["now"])
    d.run_once()
    (failed,) = index.list_deliveries(FAILED, 5)
    assert "no longer configured" in failed.last_error


def test_a_queue_that_cannot_be_written_never_fails_the_publisher(caplog):
    d, index, *_ = dispatcher([])

    def broken(deliveries):
        raise OSError("index down")

    index.enqueue_deliveries = broken
    d.on_event(Event(UPLOAD, "alice"))  # no exception
    assert "could not queue" in caplog.text


def test_the_worker_thread_starts_wakes_and_stops():
    d, index, sender, clock, outcomes = dispatcher([])
    d.start()
    try:
        assert d.running
        done = threading.Event()
        d.observers.append(lambda *_: done.set())
        d.on_event(Event(UPLOAD, "alice"))  # wakes the worker, which sends it
        assert done.wait(30)
    finally:
        d.stop()
    assert not d.running  # the thread has ended
    assert outcomes == [("ci", "delivered")]


def test_after_a_fork_the_next_event_starts_a_worker_of_the_childs_own():
    d, index, sender, clock, outcomes = dispatcher([], poll_interval=0.05)
    d.start()
    try:
        parent_thread, parent_owner, parent_stop = d._thread, d.owner, d._stop
        d._forked()  # what os.register_at_fork runs in a child process
        assert d._thread is None and d.owner != parent_owner
        done = threading.Event()
        d.observers.append(lambda *_: done.set())
        d.on_event(Event(UPLOAD, "alice"))  # the child's first event starts its thread
        assert done.wait(30)
        assert d.running and d._thread is not parent_thread
    finally:
        d.stop()
        parent_stop.set()  # in a real child the parent's thread does not exist
        parent_thread.join(30)
    assert not d.running and not parent_thread.is_alive()
