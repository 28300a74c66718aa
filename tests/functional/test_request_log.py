"""One log line per request with a request id, returned as X-Request-ID and set on every log
record of the request; client-chosen text cannot forge a line."""

from __future__ import annotations

import json
import logging

import pytest

from pypicloud.errors import ConfigError

from .helpers import auth_headers, make_wheel, upload_dist


def lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pypicloud.requests"]


def test_each_request_gets_an_id_and_one_access_line(make_app, caplog):
    app = make_app()
    upload_dist(app, make_wheel("demo", "1.0"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pypicloud.requests"):
        response = app.get("/simple/demo/", headers=auth_headers("alice"))
    rid = response.headers["X-Request-ID"]
    assert len(rid) == 32
    (record,) = lines(caplog)
    text = record.getMessage()
    assert '"GET /simple/demo/" 200' in text and "alice" in text
    assert f"id={rid}" in text and "route=simple.project" in text
    assert record.request_id == rid


def test_the_proxys_request_id_is_kept_and_a_strange_one_replaced(make_app):
    app = make_app()
    assert (
        app.get("/health", headers={"X-Request-ID": "abc-123.x_Y"}).headers["X-Request-ID"] == "abc-123.x_Y"
    )
    forged = app.get("/health", headers={"X-Request-ID": "bad id\r\nX: y"})
    assert forged.headers["X-Request-ID"] != "bad id" and " " not in forged.headers["X-Request-ID"]


def test_every_log_record_of_the_request_carries_its_id(make_app, caplog):
    app = make_app()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = app.get("/simple/demo/", headers=auth_headers("alice", "wrong"), expect_errors=True)
    rid = response.headers["X-Request-ID"]
    during = [r for r in caplog.records if r.name.startswith("pypicloud")]
    assert during and all(r.request_id == rid for r in during)
    outside = logging.getLogger("pypicloud.test").makeRecord("x", logging.INFO, "f", 1, "m", (), None)
    assert outside.request_id == "-"


def test_json_lines_and_control_characters_never_split_a_line(make_app, caplog):
    app = make_app({"logging.format": "json"})
    with caplog.at_level(logging.INFO, logger="pypicloud.requests"):
        app.get("/simple/x%0d%0aFAKE%20200/", expect_errors=True)
    (record,) = lines(caplog)
    text = record.getMessage()
    assert "\n" not in text and "\r" not in text
    entry = json.loads(text)
    # The path is logged as sent, percent-encoded: a CR/LF in it is text, never a line break.
    assert entry["path"] == "/simple/x%0D%0AFAKE%20200/" and entry["status"] in (301, 404)
    assert set(entry) >= {"time", "request_id", "client", "user", "route", "status", "bytes", "duration_ms"}


def test_text_lines_escape_control_characters_in_user_names(make_app, caplog):
    app = make_app()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pypicloud.requests"):
        app.get("/simple/", headers=auth_headers("eve\r\nforged", "pw"), expect_errors=True)
        app.get("/simple/x%0d%0aFAKE/", expect_errors=True)
    for record in lines(caplog):
        assert "\n" not in record.getMessage() and "\r" not in record.getMessage()


def test_an_unknown_log_format_stops_start_up(make_app):
    with pytest.raises(ConfigError, match="logging.format"):
        make_app({"logging.format": "xml"})
