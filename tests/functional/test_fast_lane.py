"""The fast lane (pypicloud/fastlane.py) answers exactly what Pyramid answers.

Two apps over the same storage and index, one with the lane (the default) and one
with ``pypi.fast_reads = false``, get the same requests as plain WSGI calls; status,
headers (the request id's value aside) and bodies must be equal, and the lane must
have answered the warm ones itself (it marks the environ of those it served).
"""

from __future__ import annotations

import json
import logging
import re

import pytest
import webtest
from webob import Request

from pypicloud.fastlane import SERVED_KEY, fast_reads_enabled
from pypicloud.settings import Settings
from tests.functional.helpers import HASHES, basic, make_sdist, make_wheel, upload_dist

HTML = "application/vnd.pypi.simple.v1+html"
JSON = "application/vnd.pypi.simple.v1+json"
WHEEL = "public_pkg-1.0-py3-none-any.whl"
SDIST = "public_pkg-1.0.tar.gz"
SECRET = "secret_pkg-2.0-py3-none-any.whl"
GRANTS = {
    "package.public-pkg.group.everyone": "r",
    "package.public-pkg.user.admin": "rw",
    "package.secret-pkg.user.alice": "rw",
}


class FileWrapper:
    """A server's ``wsgi.file_wrapper``: the lane must hand local files to it."""

    def __init__(self, filelike, block_size=8192):
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self):
        return iter(lambda: self.filelike.read(self.block_size), b"")

    def close(self):
        self.filelike.close()


def call(app, path: str, method: str = "GET", headers=None, base_url: str | None = None):
    """One WSGI call: (status, headers, body, environ, app_iter)."""
    environ = Request.blank(path, method=method, headers=headers or {}, base_url=base_url).environ
    environ["wsgi.file_wrapper"] = FileWrapper
    got: dict = {}

    def start_response(status, headerlist, exc_info=None):
        got["status"], got["headers"] = status, headerlist

    app_iter = app(environ, start_response)
    try:
        body = b"".join(app_iter)
    finally:
        if hasattr(app_iter, "close"):
            app_iter.close()
    return got["status"], got["headers"], body, environ, app_iter


def _same_headers(lane_headers, plain_headers) -> None:
    def masked(headers):
        names = [name for name, _ in headers]
        assert names.count("X-Request-ID") == 1, headers
        return [(n, "<id>" if n == "X-Request-ID" else v) for n, v in headers]

    assert masked(lane_headers) == masked(plain_headers)


def both(apps, path: str, method: str = "GET", headers=None, base_url: str | None = None):
    """The same request to both apps; asserts equal answers; returns the lane's (status, headers, served)."""
    lane, plain = apps
    status, got_headers, body, environ, _ = call(lane, path, method, headers, base_url)
    plain_status, plain_headers, plain_body, plain_environ, _ = call(plain, path, method, headers, base_url)
    assert (status, body) == (plain_status, plain_body), (path, headers, status, plain_status)
    _same_headers(got_headers, plain_headers)
    assert SERVED_KEY not in plain_environ
    return status, dict(got_headers), environ.get(SERVED_KEY, False)


@pytest.fixture
def apps(make_app):
    plain = make_app({**GRANTS, "pypi.fast_reads": "false"})
    upload_dist(plain, make_wheel("public-pkg", "1.0"))
    upload_dist(plain, make_sdist("public-pkg", "1.0"))
    upload_dist(plain, make_wheel("secret-pkg", "2.0"), user="alice")
    lane = make_app(GRANTS)
    assert lane.app.__class__.__name__ == "RejectUndecodable"
    return lane.app, plain.app


def _auth(user: str, password: str | None = None) -> dict:
    return basic(user, password)


# (path, request headers, expected status, served by the lane once warm)
CASES = [
    ("/simple/", {}, 200, True),
    ("/simple/", {"Accept": JSON}, 200, True),
    ("/simple/", _auth("bob"), 200, True),
    ("/simple/public-pkg/", {}, 200, True),
    ("/simple/public-pkg/", {"Accept": JSON}, 200, True),
    ("/simple/public-pkg/", {"Accept": "*/*"}, 200, True),
    ("/simple/public-pkg/", {"Accept": HTML}, 200, True),
    ("/simple/public-pkg/", {"Accept": "text/plain"}, 406, False),
    ("/simple/public-pkg/?format=" + JSON.replace("+", "%2B"), {}, 200, False),
    ("/simple/public-pkg/?verbose=1", {}, 200, True),
    ("/simple/public-pkg/", _auth("bob"), 200, True),
    ("/simple/public-pkg/", _auth("bob", "wrong"), 200, True),
    ("/simple/public-pkg/", _auth("__token__", "pypi-not-a-token"), 200, True),
    ("/simple/public-pkg/", {"Authorization": "Basic !!!"}, 401, False),
    ("/simple/public-pkg/", {"Authorization": "Bearer abc"}, 200, False),
    ("/simple/public-pkg/", {"If-None-Match": '"nope"'}, 200, True),
    ("/simple/public-pkg/", {"If-None-Match": "*"}, 304, True),
    ("/simple/Public_Pkg/", {}, 301, False),
    ("/simple/public-pkg", {}, 301, False),
    ("/simple/secret-pkg/", _auth("alice"), 200, True),
    ("/simple/secret-pkg/", {}, 401, False),
    ("/simple/secret-pkg/", _auth("bob"), 403, False),
    ("/simple/secret-pkg/", _auth("bob", "wrong"), 401, False),
    ("/simple/no-such-pkg/", {}, 404, False),
    (f"/packages/public-pkg/{WHEEL}", {}, 200, True),
    (f"/packages/public-pkg/{WHEEL}", _auth("bob"), 200, True),
    (f"/packages/public-pkg/{SDIST}", {}, 200, True),
    (f"/packages/public-pkg/{WHEEL}.metadata", {}, 200, True),
    (f"/api/package/public-pkg/{WHEEL}", {}, 200, True),
    (f"/api/package/public-pkg/{WHEEL}.metadata", _auth("admin"), 200, True),
    (f"/packages/public-pkg/{WHEEL}", {"Range": "bytes=0-9"}, 206, False),
    (f"/packages/public-pkg/{WHEEL}", {"Range": "bytes=0-9", "If-Range": '"x"'}, 200, False),
    (f"/packages/public-pkg/{WHEEL}", {"If-None-Match": "*"}, 304, True),
    (f"/packages/public-pkg/{WHEEL}.metadata", {"If-None-Match": "*"}, 304, True),
    (f"/packages/Public_Pkg/{WHEEL}", {}, 301, False),
    (f"/packages/public-pkg/{SDIST}.metadata", {}, 200, True),
    ("/packages/public-pkg/nothing-1.0-py3-none-any.whl.metadata", {}, 404, False),
    ("/packages/public-pkg/nothing-1.0.tar.gz", {}, 404, False),
    (f"/packages/secret-pkg/{SECRET}", {}, 401, False),
    (f"/packages/secret-pkg/{SECRET}", _auth("bob"), 403, False),
    (f"/packages/secret-pkg/{SECRET}", _auth("alice"), 200, True),
    (f"/packages/secret-pkg/{SECRET}.metadata", _auth("alice"), 200, True),
    (f"/api/package/secret-pkg/{SECRET}", {"Authorization": "Basic !!!"}, 401, False),
]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_lane_answers_as_pyramid_does(apps, method):
    for path, headers, status, served in CASES:
        # Cold (the page cache is empty: the lane renders a project page, Pyramid the
        # rest), then warm.
        for attempt in ("cold", "warm"):
            got, _, lane_served = both(apps, path, method, headers)
            assert int(got[:3]) == status, (path, headers, got)
            if attempt == "warm":
                assert lane_served == served, (path, headers, attempt)


def test_validators_and_a_mounted_app(apps):
    _, page, _ = both(apps, "/simple/public-pkg/")
    etag = page["ETag"]
    for value in (etag, f'"other", {etag}', f"W/{etag}", etag.strip('"')):
        status, _, served = both(apps, "/simple/public-pkg/", headers={"If-None-Match": value})
        assert served and status.startswith(("304", "200"))
    _, file_answer, _ = both(apps, f"/packages/public-pkg/{WHEEL}")
    status, headers, served = both(
        apps, f"/packages/public-pkg/{WHEEL}", headers={"If-None-Match": file_answer["ETag"]}
    )
    assert (status, served) == ("304 Not Modified", True)
    assert headers["Cache-Control"].startswith("public, ")
    _, secret, _ = both(apps, f"/packages/secret-pkg/{SECRET}", headers=_auth("alice"))
    assert secret["Cache-Control"].startswith("private, ") and secret["Vary"] == "Authorization"
    for path in ("/simple/", "/simple/public-pkg/", f"/packages/public-pkg/{WHEEL}"):
        for _ in range(2):
            status, headers, served = both(apps, path, base_url="http://mirror.example:8080/pypi")
        assert status == "200 OK" and served
    _, page, _ = both(apps, "/simple/public-pkg/", base_url="http://mirror.example:8080/pypi")
    body = call(apps[0], "/simple/public-pkg/", base_url="http://mirror.example:8080/pypi")[2]
    assert b"http://mirror.example:8080/pypi/packages/public-pkg/" in body


def test_downloads_go_to_the_servers_file_wrapper(apps):
    lane, _ = apps
    call(lane, f"/packages/public-pkg/{WHEEL}")
    _, _, body, environ, app_iter = call(lane, f"/packages/public-pkg/{WHEEL}")
    assert environ[SERVED_KEY] and isinstance(app_iter, FileWrapper)
    assert body.startswith(b"PK")


def test_an_upload_is_seen_at_once(apps):
    lane, plain = apps
    call(lane, "/simple/public-pkg/")
    status, _, before, environ, _ = call(lane, "/simple/public-pkg/")
    assert environ[SERVED_KEY]
    # Uploaded through the other app (another process sharing the index).
    upload_dist(webtest.TestApp(plain), make_wheel("public-pkg", "1.1"))
    status, _, after, environ, _ = call(lane, "/simple/public-pkg/")
    assert status == "200 OK" and b"public_pkg-1.1" in after and after != before
    # A new change counter: the cached page was stale, and the lane rendered the new one.
    assert environ[SERVED_KEY]
    assert call(lane, "/simple/public-pkg/")[2] == after


_MASKED = re.compile(r"\d+(\.\d+)?ms|id=[0-9a-f]+")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_access_line_is_pyramids(make_app, caplog, fmt):
    plain = make_app({**GRANTS, "pypi.fast_reads": "false", "logging.format": fmt})
    upload_dist(plain, make_wheel("public-pkg", "1.0"))
    lane = make_app({**GRANTS, "logging.format": fmt})
    requests = [
        ("/simple/public-pkg/?x=1", {"X-Forwarded-For": "10.1.2.3", **_auth("bob")}),
        (f"/api/package/public-pkg/{WHEEL}.metadata", _auth("admin")),
        (f"/packages/public-pkg/{WHEEL}", {"X-Request-ID": "from-proxy.1"}),
        ("/simple/", {"If-None-Match": "*"}),
        (f"/packages/public-pkg/{WHEEL}", {"If-None-Match": "*"}),
        # Handed on to Pyramid: still one line, with the id the lane gave the request.
        ("/simple/no-such-pkg/", _auth("bob", "wrong")),
    ]
    for path, headers in requests:
        call(lane.app, path, headers=headers)  # warms the lane's page cache
        lines = []
        for app in (lane.app, plain.app):
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="pypicloud.requests"):
                _, got_headers, _, environ, _ = call(app, path, headers=headers)
            (record,) = [r for r in caplog.records if r.name == "pypicloud.requests"]
            assert dict(got_headers)["X-Request-ID"] in record.getMessage()
            lines.append(record.getMessage())
        assert environ.get(SERVED_KEY) is None  # the last one was the plain app
        lane_line, plain_line = lines
        if fmt == "json":
            lane_fields, plain_fields = json.loads(lane_line), json.loads(plain_line)
            for name in ("time", "duration_ms", "request_id"):
                assert lane_fields.pop(name) and plain_fields.pop(name)
            assert lane_fields == plain_fields
        else:
            assert _MASKED.sub("*", lane_line) == _MASKED.sub("*", plain_line)
        if "X-Request-ID" in headers:
            assert "from-proxy.1" in lane_line


def test_wrong_passwords_count_once_through_the_lane(make_app):
    throttled = {**GRANTS, "auth.throttle_user": "3", "auth.throttle_address": "0"}
    plain = make_app({**throttled, "pypi.fast_reads": "false"})
    upload_dist(plain, make_wheel("public-pkg", "1.0"))
    upload_dist(plain, make_wheel("secret-pkg", "2.0"), user="alice")
    lane = make_app(throttled)
    for app, user in ((lane.app, "bob"), (plain.app, "admin")):
        wrong = _auth(user, "wrong")
        call(app, "/simple/public-pkg/")  # warm
        # Served by the lane, handed on to Pyramid (401), served: three failures, counted once each.
        statuses = [
            call(app, "/simple/public-pkg/", headers=wrong)[0],
            call(app, "/simple/secret-pkg/", headers=wrong)[0],
            call(app, f"/packages/public-pkg/{WHEEL}", headers=wrong)[0],
        ]
        assert [s[:3] for s in statuses] == ["200", "401", "200"]
        status, headers, _, environ, _ = call(app, "/simple/public-pkg/", headers=wrong)
        assert status.startswith("429") and "Retry-After" in dict(headers)
        assert SERVED_KEY not in environ


@pytest.mark.parametrize(
    ("overrides", "lane"),
    [({}, True), ({"pypi.fast_reads": "false"}, False), ({"pypi.metrics": "true"}, False)],
)
def test_the_setting_and_metrics_turn_the_lane_off(make_app, overrides, lane):
    plain = make_app({**GRANTS, **overrides})
    upload_dist(plain, make_wheel("public-pkg", "1.0"))
    for _ in range(2):
        status, _, _, environ, _ = call(plain.app, "/simple/public-pkg/")
    assert status == "200 OK" and environ.get(SERVED_KEY, False) is lane


def test_the_setting_is_known_to_the_typo_check():
    assert Settings({"pypi.fast_reads": "false"}).warn_unknown() == []
    assert not fast_reads_enabled(Settings({"pypi.fast_reads": "false"}))
    assert fast_reads_enabled(Settings({}))


def test_tokens_read_through_the_lane_as_through_pyramid(make_app):
    sql = {"pypi.auth": "sql", "user.admin": None, "user.alice": None, "user.bob": None}
    sql["package.alice-pkg.user.alice"] = None
    plain = make_app({**sql, "pypi.fast_reads": "false"})
    access = plain.app.registry.services.service.access
    access.create_user("admin", HASHES["admin"], admin=True)
    access.create_user("alice", HASHES["alice"])
    access.set_grant("secret-pkg", "user", "alice", "rw")
    upload_dist(plain, make_wheel("secret-pkg", "2.0"), user="alice")
    upload_dist(plain, make_wheel("other-pkg", "1.0"))
    lane = make_app(sql)
    token, _ = access.create_token("alice", projects=["secret-pkg"])
    wrong = token[:-4] + "abcd"
    apps = (lane.app, plain.app)
    cases = [
        ("/simple/", _auth("__token__", token), 200, True),
        ("/simple/secret-pkg/", _auth("__token__", token), 200, True),
        (f"/packages/secret-pkg/{SECRET}", _auth("__token__", token), 200, True),
        (f"/packages/secret-pkg/{SECRET}.metadata", _auth("__token__", token), 200, True),
        ("/simple/other-pkg/", _auth("__token__", token), 403, False),
        ("/simple/secret-pkg/", _auth("__token__", wrong), 401, False),
    ]
    for path, headers, status, served in cases:
        for attempt in ("cold", "warm"):
            got, _, lane_served = both(apps, path, headers=headers)
            assert int(got[:3]) == status, (path, got)
        assert lane_served == served, path
