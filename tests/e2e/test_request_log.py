"""Request logs of a real server installed from the wheel (issue 18, part 2).

With ``logging.format = json`` every request is one JSON object on the
``pypicloud.requests`` logger; the ``X-Request-ID`` a proxy sends is kept when it
is a plain token, answered back and written in the line, and replaced by a new
id when it is not.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import ok, twine_upload

pytestmark = pytest.mark.e2e


def request_lines(srv) -> list[dict]:
    marker = "[pypicloud.requests] "
    return [json.loads(line.split(marker, 1)[1]) for line in srv.stderr_text().splitlines() if marker in line]


def test_one_json_line_per_request_with_the_proxys_request_id(server_factory, dists, cenv):
    srv = server_factory({"logging.format": "json"})
    wheel, _ = dists.build("1.0")
    ok(twine_upload(srv, [wheel], cenv))

    status, headers, body = srv.request(
        "GET", "/simple/acme-widget/", user="alice", headers={"X-Request-ID": "proxy-req.42"}
    )
    assert status == 200 and headers.get("X-Request-ID") == "proxy-req.42"
    status, headers, _ = srv.request("GET", "/simple/acme-widget/", headers={"X-Request-ID": "not a token"})
    generated = headers.get("X-Request-ID")
    assert status == 401 and generated and generated != "not a token"

    lines = request_lines(srv)
    by_id = {line["request_id"]: line for line in lines}
    read = by_id["proxy-req.42"]
    assert (read["client"], read["user"], read["method"], read["route"], read["status"]) == (
        "127.0.0.1",
        "alice",
        "GET",
        "simple.project",
        200,
    )
    assert read["path"] == "/simple/acme-widget/" and read["bytes"] == len(body)
    assert read["time"].endswith("Z") and read["duration_ms"] >= 0
    refused = by_id[generated]
    assert (refused["status"], refused["user"]) == (401, "-")
    assert "not a token" not in srv.stderr_text()
    uploads = [line for line in lines if line["method"] == "POST"]
    assert [(u["user"], u["status"]) for u in uploads] == [("admin", 200)]
