"""Self-registration with admin approval (pypi.allow_register; issue 15 item 8).

A sign-up (``PUT /api/user/<name>`` as in pypicloud 1.x, or the web UI's
``/register`` page) creates a pending user who cannot log in until an admin
approves it (``POST /admin/user/<name>/approve`` or the access page); rejecting
it (``DELETE /admin/user/<name>`` or the access page) leaves nothing. Off by
default; only the database access backend keeps pending users.
"""

from __future__ import annotations

import gzip
import json

import pytest

from pypicloud import access_admin

from .helpers import HASHES, PASSWORDS, assert_rejected, auth_headers, restart, service
from .test_admin_ui import SECRET, csrf_of, login, post_form

ON = {"session.secret": SECRET, "pypi.auth": "sql", "pypi.allow_register": "true"}
OFF = {"session.secret": SECRET, "pypi.auth": "sql"}
EVE_PW = "eve-secret-pw"


def with_users(app):
    access = service(app).access
    for name in ("admin", "alice"):
        access.create_user(name, HASHES[name], admin=name == "admin")
    return app


def state(app) -> tuple:
    access = service(app).access
    return sorted(access.export_data().users), access.pending_users()


def sign_up(app, name: str = "eve", password: str = EVE_PW, **kw):
    return app.put(f"/api/user/{name}/", params={"password": password}, expect_errors=True, **kw)


def can_log_in(app, name: str, password: str) -> bool:
    response = login(app, name, password)
    app.cookiejar.clear()
    if response.status_int == 401:
        assert "Wrong user name or password" in response.text
        return False
    assert response.status_int == 303, response.text
    return True


def test_off_by_default_refuses_sign_ups_and_stores_nothing(make_app):
    app = with_users(make_app(OFF))
    before = state(app)
    assert_rejected(sign_up(app), 403, "self-registration")
    json_body = app.put(
        "/api/user/eve", json.dumps({"password": EVE_PW}), content_type="application/json", expect_errors=True
    )
    assert_rejected(json_body, 403, "self-registration")
    assert app.get("/register", expect_errors=True).status_int == 403
    assert "Sign up" not in app.get("/login").text
    assert state(app) == before == (["admin", "alice"], [])
    assert app.get("/admin/pending_users", headers=auth_headers("admin")).json == []


def test_other_backends_never_take_sign_ups(make_app):
    app = make_app({"pypi.allow_register": "true"})  # the ini backend
    assert_rejected(sign_up(app), 403, "self-registration")
    assert not service(app).access.user_exists("eve")
    refused = app.post(
        "/admin/register", {"allow": "true"}, headers=auth_headers("admin"), expect_errors=True
    )
    assert_rejected(refused, 403, "pypi.auth = sql")


def test_sign_up_waits_for_approval_then_logs_in_with_its_password(make_app):
    app = with_users(make_app(ON))
    response = sign_up(app)
    assert response.status_int == 200
    assert response.json["pending"] is True and "admin must approve" in response.json["message"]
    assert state(app) == (["admin", "alice"], ["eve"])
    # Pending: no login anywhere with the sign-up's own password.
    assert not can_log_in(app, "eve", EVE_PW)
    assert (
        app.post("/acct/login", {"username": "eve", "password": EVE_PW}, expect_errors=True).status_int == 403
    )
    assert (
        app.post(
            "/api/user/password",
            {"old_password": EVE_PW, "new_password": "x" * 9},
            headers=auth_headers("eve", EVE_PW),
            expect_errors=True,
        ).status_int
        == 401
    )
    admin = auth_headers("admin")
    assert app.get("/admin/pending_users/", headers=admin).json == ["eve"]
    acl = json.loads(gzip.decompress(app.get("/admin/acl.json.gz", headers=admin).body))
    assert acl["allow_register"] is True
    assert [u["username"] for u in acl["pending_users"]] == ["eve"]
    assert "eve" not in [u["username"] for u in acl["users"]]

    approved = app.post("/admin/user/eve/approve", headers=admin)
    assert approved.json["approved"] is True
    assert state(app) == (["admin", "alice", "eve"], [])
    assert can_log_in(app, "eve", EVE_PW)
    assert not service(app).access.is_admin("eve")


def test_reject_removes_the_sign_up(make_app):
    app = with_users(make_app(ON))
    sign_up(app)
    assert app.delete("/admin/user/eve/", headers=auth_headers("admin")).json == {"deleted": "eve"}
    assert state(app) == (["admin", "alice"], [])
    assert not can_log_in(app, "eve", EVE_PW)
    # The name is free again.
    assert sign_up(app).status_int == 200


def test_taken_names_and_bad_input_are_refused_and_store_nothing(make_app, monkeypatch):
    app = with_users(make_app(ON))
    sign_up(app)
    before = state(app)
    assert_rejected(sign_up(app, "eve", "another-password"), 409, "eve")
    assert_rejected(sign_up(app, "alice"), 409, "alice")
    assert_rejected(sign_up(app, "admin"), 409, "admin")
    assert_rejected(sign_up(app, "mallory", "short"), 400, "at least 8")
    assert_rejected(sign_up(app, "m" * 101), 400, "at most 100")
    assert_rejected(sign_up(app, "__token__"), 400, "reserved")
    assert_rejected(app.put("/api/user/mallory/", expect_errors=True), 400, "at least 8")
    assert state(app) == before
    # The queue is capped: a flood of sign-ups fills nothing.
    monkeypatch.setattr(access_admin, "MAX_PENDING_USERS", 2)
    assert sign_up(app, "frank").status_int == 200
    assert_rejected(sign_up(app, "grace"), 429, "waiting")
    assert state(app) == (["admin", "alice"], ["eve", "frank"])
    # The old password of alice still works: a 409 changed nobody.
    assert can_log_in(app, "alice", PASSWORDS["alice"])


@pytest.mark.parametrize("who,status", [(None, 401), ("alice", 403)])
def test_only_admins_list_approve_or_reject(make_app, who, status):
    app = with_users(make_app(ON))
    sign_up(app)
    before = state(app)
    headers = auth_headers(who)
    for method, path in [
        ("GET", "/admin/pending_users"),
        ("POST", "/admin/user/eve/approve"),
        ("DELETE", "/admin/user/eve/"),
        ("POST", "/admin/register"),
    ]:
        response = app.request(path, method=method, headers=headers, expect_errors=True)
        assert response.status_int == status, (method, path, response.text)
    assert state(app) == before
    # Nor through the web UI's forms.
    if who:
        login(app, who)
        for action in ("approve-user", "reject-user"):
            response = post_form(app, f"/admin/do/{action}", {"username": "eve"}, page="/admin/account/")
            assert response.status_int == 403
        app.cookiejar.clear()
    assert state(app) == before
    assert not can_log_in(app, "eve", EVE_PW)


def test_admin_switches_registration_at_run_time_and_it_persists(make_app):
    app = with_users(make_app(OFF))
    admin = auth_headers("admin")
    assert app.post("/admin/register/", {"allow": "true"}, headers=admin).json == {"allow_register": True}
    assert sign_up(app).status_int == 200
    app = restart(app)
    assert "Sign up" in app.get("/login").text  # kept in the database, not in memory
    app.post("/admin/register", json.dumps({"allow": False}), content_type="application/json", headers=admin)
    assert_rejected(sign_up(app, "frank"), 403, "self-registration")
    assert state(app) == (["admin", "alice"], ["eve"])


# ---------------------------------------------------------------------------
# The web UI
# ---------------------------------------------------------------------------
def test_sign_up_page_then_admin_approves_and_rejects_in_the_ui(make_app):
    app = with_users(make_app(ON))
    login_page = app.get("/login")
    assert 'href="/register"' in login_page.text
    page = app.get("/register")
    assert "An admin must approve" in page.text
    # Without the CSRF token: refused, nothing stored.
    refused = app.post(
        "/register", {"username": "eve", "password": EVE_PW, "repeat": EVE_PW}, expect_errors=True
    )
    assert refused.status_int == 403
    assert state(app) == (["admin", "alice"], [])
    page = app.get("/register")  # the refusal renewed the session's token
    mismatch = app.post(
        "/register",
        {"username": "eve", "password": EVE_PW, "repeat": "other", "csrf_token": csrf_of(page)},
        expect_errors=True,
    )
    assert mismatch.status_int == 400 and "not the same" in mismatch.text
    assert state(app) == (["admin", "alice"], [])
    done = app.post(
        "/register", {"username": "eve", "password": EVE_PW, "repeat": EVE_PW, "csrf_token": csrf_of(page)}
    )
    assert done.status_int == 303 and done.location.endswith("/login")  # post/redirect/get
    assert "an admin must approve" in app.get(done.location).text.lower()
    taken = app.post(
        "/register",
        {
            "username": "eve",
            "password": EVE_PW,
            "repeat": EVE_PW,
            "csrf_token": csrf_of(app.get("/register")),
        },
        expect_errors=True,
    )
    assert taken.status_int == 409 and "waits for approval" in taken.text
    page = app.get("/register")
    app.post(
        "/register", {"username": "frank", "password": EVE_PW, "repeat": EVE_PW, "csrf_token": csrf_of(page)}
    )
    assert state(app) == (["admin", "alice"], ["eve", "frank"])
    assert not can_log_in(app, "eve", EVE_PW)

    login(app)
    access_page = app.get("/admin/access/").text
    assert "Pending sign-ups" in access_page and "Approve eve" in access_page
    approved = post_form(app, "/admin/do/approve-user", {"username": "eve"}, page="/admin/access/")
    assert approved.status_int == 303
    assert "approved" in app.get(approved.location).text
    rejected = post_form(app, "/admin/do/reject-user", {"username": "frank"}, page="/admin/access/")
    assert "rejected" in app.get(rejected.location).text
    assert "Approve frank" not in app.get("/admin/access/").text
    assert state(app) == (["admin", "alice", "eve"], [])
    # The access form without a token changes nothing.
    app.put("/api/user/grace/", {"password": EVE_PW})
    no_token = app.post("/admin/do/approve-user", {"username": "grace"}, expect_errors=True)
    assert no_token.status_int == 403
    assert state(app) == (["admin", "alice", "eve"], ["grace"])
    app.cookiejar.clear()
    assert can_log_in(app, "eve", EVE_PW)
    assert not can_log_in(app, "frank", EVE_PW)


def test_admin_turns_sign_ups_off_in_the_ui(make_app):
    app = with_users(make_app(ON))
    login(app)
    response = post_form(app, "/admin/do/allow-register", {"allow": "0"}, page="/admin/access/")
    assert "is now off" in app.get(response.location).text
    app.cookiejar.clear()
    assert "Sign up" not in app.get("/login").text
    assert app.get("/register", expect_errors=True).status_int == 403
    assert_rejected(sign_up(app), 403, "self-registration")
