"""Webhooks through the real app (issue 18, part 4; docs/webhooks.md).

A receiver on 127.0.0.1 (tests/webhook_receiver.py) gets the signed POSTs;
retries are made quick by the ini (backoff in tens of milliseconds).
"""

from __future__ import annotations

import json
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pypicloud.webhooks.signing import verify
from tests.webhook_receiver import WebhookReceiver, wait_until

from .helpers import auth_headers, make_wheel, registry, restart, upload_dist
from .test_admin_ui import SECRET, csrf_of, login

HOOK_SECRET = "hook-secret-0123456789"


def hook_settings(url: str, **extra: str) -> dict[str, str]:
    return {
        "webhooks.ci.url": url,
        "webhooks.ci.secret": HOOK_SECRET,
        "webhooks.backoff_base": "0.02",
        "webhooks.backoff_max": "0.05",
        "webhooks.poll_interval": "0.05",
        "pypi.metrics": "true",
        "session.secret": SECRET,
        **extra,
    }


@pytest.fixture
def receiver():
    made: list[WebhookReceiver] = []

    def build(fail_first: int = 0) -> WebhookReceiver:
        made.append(WebhookReceiver(fail_first))
        return made[-1]

    yield build
    for r in made:
        r.close()


def queue(app):
    return registry(app).services.webhook_admin.overview(admin_identity())


def admin_identity():
    from pypicloud.models import Identity

    return Identity("admin", is_admin=True)


def queue_empty(app) -> bool:
    overview = queue(app)
    return overview.pending_count == 0 and overview.failed_count == 0


def webhook_counts(app) -> dict[tuple[str, str], float]:
    text = app.get("/metrics", headers=auth_headers("admin")).text
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ppc_webhook_deliveries_total":
                counts[(sample.labels["webhook"], sample.labels["outcome"])] = sample.value
            if sample.name == "ppc_webhook_queue_depth":
                counts[("queue", sample.labels["state"])] = sample.value
    return counts


def free_closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_receiver_failing_twice_then_gets_one_signed_delivery(make_app, receiver):
    hook = receiver(fail_first=2)
    app = make_app(hook_settings(hook.url))
    dist = make_wheel("demo", "1.0")
    upload_dist(app, dist)

    hook.wait_for(1)
    wait_until(lambda: queue_empty(app))
    assert [status for *_, status in hook.received] == [503, 503, 204]
    ids = {headers["X-Pypicloud-Delivery"] for headers, _, _ in hook.received}
    assert len(ids) == 1  # the same delivery id on every attempt
    ((headers, body),) = hook.accepted()
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Pypicloud-Event"] == "file.upload"
    assert verify(HOOK_SECRET, body, headers["X-Pypicloud-Signature"])
    assert not verify("another-secret-000000", body, headers["X-Pypicloud-Signature"])
    payload = json.loads(body)
    assert payload["webhook"] == "ci"
    event = payload["event"]
    assert (event["action"], event["project"], event["filename"], event["actor"]) == (
        "file.upload",
        "demo",
        dist[0],
        "admin",
    )
    counts = webhook_counts(app)
    assert counts[("ci", "retried")] == 2 and counts[("ci", "delivered")] == 1
    assert counts[("queue", "pending")] == 0


def test_a_receiver_that_is_down_never_blocks_an_upload(make_app):
    down = f"http://127.0.0.1:{free_closed_port()}/hook"
    app = make_app(hook_settings(down, **{"webhooks.max_attempts": "3"}))
    dist = make_wheel("demo", "1.0")
    assert upload_dist(app, dist).status_int == 200
    assert app.get("/simple/demo/", headers=auth_headers("admin")).status_int == 200

    wait_until(lambda: queue(app).failed_count == 1)
    (failed,) = queue(app).failed
    assert failed.attempts == 3 and "cannot reach the receiver" in failed.last_error
    counts = webhook_counts(app)
    assert counts[("ci", "failed")] == 1 and counts[("ci", "retried")] == 2
    assert counts[("queue", "failed")] == 1

    login(app)
    page = app.get("/admin/webhooks/")
    assert "cannot reach the receiver" in page.text and failed.id in page.text
    retried = app.post(
        "/admin/do/retry-delivery", {"csrf_token": csrf_of(page), "delivery": failed.id}
    ).follow()
    assert "will be sent again" in retried.text
    # Without the form's CSRF token nothing happens.
    refused = app.post("/admin/do/retry-delivery", {"delivery": failed.id}, expect_errors=True)
    assert refused.status_int == 403


def test_the_webhooks_page_is_for_admins_only(make_app, receiver):
    app = make_app(hook_settings(receiver().url))
    login(app, "bob")
    assert app.get("/admin/webhooks/", expect_errors=True).status_int == 403
    assert app.post("/admin/do/retry-delivery", {"delivery": "x"}, expect_errors=True).status_int == 403


def test_a_queued_delivery_survives_a_restart(make_app, receiver):
    hook = receiver()
    first = make_app(hook_settings(hook.url))
    registry(first).services.stop()  # the process "dies" before its worker sends anything
    upload_dist(first, make_wheel("demo", "1.0"))
    assert queue(first).pending_count == 1
    assert hook.received == []

    second = restart(first)
    try:
        hook.wait_for(1)
        wait_until(lambda: queue_empty(second))
        assert len(hook.received) == 1
    finally:
        registry(second).services.stop()
        registry(second).service.index.close()


def test_two_apps_sharing_one_index_deliver_each_event_once(make_app, receiver):
    hook = receiver()
    one = make_app(hook_settings(hook.url))
    two = make_app(hook_settings(hook.url))
    for n, app in enumerate([one, two, one, two]):
        upload_dist(app, make_wheel("demo", f"1.{n}"))
    hook.wait_for(4)
    wait_until(lambda: queue_empty(one))
    bodies = [json.loads(body)["event"]["filename"] for _, body in hook.accepted()]
    assert len(hook.received) == 4
    assert sorted(bodies) == sorted(f"demo-1.{n}-py3-none-any.whl" for n in range(4))


def test_only_the_events_a_webhook_asks_for_are_sent(make_app, receiver):
    hook = receiver()
    app = make_app(hook_settings(hook.url, **{"webhooks.ci.events": "file.yank"}))
    dist = make_wheel("demo", "1.0")
    upload_dist(app, dist)
    app.post(f"/api/package/demo/{dist[0]}/yank", headers=auth_headers("admin"))
    hook.wait_for(1)
    wait_until(lambda: queue_empty(app))
    assert [h["X-Pypicloud-Event"] for h, _ in hook.accepted()] == ["file.yank"]


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("webhooks.ci.url", "ftp://example.internal/hook", "webhooks.ci.url"),
        ("webhooks.ci.secret", "", "webhooks.ci.secret"),
        ("webhooks.ci.timeout", "soon", "webhooks.ci.timeout"),
        ("webhooks.ci.colour", "blue", "webhooks.ci.colour"),
        ("webhooks.max_attempts", "0", "webhooks.max_attempts"),
    ],
)
def test_a_bad_webhook_setting_stops_start_up_naming_the_key(make_app, key, value, named):
    from pypicloud.errors import ConfigError

    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        make_app(hook_settings("http://127.0.0.1:9/hook", **{key: value}))


def test_without_webhooks_the_page_says_so_and_nothing_is_queued(make_app):
    app = make_app({"session.secret": SECRET})
    assert registry(app).services.webhooks is None
    upload_dist(app, make_wheel("demo", "1.0"))
    login(app)
    page = app.get("/admin/webhooks/")
    assert "No webhook is configured" in page.text and "No failed delivery" in page.text
    assert queue(app).pending_count == 0
