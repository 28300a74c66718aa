"""The admin web UI through the real app: sessions, CSRF, pages and every form (SPEC sections 4, 8)."""

from __future__ import annotations

import re

import pytest

from .helpers import (
    HASHES,
    PASSWORDS,
    assert_nothing_left,
    auth_headers,
    make_wheel,
    simple_json,
    upload,
    upload_dist,
)

SECRET = "0123456789abcdef0123456789abcdef"
WHEEL = make_wheel("demo", "1.0")


def csrf_of(page) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def login(app, user: str = "admin", password: str | None = None, **extra):
    page = app.get("/login")
    if page.status_int == 302:  # already logged in: the form token is on every page
        page = app.get(page.location)
    form = {
        "username": user,
        "password": PASSWORDS.get(user, "") if password is None else password,
        "csrf_token": csrf_of(page),
        **extra,
    }
    return app.post("/login", form, expect_errors=True)


def post_form(app, path: str, fields: dict | None = None, page: str = "/admin/", **kw):
    token = csrf_of(app.get(page))
    return app.post(path, {"csrf_token": token, **(fields or {})}, expect_errors=True, **kw)


@pytest.fixture
def ui(make_app):
    return make_app({"session.secret": SECRET})


@pytest.fixture
def sql_ui(make_app, tmp_path):
    """The UI over the database access backend, with admin, alice and bob imported."""
    from pypicloud.access.sql import SQLAccess

    app = make_app({"session.secret": SECRET, "pypi.auth": "sql"})
    access = app.app.registry.service.access
    assert isinstance(access, SQLAccess)
    for name in ("admin", "alice", "bob"):
        access.create_user(name, HASHES[name], admin=name == "admin")
    return app


# ---------------------------------------------------------------------------
# Logging in and out
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/admin/projects/", "/admin/access/"])
def test_anonymous_visitors_are_sent_to_the_login_page(ui, path):
    if path == "/admin/projects/":  # the overview sends anonymous visitors to the list first
        assert ui.get("/admin/").location.endswith(path)
    response = ui.get(path)
    assert response.status_int == 302
    assert response.location.endswith("/login?next=" + path.replace("/", "%2F"))


def test_login_sets_a_hardened_session_cookie_and_logout_ends_it(ui):
    response = login(ui, next="/admin/projects/")
    assert response.status_int == 303
    assert response.location.endswith("/admin/projects/")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("ppc_session=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict"} <= flags and "secure" not in flags
    assert ui.get("/admin/").status_int == 200
    response = post_form(ui, "/logout")
    assert response.status_int == 303 and response.location.endswith("/login")
    assert ui.get("/admin/").status_int == 302


def test_secure_cookie_when_asked(make_app):
    app = make_app({"session.secret": SECRET, "session.secure": "true"})
    flags = {part.strip().lower() for part in login(app).headers["Set-Cookie"].split(";")[1:]}
    assert "secure" in flags


@pytest.mark.parametrize(
    "user,password,status,message",
    [
        ("admin", "wrong", 401, "Wrong user name or password"),
        ("nobody", "x", 401, "Wrong user name or password"),
        ("__token__", "x", 401, "Wrong user name or password"),
    ],
)
def test_failed_logins_leave_no_session(ui, user, password, status, message):
    response = login(ui, user, password)
    assert response.status_int == status
    assert message in response.text
    assert "WWW-Authenticate" not in response.headers  # no browser password dialog
    assert ui.get("/admin/").status_int == 302


def test_login_without_the_form_token_is_refused(ui):
    response = ui.post("/login", {"username": "admin", "password": PASSWORDS["admin"]}, expect_errors=True)
    assert response.status_int == 403 and "CSRF" in response.text
    assert ui.get("/admin/").status_int == 302


def test_login_never_redirects_off_site(ui):
    for target in ("https://evil.example/", "//evil.example/admin", "/simple/"):
        response = login(ui, next=target)
        assert response.location == "http://localhost/admin/"


def test_tampered_or_foreign_cookies_are_anonymous(ui, make_app, tmp_path):
    login(ui)
    good = ui.cookies["ppc_session"]
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    # Other processes: the same secret accepts the cookie, another secret does not,
    # and nobody accepts a changed one.
    same = make_app({"session.secret": SECRET}, base=tmp_path)
    other = make_app({"session.secret": "another-secret-of-32-characters!"}, base=tmp_path)
    changed = make_app({"session.secret": SECRET}, base=tmp_path)
    for app, value in ((same, good), (other, good), (changed, tampered)):
        app.set_cookie("ppc_session", value)
    assert same.get("/admin/").status_int == 200
    assert other.get("/admin/").status_int == 302
    assert changed.get("/admin/").status_int == 302


def test_the_session_is_never_a_credential_for_the_api(ui, tmp_path):
    upload_dist(ui, WHEEL)
    login(ui)
    # With default_read = authenticated, a session-only caller is anonymous here.
    assert simple_json(ui, user=None).json["projects"] == []
    response = upload(ui, *make_wheel("demo", "1.1"), user=None)
    assert response.status_int == 401
    assert ui.post("/admin/rebuild", expect_errors=True).status_int == 401


# ---------------------------------------------------------------------------
# CSRF and cross-site
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_forms_without_the_right_token_are_refused(ui, token):
    upload_dist(ui, WHEEL)
    login(ui)
    fields = {"project": "demo", "filename": WHEEL[0]}
    if token is not None:
        fields["csrf_token"] = token
    response = ui.post("/admin/do/delete-file", fields, expect_errors=True)
    assert response.status_int == 403 and "CSRF" in response.text
    assert ui.get(f"/api/package/demo/{WHEEL[0]}", headers=auth_headers("admin")).body == WHEEL[1]


def test_cross_site_post_with_a_valid_token_is_still_refused(ui):
    upload_dist(ui, WHEEL)
    login(ui)
    response = post_form(
        ui,
        "/admin/do/delete-file",
        {"project": "demo", "filename": WHEEL[0]},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_int == 403 and "Cross-site" in response.text
    assert ui.get(f"/api/package/demo/{WHEEL[0]}", headers=auth_headers("admin")).body == WHEEL[1]


# ---------------------------------------------------------------------------
# Pages and file actions
# ---------------------------------------------------------------------------
def test_overview_projects_and_files(ui):
    upload_dist(ui, WHEEL)
    upload_dist(ui, make_wheel("other-lib", "2.0"))
    login(ui)
    home = ui.get("/admin/")
    assert re.search(r"<th>Projects</th><td>2</td>", home.text)
    assert "Storage</th><td>FileStorage: ok" in home.text
    assert home.headers["Cache-Control"] == "no-store"
    assert home.headers["X-Frame-Options"] == "DENY"
    listing = ui.get("/admin/projects/?q=Other_Lib")
    assert "other-lib" in listing.text and ">demo<" not in listing.text
    page = ui.get("/admin/projects/Demo/")
    assert WHEEL[0] in page.text
    assert ui.get("/admin/projects/nope/", expect_errors=True).status_int == 404


def test_yank_unyank_and_delete_from_the_ui(ui, tmp_path):
    upload_dist(ui, WHEEL)
    login(ui)
    fields = {"project": "demo", "filename": WHEEL[0]}
    response = post_form(ui, "/admin/do/yank", {**fields, "reason": "broken build"})
    assert response.status_int == 303 and response.location.endswith("/admin/projects/demo/")
    assert "Yanked " + WHEEL[0] in ui.get(response.location).text
    entry = simple_json(ui, "/simple/demo/").json["files"][0]
    assert entry["yanked"] == "broken build"
    post_form(ui, "/admin/do/unyank", fields)
    assert simple_json(ui, "/simple/demo/").json["files"][0]["yanked"] is False
    response = post_form(ui, "/admin/do/delete-file", {**fields, "confirm": "1"})
    assert response.status_int == 303
    assert_nothing_left(ui, tmp_path, "demo", WHEEL[0])


def test_rebuild_from_the_ui(ui):
    upload_dist(ui, WHEEL)
    login(ui)
    response = post_form(ui, "/admin/do/rebuild")
    assert response.status_int == 303
    assert "Index rebuilt from storage: 1 files" in ui.get(response.location).text


def test_non_admin_with_basic_credentials_gets_403_on_admin_pages(ui):
    response = ui.get("/admin/access/", headers=auth_headers("alice"), expect_errors=True)
    assert response.status_int == 403


# ---------------------------------------------------------------------------
# Access pages
# ---------------------------------------------------------------------------
def test_ini_access_is_shown_read_only(ui):
    login(ui)
    page = ui.get("/admin/access/")
    assert "read-only" in page.text and "alice" in page.text
    response = post_form(ui, "/admin/do/add-user", {"username": "eve", "password": "pw"})
    assert response.status_int == 303
    page = ui.get(response.location)
    assert "read-only: edit the ini file" in page.text
    assert not ui.app.registry.service.access.user_exists("eve")


def test_managing_users_groups_and_grants(sql_ui):
    app = sql_ui
    login(app)
    access = app.app.registry.service.access
    page = "/admin/access/"
    assert (
        post_form(
            app, "/admin/do/add-user", {"username": "carol", "password": "carol-pw"}, page=page
        ).status_int
        == 303
    )
    post_form(app, "/admin/do/add-group", {"group": "dev"}, page=page)
    post_form(app, "/admin/do/add-member", {"group": "dev", "username": "carol"}, page=page)
    post_form(
        app,
        "/admin/do/grant",
        {"project": "Team.Lib", "kind": "group", "name": "dev", "permission": "rw"},
        page=page,
    )
    carol = access.authenticate("carol", "carol-pw")
    assert carol is not None and access.permission(carol, "team-lib") == "rw"
    text = app.get(page).text
    assert "carol" in text and "group dev" in text

    post_form(app, "/admin/do/set-password", {"username": "carol", "password": "new-pw"}, page=page)
    assert access.authenticate("carol", "carol-pw") is None
    post_form(app, "/admin/do/set-admin", {"username": "carol", "admin": "1"}, page=page)
    assert access.identity("carol").is_admin
    post_form(app, "/admin/do/revoke", {"project": "team-lib", "kind": "group", "name": "dev"}, page=page)
    post_form(app, "/admin/do/remove-member", {"group": "dev", "username": "carol"}, page=page)
    post_form(app, "/admin/do/delete-group", {"group": "dev"}, page=page)
    post_form(app, "/admin/do/delete-user", {"username": "carol"}, page=page)
    assert "carol" not in access.export_data().users and access.export_data().groups == {}


def test_refused_access_changes_show_the_reason_and_change_nothing(sql_ui):
    login(sql_ui)
    access = sql_ui.app.registry.service.access
    before = access.export_data().to_json()
    response = post_form(
        sql_ui,
        "/admin/do/add-user",
        {"username": "alice", "password": "x"},
        page="/admin/access/",
        headers={"Referer": "http://localhost/admin/access/"},
    )
    assert response.status_int == 303
    assert "exists already" in sql_ui.get(response.location).text
    response = post_form(
        sql_ui, "/admin/do/add-user", {"username": "", "password": "x"}, page="/admin/access/"
    )
    assert "required" in sql_ui.get(response.location).text
    assert access.export_data().to_json() == before


def test_tokens_from_the_ui(sql_ui):
    login(sql_ui)
    upload_dist(sql_ui, WHEEL)
    form = sql_ui.get("/admin/access/").text
    assert 'action="/admin/do/add-token"' in form and 'name="username" placeholder="user name"' in form
    page = post_form(
        sql_ui,
        "/admin/do/add-token",
        {
            "username": "bob",
            "projects": "demo",
            "upload": "1",
            "expires_days": "7",
            "description": "ci",
            "current_password": PASSWORDS["admin"],
        },
        page="/admin/access/",
    )
    # Post/redirect/get: the token is shown once on the page the POST redirects to.
    assert page.status_int == 303 and page.location.endswith("/admin/access/")
    page = sql_ui.get(page.location)
    token = re.search(r'<div class="token">(ppc_[^<]+)</div>', page.text).group(1)
    assert page.headers["Cache-Control"] == "no-store"
    assert sql_ui.get("/simple/demo/", headers=auth_headers("__token__", token)).status_int == 200
    assert token not in sql_ui.get("/admin/access/").text  # shown once
    assert len(sql_ui.app.registry.service.access.tokens("bob")) == 1  # reloading made no other
    token_id = token.split("_")[1]
    post_form(sql_ui, "/admin/do/delete-token", {"token_id": token_id}, page="/admin/access/")
    response = sql_ui.get("/simple/demo/", headers=auth_headers("__token__", token), expect_errors=True)
    assert response.status_int == 401
    bad = post_form(
        sql_ui,
        "/admin/do/add-token",
        {"username": "bob", "expires_days": "soon", "current_password": PASSWORDS["admin"]},
        page="/admin/access/",
    )
    assert bad.status_int == 303 and "must be a number" in sql_ui.get(bad.location).text
    huge = post_form(
        sql_ui,
        "/admin/do/add-token",
        {"username": "bob", "expires_days": "99999999", "current_password": PASSWORDS["admin"]},
        page="/admin/access/",
    )
    assert huge.status_int == 303 and "between 0 (never) and 3650" in sql_ui.get(huge.location).text
    assert sql_ui.app.registry.service.access.tokens("bob") == []


def test_a_deleted_admin_loses_the_session(sql_ui):
    login(sql_ui)
    access = sql_ui.app.registry.service.access
    access.create_user("root", HASHES["admin"], admin=True)
    other = sql_ui  # the same browser logs in as root
    login(other, "root", PASSWORDS["admin"])
    assert other.get("/admin/").status_int == 200
    access.delete_user("root")
    assert other.get("/admin/").status_int == 302


def test_a_short_session_secret_stops_start_up(make_app):
    from pypicloud.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        make_app({"session.secret": "short"})
    assert info.value.key == "session.secret"


def test_a_stale_login_form_is_shown_again_ready_to_use(ui):
    response = ui.post(
        "/login",
        {"username": "admin", "password": PASSWORDS["admin"], "csrf_token": "stale"},
        expect_errors=True,
    )
    assert response.status_int == 403 and "please log in again" in response.text
    retry = login(ui)  # the page it answered carries a fresh token that works
    assert retry.status_int == 303


def test_a_form_posted_after_the_session_expired_returns_to_its_page_after_login(ui):
    upload_dist(ui, WHEEL)
    response = ui.post(
        "/admin/do/yank",
        {"project": "demo", "filename": WHEEL[0]},
        headers={"Referer": "http://localhost/admin/projects/demo/"},
        expect_errors=True,
    )
    assert response.status_int == 302
    assert response.location.endswith("/login?next=%2Fadmin%2Fprojects%2Fdemo%2F")
    assert login(ui, next="/admin/projects/demo/").location.endswith("/admin/projects/demo/")


def test_the_last_admin_and_ini_admins_are_guarded(make_app):
    app = make_app({"session.secret": SECRET, "pypi.auth": "sql", "auth.admins": "root"})
    access = app.app.registry.service.access
    for name in ("admin", "root", "bob"):
        access.create_user(name, HASHES["admin" if name == "root" else name], admin=name == "admin")
    login(app)
    page = app.get("/admin/access/").text
    assert "yes (auth.admins in the ini)" in page
    # root is an admin through the ini: the database flag cannot take that away.
    response = post_form(
        app, "/admin/do/set-admin", {"username": "root", "admin": "0"}, page="/admin/access/"
    )
    assert "auth.admins in the ini" in app.get(response.location).text
    # Nobody demotes or deletes themselves from the UI.
    for action, fields in (
        ("set-admin", {"username": "admin", "admin": "0"}),
        ("delete-user", {"username": "admin"}),
    ):
        response = post_form(app, f"/admin/do/{action}", fields, page="/admin/access/")
        assert "yourself" in app.get(response.location).text
    assert access.is_admin("admin") and access.user_exists("admin")


def test_the_last_admin_cannot_be_removed_by_another_route(make_app):
    from pypicloud.access_admin import AccessAdmin, AdminGuard
    from pypicloud.models import Identity

    app = make_app({"session.secret": SECRET, "pypi.auth": "sql", "auth.admins": ""})
    access = app.app.registry.service.access
    access.create_user("admin", HASHES["admin"], admin=True)
    # A token-less identity acting as an admin it is not itself (e.g. a script).
    operator = Identity("ops", is_admin=True)
    with pytest.raises(AdminGuard, match="last admin"):
        AccessAdmin(access).delete_user(operator, "admin")
    with pytest.raises(AdminGuard, match="last admin"):
        AccessAdmin(access).set_admin(operator, "admin", False)
    access.create_user("second", HASHES["admin"], admin=True)
    AccessAdmin(access).set_admin(operator, "admin", False)
    assert not access.is_admin("admin") and access.is_admin("second")
