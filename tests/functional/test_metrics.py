"""``GET /metrics`` (issue 18, part 1): off by default, admins and listed addresses only,
and the counters a scrape shows move as requests are made."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pypicloud.errors import ConfigError

from .helpers import auth_headers, make_wheel, upload_dist

ON = {"pypi.metrics": "true"}


def scrape(app, **kw) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape, keyed by (name, sorted labels)."""
    response = app.get("/metrics", headers=auth_headers("admin"), **kw)
    assert response.content_type == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name: str, **labels) -> float:
    """Sum over every sample of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= set(got))


def test_off_by_default_answers_404(make_app):
    app = make_app()
    assert app.get("/metrics", headers=auth_headers("admin"), expect_errors=True).status_int == 404


def test_only_admins_or_listed_addresses_may_read(make_app):
    app = make_app({**ON, "pypi.metrics_allow_from": "10.0.0.0/8, 192.168.1.7"})
    anonymous = app.get("/metrics", expect_errors=True, extra_environ={"REMOTE_ADDR": "172.16.0.1"})
    assert anonymous.status_int == 401 and "WWW-Authenticate" in anonymous.headers
    plain_user = app.get(
        "/metrics",
        headers=auth_headers("bob"),
        expect_errors=True,
        extra_environ={"REMOTE_ADDR": "172.16.0.1"},
    )
    assert plain_user.status_int == 403
    # A forwarded header is the client's to choose: it never opens the door.
    spoofed = app.get(
        "/metrics",
        headers={"X-Forwarded-For": "10.0.0.1"},
        expect_errors=True,
        extra_environ={"REMOTE_ADDR": "172.16.0.1"},
    )
    assert spoofed.status_int == 401
    for address in ("10.20.30.40", "192.168.1.7", "::ffff:10.0.0.9"):
        listed = app.get("/metrics", extra_environ={"REMOTE_ADDR": address})
        assert listed.status_int == 200 and "ppc_http_requests_total" in listed.text
    assert app.get("/metrics", headers=auth_headers("admin")).status_int == 200


def test_a_bad_network_stops_start_up(make_app):
    with pytest.raises(ConfigError, match="pypi.metrics_allow_from"):
        make_app({**ON, "pypi.metrics_allow_from": "10.0.0.0/33"})


def test_counters_move_with_requests(make_app):
    app = make_app(ON)
    before = scrape(app)
    filename, data = make_wheel("demo", "1.0")
    upload_dist(app, (filename, data))
    upload_dist(app, (filename, data))  # the same file again: already stored
    for _ in range(3):
        app.get("/simple/demo/", headers=auth_headers("alice"))
    app.get(f"/api/package/demo/{filename}", headers=auth_headers("alice"))
    app.get("/simple/nothing-here/", headers=auth_headers("alice"), expect_errors=True)
    after = scrape(app)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("ppc_http_requests_total", route="simple.project", method="GET", status="200") == 3
    assert moved("ppc_http_requests_total", route="simple.project", method="GET", status="404") == 1
    assert moved("ppc_http_requests_total", route="upload.root", method="POST", status="200") == 2
    assert moved("ppc_http_request_duration_seconds_count", route="simple.project", method="GET") == 4
    assert moved("ppc_uploads_total", result="created") == 1
    assert moved("ppc_uploads_total", result="already_stored") == 1
    assert moved("ppc_upload_bytes_total") == len(data)
    assert moved("ppc_downloads_total", served="stream") == 1
    assert moved("ppc_download_bytes_total") == len(data)
    # Storage and index calls are timed; the second and third page views come from the cache.
    assert (
        total(after, "ppc_backend_call_duration_seconds_count", backend="storage", operation="put_file") >= 1
    )
    assert (
        total(after, "ppc_backend_call_duration_seconds_count", backend="index", operation="generation") >= 3
    )
    assert total(after, "ppc_page_cache_lookups_total", cache="pages", result="hit") >= 2
    assert total(after, "ppc_page_cache_lookups_total", cache="pages", result="miss") >= 1


def test_login_failures_and_throttling_are_counted(make_app):
    app = make_app({**ON, "auth.throttle_user": "2"})
    for _ in range(3):
        app.get("/simple/", headers=auth_headers("bob", "wrong"), expect_errors=True)
    samples = scrape(app)
    assert value(samples, "ppc_login_failures_total") == 2
    assert value(samples, "ppc_login_throttled_total") == 1
    assert value(samples, "ppc_http_requests_total", route="simple.index", method="GET", status="429") == 1


def test_backend_errors_are_counted(make_app, tmp_path):
    app = make_app(ON)
    packages = tmp_path / "packages"
    for child in packages.iterdir():
        child.unlink()
    packages.rmdir()
    packages.write_text("not a directory")  # storage can no longer write anything
    response = upload_dist(app, make_wheel("demo", "1.0"), status=None)
    assert response.status_int >= 500
    samples = scrape(app)
    assert total(samples, "ppc_backend_call_errors_total", backend="storage") >= 1


def test_upstream_fetches_are_counted(make_app, fake_upstream):
    wheel = make_wheel("Remote.Pkg", "1.0")
    fake_upstream.add("Remote.Pkg", wheel)
    app = make_app({**ON, "pypi.fallback": "cache", "pypi.fallback_base_url": fake_upstream.url})
    headers = auth_headers("admin")
    assert app.get("/simple/remote-pkg/", headers=headers).status_int == 200
    assert app.get(f"/api/package/remote-pkg/{wheel[0]}", headers=headers).body == wheel[1]
    assert app.get("/simple/not-upstream-either/", headers=headers, expect_errors=True).status_int == 404
    fake_upstream.fail_status = 503
    app.get("/simple/other-pkg/", headers=headers, expect_errors=True)
    samples = scrape(app)
    assert value(samples, "ppc_upstream_fetches_total", kind="page", outcome="ok") >= 2
    assert value(samples, "ppc_upstream_fetches_total", kind="file", outcome="ok") == 1
    assert value(samples, "ppc_upstream_fetches_total", kind="page", outcome="error") == 1
    assert value(samples, "ppc_upstream_fetch_duration_seconds_count", kind="page") >= 3
