"""Webhooks of a real server installed from the wheel (issue 18, part 4; docs/webhooks.md).

twine uploads to waitress; a receiver on 127.0.0.1 that refuses the first
attempt gets one signed delivery per uploaded file, each verified with the
secret the server read from its environment. The same delivery id twice is
a retry of one delivery, never a second delivery; under gunicorn two worker
processes share the queue and still send each delivery once.
"""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pypicloud.webhooks.signing import verify
from tests.e2e.helpers import ok, twine_upload
from tests.webhook_receiver import WebhookReceiver, wait_until

pytestmark = pytest.mark.e2e

SECRET = "e2e-webhook-secret-0123456789"


def queue_depth(srv) -> float:
    status, _, body = srv.request("GET", "/metrics")
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "ppc_webhook_queue_depth" and sample.labels["state"] == "pending":
                return sample.value
    raise AssertionError("no ppc_webhook_queue_depth on /metrics")


@pytest.mark.parametrize("command", ["pserve", "gunicorn", "gunicorn-preload"])
def test_twine_upload_reaches_a_receiver_signed_once_per_file(server_factory, dists, cenv, command):
    # gunicorn: two forked worker processes, each with its own webhook thread, one queue.
    # --preload: the app (and its worker thread) is built before the fork; each worker
    # starts a thread of its own at its first event, the master's keeps running.
    env = {"CI_WEBHOOK_SECRET": SECRET}
    if command == "gunicorn-preload":
        command, env["GUNICORN_CMD_ARGS"] = "gunicorn", "--preload"
    receiver = WebhookReceiver(fail_first=1)
    try:
        srv = server_factory(
            {
                "webhooks.ci.url": receiver.url,
                "webhooks.ci.secret": "$CI_WEBHOOK_SECRET",
                "webhooks.backoff_base": "0.1",
                "webhooks.backoff_max": "0.2",
                "webhooks.poll_interval": "0.2",
                "pypi.metrics": "true",
                "pypi.metrics_allow_from": "127.0.0.1/32",
            },
            env=env,
            command=command,
        )
        wheel, sdist = dists.build("1.0")
        ok(twine_upload(srv, [wheel, sdist], cenv))
        receiver.wait_for(2, timeout=60)
        wait_until(lambda: queue_depth(srv) == 0, timeout=60)  # nothing more can be sent
        accepted = receiver.accepted()
        assert len(accepted) == 2 and len(receiver.received) == 3
        assert all(verify(SECRET, body, headers["X-Pypicloud-Signature"]) for headers, body in accepted)
        events = [json.loads(body)["event"] for _, body in accepted]
        assert sorted(e["filename"] for e in events) == sorted([wheel.name, sdist.name])
        assert {(e["action"], e["project"], e["actor"]) for e in events} == {
            ("file.upload", "acme-widget", "admin")
        }
        # The refused first attempt came back with the same delivery id.
        first_id = receiver.received[0][0]["X-Pypicloud-Delivery"]
        assert [h["X-Pypicloud-Delivery"] for h, *_ in receiver.received].count(first_id) == 2
        assert len({h["X-Pypicloud-Delivery"] for h, _ in accepted}) == 2
    finally:
        receiver.close()
