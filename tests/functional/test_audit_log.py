"""The audit log end to end: changes made over HTTP appear on /admin/audit/ and in
/admin/audit.jsonl with who made them and from which address; the filters work;
refused reads get 401/403/400 and change nothing."""

from __future__ import annotations

import json
import re

import pytest

from tests.builders import make_wheel
from tests.functional.helpers import HASHES, basic, service, upload_dist
from tests.functional.test_admin_ui import SECRET, login, post_form

PROXY = {"X-Forwarded-For": "198.51.100.7"}


@pytest.fixture
def app(make_app):
    """The database access backend (users can be created), admin, alice and bob in it."""
    app = make_app({"session.secret": SECRET, "pypi.auth": "sql"})
    access = service(app).access
    for name in ("admin", "alice", "bob"):
        access.create_user(name, HASHES[name], admin=name == "admin")
    return app


def export(app, user: str = "admin", status: int = 200, **params) -> list[dict]:
    response = app.get("/admin/audit.jsonl", params=params, headers=basic(user), status=status)
    if status != 200:
        return []
    assert response.content_type == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def actions(lines: list[dict]) -> list[str]:
    return [line["action"] for line in lines]


def rows(page) -> list[str]:
    """The actions of the page's table, top to bottom."""
    return re.findall(r"<td><code>([^<]+)</code></td>", page.text)


def make_changes(app) -> str:
    """An upload, a yank, a delete, a user created and a grant set, each through HTTP."""
    filename, data = make_wheel("demo", "1.0")
    upload_dist(app, (filename, data), headers=PROXY)
    app.post(f"/api/package/demo/{filename}/yank", params={"reason": "broken"}, headers=basic("admin"))
    app.delete(f"/api/package/demo/{filename}", headers={**basic("admin"), **PROXY})
    app.put("/admin/user/carol", params={"password": "carol-secret"}, headers={**basic("admin"), **PROXY})
    app.put("/admin/package/Demo/user/carol/write", headers={**basic("admin"), **PROXY})
    return filename


def test_changes_appear_in_the_export_with_actor_and_address(app):
    filename = make_changes(app)
    lines = export(app)
    assert actions(lines) == [
        "access.grant.set",
        "access.user.create",
        "file.delete",
        "file.yank",
        "file.upload",
    ]
    grant, user, delete, yank, upload = lines
    assert upload["actor"] == "admin" and upload["address"] == "198.51.100.7"
    assert (upload["project"], upload["version"], upload["filename"]) == ("demo", "1.0", filename)
    assert yank["detail"] == {"reason": "broken"}
    assert delete["address"] == "198.51.100.7"
    assert user["detail"] == {"user": "carol", "admin": False} and user["address"] == "198.51.100.7"
    assert grant["project"] == "demo"
    assert grant["detail"] == {"kind": "user", "name": "carol", "permission": "rw"}
    assert all(line["at"].endswith("Z") and len(line["id"]) == 32 for line in lines)
    # Never a secret: no password or hash anywhere in the log.
    assert "carol-secret" not in json.dumps(lines) and "$" not in json.dumps(lines)


def test_changes_appear_on_the_admin_page(app):
    filename = make_changes(app)
    login(app)
    page = app.get("/admin/audit/")
    text = page.text
    for shown in ("file.upload", "file.yank", "file.delete", "access.user.create", "access.grant.set"):
        assert shown in text
    assert filename in text and "198.51.100.7" in text and "reason: broken" in text
    assert "admin: false" in text  # values other than text as JSON
    assert 'href="/admin/audit/"' in app.get("/admin/").text  # in the navigation


def test_filters_on_the_page_and_in_the_export(app):
    make_changes(app)
    assert actions(export(app, action="file.")) == ["file.delete", "file.yank", "file.upload"]
    assert actions(export(app, action="access.user.create")) == ["access.user.create"]
    assert actions(export(app, project="Demo")) == [
        "access.grant.set",
        "file.delete",
        "file.yank",
        "file.upload",
    ]
    assert export(app, actor="bob") == []
    assert len(export(app, **{"from": "2000-01-01", "to": "2999-12-31"})) == 5
    assert export(app, to="2000-01-01") == []
    assert len(export(app, limit="2")) == 2
    login(app)
    text = app.get("/admin/audit/", params={"action": "access."}).text
    assert "<code>access.user.create</code>" in text and "<code>file.upload</code>" not in text
    assert 'value="access."' in text  # the form shows the filter again


def test_paging_newest_first(app, monkeypatch):
    from pypicloud import audit

    monkeypatch.setattr(audit, "PAGE_SIZE", 2)
    make_changes(app)
    login(app)
    first = app.get("/admin/audit/")
    assert rows(first) == ["access.grant.set", "access.user.create"]
    older = first.click(description="Older")
    assert rows(older) == ["file.delete", "file.yank"]
    last = older.click(description="Older")
    assert rows(last) == ["file.upload"] and "Older" not in last.text
    assert rows(last.click(description="Newest")) == rows(first)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"action": "File Upload!"}, "'action' must be"),
        ({"from": "yesterday"}, "'from' must be a date"),
        ({"from": "2025-03-02", "to": "2025-03-01"}, "'from' must be before 'to'"),
        ({"before": "not-an-id"}, "'before' must be an event id"),
        ({"limit": "0"}, "'limit' must be"),
    ],
)
def test_bad_filters_are_a_clear_400(app, params, message):
    make_changes(app)
    before = export(app)
    for path in ("/admin/audit/", "/admin/audit.jsonl"):
        response = app.get(path, params=params, headers=basic("admin"), status=400)
        assert message in response.text
    assert export(app) == before


def test_only_admins_read_the_log(app):
    make_changes(app)
    before = export(app)
    # A browser without a session goes to the login page; a script gets 401.
    response = app.get("/admin/audit/", status=302)
    assert "/login" in response.location
    app.get("/admin/audit.jsonl", status=401)
    app.get("/admin/audit/", headers=basic("alice"), status=403)
    app.get("/admin/audit.jsonl", headers=basic("alice"), status=403)
    app.get("/admin/audit.jsonl", headers=basic("admin", "wrong"), status=401)
    assert export(app) == before  # reading (or failing to) records nothing


def test_refused_changes_are_not_recorded(app):
    filename, data = make_wheel("demo", "1.0")
    upload_dist(app, (filename, data), user="bob", status=403)
    app.put("/admin/user/dave", params={"password": "x"}, headers=basic("alice"), status=403)
    app.put("/admin/user/alice", params={"password": "x"}, headers=basic("admin"), status=409)
    assert export(app) == []


def test_ui_access_changes_and_tokens_are_recorded(app):
    login(app)
    page = "/admin/access/"
    post_form(app, "/admin/do/add-group", {"group": "dev"}, page=page)
    post_form(app, "/admin/do/add-member", {"group": "dev", "username": "bob"}, page=page)
    post_form(app, "/admin/do/set-admin", {"username": "bob", "admin": "1"}, page=page)
    post_form(app, "/admin/do/set-password", {"username": "bob", "password": "new-pw-123"}, page=page)
    post_form(
        app,
        "/admin/do/add-token",
        {"username": "alice", "current_password": "admin-secret", "upload": "1", "projects": "demo"},
        page=page,
    )
    post_form(app, "/admin/do/revoke", {"project": "demo", "kind": "group", "name": "dev"}, page=page)
    lines = export(app)
    assert actions(lines) == [
        "token.create",
        "access.user.password",
        "access.user.admin",
        "access.member.add",
        "access.group.create",
    ]
    token = lines[0]["detail"]
    assert token["user"] == "alice" and token["projects"] == ["demo"] and token["upload"] is True
    assert len(token["token_id"]) > 0 and "secret" not in token
    # Revoking a grant nobody had is no change: nothing recorded for it.
    assert all(line["actor"] == "admin" for line in lines)
