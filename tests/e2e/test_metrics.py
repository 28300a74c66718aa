"""``/metrics`` of a real server installed from the wheel (issue 18, part 1).

Scraped with prometheus-client's own text parser, as Prometheus would read it:
the counters move as twine uploads and pip-like reads are made; waitress (one
process) and gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` (two worker processes
whose values the scrape adds up) give the same totals.
"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import ok, twine_upload

pytestmark = pytest.mark.e2e


def scrape(server, **kw) -> dict[tuple[str, tuple], float]:
    status, headers, body = server.request("GET", "/metrics", **kw)
    assert status == 200, body
    assert headers.get("Content-Type", "").startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize("command", ["pserve", "gunicorn"])
def test_counters_move_as_clients_use_the_server(server_factory, dists, cenv, tmp_path, command):
    env = {}
    if command == "gunicorn":
        multiproc = tmp_path / "prometheus"
        multiproc.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)
    srv = server_factory(
        {"pypi.metrics": "true", "pypi.metrics_allow_from": "127.0.0.1/32"},
        command=command,
        env=env,
    )
    before = scrape(srv)  # from a listed address, no credentials
    wheel, sdist = dists.build("1.0")
    ok(twine_upload(srv, [wheel, sdist], cenv))
    for _ in range(4):
        assert srv.request("GET", "/simple/acme-widget/", user="alice")[0] == 200
    status, _, body = srv.request("GET", f"/api/package/acme-widget/{wheel.name}", user="alice")
    assert status == 200
    assert srv.request("GET", "/simple/acme-widget/", user="alice", password="wrong")[0] == 401
    after = scrape(srv, user="admin")

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("ppc_http_requests_total", route="simple.project", method="GET", status="200") == 4
    assert moved("ppc_http_requests_total", route="simple.project", method="GET", status="401") == 1
    assert moved("ppc_http_requests_total", route="simple.index", method="POST", status="200") == 2
    assert moved("ppc_http_request_duration_seconds_count", route="simple.project", method="GET") == 5
    assert moved("ppc_uploads_total", result="created") == 2
    assert moved("ppc_upload_bytes_total") == wheel.stat().st_size + sdist.stat().st_size
    assert moved("ppc_downloads_total", served="stream") == 1
    assert moved("ppc_download_bytes_total") == len(body)
    assert moved("ppc_login_failures_total") == 1
    # An upload stores its file from the spool (put_file) and its PEP 658 companion (put_companion).
    assert moved("ppc_backend_call_duration_seconds_count", backend="storage", operation="put_file") == 2
    assert moved("ppc_backend_call_duration_seconds_count", backend="storage", operation="put_companion") >= 1


def test_others_are_refused_and_off_means_absent(server_factory):
    on = server_factory({"pypi.metrics": "true"}, name="on")
    assert on.request("GET", "/metrics")[0] == 401
    assert on.request("GET", "/metrics", user="alice")[0] == 403
    assert on.request("GET", "/metrics", headers={"X-Forwarded-For": "127.0.0.1"})[0] == 401
    assert any(name == "ppc_http_requests_total" for name, _ in scrape(on, user="admin"))
    off = server_factory(name="off")
    assert off.request("GET", "/metrics", user="admin")[0] == 404
