"""The access page's forms through the access manager: a grant with a bad kind or
permission is a clear 4xx with nothing stored, flash messages stay on the server."""

from __future__ import annotations

import html

import pytest

from .helpers import HASHES
from .test_admin_ui import SECRET, login, post_form


@pytest.fixture
def sql_ui(make_app):
    app = make_app({"session.secret": SECRET, "pypi.auth": "sql"})
    access = app.app.registry.service.access
    for name in ("admin", "alice"):
        access.create_user(name, HASHES[name], admin=name == "admin")
    return app


@pytest.mark.parametrize(
    "fields,reason",
    [
        ({"kind": "robot", "name": "alice", "permission": "rw"}, "Invalid grant kind 'robot'"),
        ({"kind": "user", "name": "alice", "permission": "admin"}, "Invalid permission 'admin'"),
        ({"kind": "user", "name": "", "permission": "r"}, "'name' is required"),
    ],
)
def test_a_bad_grant_is_refused_with_the_reason_and_nothing_is_stored(sql_ui, fields, reason):
    login(sql_ui)
    access = sql_ui.app.registry.service.access
    before = access.export_data().to_json()
    response = post_form(sql_ui, "/admin/do/grant", {"project": "demo", **fields}, page="/admin/access/")
    assert response.status_int == 303 and response.location.endswith("/admin/access/")
    assert reason in html.unescape(sql_ui.get(response.location).text)
    assert access.export_data().to_json() == before


def test_flash_messages_never_travel_in_the_cookie(sql_ui):
    login(sql_ui)
    long_name = "g" + "x" * 200
    response = post_form(sql_ui, "/admin/do/add-group", {"group": long_name}, page="/admin/access/")
    cookie = sql_ui.cookies["ppc_session"]
    assert long_name not in cookie and "added" not in cookie and len(cookie) < 400
    page = sql_ui.get(response.location).text
    assert f"Group {long_name} added" in page
    # Shown once: the next page has no message.
    assert f"Group {long_name} added" not in sql_ui.get("/admin/access/").text.split("<h1>")[0]
