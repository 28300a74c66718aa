"""pypicloud 1.x's sign-up tokens: ``GET /admin/token/<name>``, ``PUT /acct/tokenRegister``
and the page behind 1.x's token link (``/acct/login#/?token=...`` -> ``/acct/signup``)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from pypicloud.signup_tokens import SignupTokens

from .helpers import HASHES, assert_rejected, auth_headers, service
from .test_admin_ui import SECRET, csrf_of

KEY = "0123456789-signing-key-of-this-ini"
SETTINGS = {"session.secret": SECRET, "pypi.auth": "sql", "auth.signing_key": KEY}
NEW_PW = "carols-new-password"
FIXTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "v1" / "signup-tokens-1.3.12.json").read_text()
)


@pytest.fixture
def app(make_app):
    app = make_app(SETTINGS)
    access = service(app).access
    access.create_user("admin", HASHES["admin"], admin=True)
    access.create_user("bob", HASHES["bob"])
    return app


def users(app) -> list[str]:
    return sorted(service(app).access.export_data().users)


def token_for(app, name: str = "carol") -> dict:
    response = app.get(f"/admin/token/{name}", headers=auth_headers("admin"))
    assert response.status_int == 200
    return response.json


def spend(app, token: str, password: str = NEW_PW):
    body = json.dumps({"token": token, "password": password})
    return app.put("/acct/tokenRegister", body, content_type="application/json", expect_errors=True)


def test_admin_gets_a_1x_token_and_link(app):
    doc = token_for(app)
    assert set(doc) >= {"token", "token_url"}
    name, issued, signature = doc["token"].split(":")
    assert (
        name == "carol" and abs(int(issued) - time.time()) < 60 and re.fullmatch(r"[0-9a-f]{64}", signature)
    )
    # 1.x's link: its login page with the token after '#'.
    assert doc["token_url"].startswith("http://localhost/acct/login#/?token=")
    assert unquote(doc["token_url"].split("token=", 1)[1]) == doc["token"]
    assert doc["signup_url"].startswith("http://localhost/acct/signup?token=carol%3A")


def test_spending_the_token_makes_an_approved_user_with_a_session(app):
    token = token_for(app)["token"]
    response = spend(app, token)
    assert response.status_int == 200
    assert response.json == {"next": "http://localhost/admin/"}
    assert "ppc_session=" in response.headers["Set-Cookie"]
    assert app.get("/admin/account/").status_int == 200  # logged in by the session
    app.cookiejar.clear()
    # An approved account: Basic auth works at once, and it is not an admin.
    assert app.get("/simple/", headers=auth_headers("carol", NEW_PW)).status_int == 200
    assert "carol" in users(app)
    assert not service(app).access.is_admin("carol")
    assert service(app).access.pending_users() == []


def test_a_token_is_spent_once(app):
    token = token_for(app)["token"]
    assert spend(app, token).status_int == 200
    app.cookiejar.clear()
    again = spend(app, token, "another-password-1")
    assert_rejected(again, 409, "exists already")
    assert again.json["error"]
    # The first password still logs in; the second attempt changed nothing.
    assert app.get("/simple/", headers=auth_headers("carol", NEW_PW)).status_int == 200


@pytest.mark.parametrize(
    "mangle,reason",
    [
        (lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"), "not valid"),
        (lambda t: t.replace("carol", "admin2", 1), "not valid"),
        (lambda t: "", "not valid"),
    ],
    ids=["signature", "name", "empty"],
)
def test_forged_tokens_are_refused_and_create_nothing(app, mangle, reason):
    before = users(app)
    assert_rejected(spend(app, mangle(token_for(app)["token"])), 400, reason)
    assert users(app) == before


def test_expired_token_is_refused(app):
    old = SignupTokens(KEY, clock=lambda: time.time() - 8 * 24 * 3600).issue("carol")
    before = users(app)
    assert_rejected(spend(app, old), 400, "expired")
    assert users(app) == before


def test_token_expire_setting_is_honoured(make_app):
    app = make_app({**SETTINGS, "auth.token_expire": "60"})
    service(app).access.create_user("admin", HASHES["admin"], admin=True)
    stale = SignupTokens(KEY, 60, clock=lambda: time.time() - 120).issue("carol")
    assert_rejected(spend(app, stale), 400, "expired")
    fresh = SignupTokens(KEY, 60).issue("carol")
    assert spend(app, fresh).status_int == 200


def test_a_token_1x_made_for_the_same_key_works(make_app):
    """A link an admin sent before the switch: 1.3.12's own token, within its lifetime."""
    app = make_app({**SETTINGS, "auth.signing_key": FIXTURE["signing_key"], "auth.token_expire": "999999999"})
    token = FIXTURE["tokens"]["alice"]
    assert spend(app, token).status_int == 200
    assert "alice" in users(app)


def test_short_password_is_refused_and_creates_nothing(app):
    before = users(app)
    assert_rejected(spend(app, token_for(app)["token"], "short"), 400, "at least")
    assert users(app) == before


def test_only_admins_make_tokens(app):
    assert_rejected(app.get("/admin/token/carol", expect_errors=True), 401, "login required")
    assert_rejected(
        app.get("/admin/token/carol", headers=auth_headers("bob"), expect_errors=True), 403, "may not"
    )


def test_without_a_signing_key_tokens_are_refused(make_app):
    app = make_app({"session.secret": SECRET, "pypi.auth": "sql"})
    service(app).access.create_user("admin", HASHES["admin"], admin=True)
    assert_rejected(
        app.get("/admin/token/carol", headers=auth_headers("admin"), expect_errors=True),
        403,
        "auth.signing_key",
    )
    forged = SignupTokens("any key").issue("carol")
    assert_rejected(spend(app, forged), 400, "not valid")
    assert "carol" not in users(app)


def test_the_ini_backend_cannot_take_token_sign_ups(make_app):
    app = make_app({"session.secret": SECRET, "auth.signing_key": KEY})
    assert_rejected(
        app.get("/admin/token/carol", headers=auth_headers("admin"), expect_errors=True), 403, "read-only"
    )
    assert_rejected(spend(app, SignupTokens(KEY).issue("carol")), 403, "read-only")


def test_the_signup_page_sets_a_password_and_logs_in(app):
    doc = token_for(app)
    page = app.get(doc["signup_url"].replace("http://localhost", ""))
    assert page.status_int == 200
    assert "carol" in page.text
    response = app.post(
        "/acct/signup",
        {"csrf_token": csrf_of(page), "token": doc["token"], "password": NEW_PW, "repeat": NEW_PW},
    )
    assert response.status_int == 303
    assert response.location.endswith("/admin/")
    assert "Welcome, carol" in response.follow().maybe_follow().text
    assert "carol" in users(app)


def test_the_signup_page_refuses_mismatched_passwords_and_bad_tokens(app):
    doc = token_for(app)
    page = app.get("/acct/signup", {"token": doc["token"]})
    fields = {"csrf_token": csrf_of(page), "token": doc["token"], "password": NEW_PW, "repeat": NEW_PW + "x"}
    mismatch = app.post("/acct/signup", fields, expect_errors=True)
    assert mismatch.status_int == 400 and "not the same" in mismatch.text
    bad = app.get("/acct/signup", {"token": "carol:1:abc"}, expect_errors=True)
    assert bad.status_int == 400 and "not valid" in bad.text and 'name="password"' not in bad.text
    assert "carol" not in users(app)


def test_the_login_page_forwards_1x_token_links(app):
    """1.x's link lands on /login (the fragment survives the redirect); its script
    moves a token link to the sign-up page."""
    assert app.get("/acct/login").location.endswith("/login")
    page = app.get("/login")
    assert 'src="/acct/signup.js" data-signup="/acct/signup"' in page.text
    script = app.get("/acct/signup.js")
    assert script.content_type == "text/javascript"
    assert "location.replace" in script.text and "token=" in script.text
