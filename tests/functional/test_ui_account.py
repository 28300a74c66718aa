"""The account page of the web UI: a user changes their own password and keeps their own
API tokens (SPEC section 8), without an admin."""

from __future__ import annotations

import html
import re

import pytest

from .helpers import HASHES, PASSWORDS, auth_headers, make_wheel, upload
from .test_admin_ui import SECRET, csrf_of, login, post_form

ALICE_WHEEL = make_wheel("alice-pkg", "1.0")


@pytest.fixture
def sql_ui(make_app):
    app = make_app({"session.secret": SECRET, "pypi.auth": "sql"})
    access = app.app.registry.service.access
    for name in ("admin", "alice", "bob"):
        access.create_user(name, HASHES[name], admin=name == "admin")
    access.set_grant("alice-pkg", "user", "alice", "rw")
    return app


def access_of(app):
    return app.app.registry.service.access


def follow(app, response) -> str:
    assert response.status_int == 303, (response.status, response.text[:300])
    return html.unescape(app.get(response.location).text)


def change_password(app, current: str, new: str, repeat: str | None = None):
    return post_form(
        app,
        "/admin/do/change-password",
        {"current": current, "password": new, "repeat": new if repeat is None else repeat},
        page="/admin/account/",
    )


# ---------------------------------------------------------------------------
# Password
# ---------------------------------------------------------------------------
def test_a_user_changes_their_own_password(sql_ui):
    login(sql_ui, "alice")
    page = sql_ui.get("/admin/account/")
    assert "Your account: alice" in page.text and 'name="current"' in page.text
    response = change_password(sql_ui, PASSWORDS["alice"], "a-new-long-password")
    assert response.location.endswith("/admin/account/")
    assert "Your password was changed" in follow(sql_ui, response)
    # The new password works at once for tools, the old one no longer does.
    assert sql_ui.get("/simple/", headers=auth_headers("alice", "a-new-long-password")).status_int == 200
    # A wrong password counts as none (1.x, issue 10): the login is what is checked.
    access = sql_ui.app.registry.service.access
    assert access.authenticate("alice", "a-new-long-password") is not None
    assert access.authenticate("alice", PASSWORDS["alice"]) is None


@pytest.mark.parametrize(
    "current,new,repeat,reason",
    [
        ("wrong-password", "a-new-long-password", None, "current password is not right"),
        (PASSWORDS["alice"], "short", None, "at least 8 characters"),
        (PASSWORDS["alice"], "a-new-long-password", "another-long-password", "not the same"),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(sql_ui, current, new, repeat, reason):
    login(sql_ui, "alice")
    response = change_password(sql_ui, current, new, repeat)
    assert reason in follow(sql_ui, response)
    assert sql_ui.get("/simple/", headers=auth_headers("alice")).status_int == 200
    access = sql_ui.app.registry.service.access
    assert access.authenticate("alice", PASSWORDS["alice"]) is not None
    assert access.authenticate("alice", new) is None


def test_the_password_form_needs_its_csrf_token(sql_ui):
    login(sql_ui, "alice")
    response = sql_ui.post(
        "/admin/do/change-password",
        {"current": PASSWORDS["alice"], "password": "a-new-long-password", "repeat": "a-new-long-password"},
        expect_errors=True,
    )
    assert response.status_int == 403 and "CSRF" in response.text
    assert sql_ui.get("/simple/", headers=auth_headers("alice")).status_int == 200


def test_with_ini_users_the_account_page_says_to_ask_an_admin(make_app):
    app = make_app({"session.secret": SECRET})
    login(app, "alice")
    page = app.get("/admin/account/")
    assert "ask an admin" in page.text and 'name="current"' not in page.text
    response = change_password(app, PASSWORDS["alice"], "a-new-long-password")
    assert "read-only" in follow(app, response)


# ---------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------
def test_a_user_makes_uses_and_revokes_their_own_upload_token(sql_ui):
    login(sql_ui, "alice")
    token_page = sql_ui.get("/admin/account/")
    assert 'action="/admin/do/add-own-token"' in token_page.text
    assert 'name="username"' not in token_page.text  # one's own tokens only
    response = sql_ui.post(
        "/admin/do/add-own-token",
        {
            "csrf_token": csrf_of(token_page),
            "projects": "alice-pkg",
            "upload": "1",
            "expires_days": "30",
            "description": "CI",
            "current_password": PASSWORDS["alice"],
        },
    )
    # Post/redirect/get: the secret is on the account page the POST redirects to, once.
    assert response.status_int == 303 and response.location.endswith("/admin/account/")
    shown = sql_ui.get(response.location)
    secret = re.search(r'<div class="token">([^<]+)</div>', shown.text).group(1)
    assert "Token " in shown.text and "created for alice" in shown.text
    reloaded = sql_ui.get(response.location)
    assert secret not in reloaded.text and "created for alice" not in reloaded.text
    [info] = access_of(sql_ui).tokens("alice")
    assert info.projects == ("alice-pkg",) and info.upload and info.description == "CI"
    # The token publishes for alice, and does nothing she may not.
    assert upload(sql_ui, *ALICE_WHEEL, user="__token__", password=secret).status_int == 200
    refused = upload(sql_ui, *make_wheel("demo", "1.0"), user="__token__", password=secret)
    assert refused.status_int == 403
    # Revoked from the same page: the token stops working.
    response = post_form(
        sql_ui, "/admin/do/revoke-own-token", {"token_id": info.token_id}, page="/admin/account/"
    )
    assert f"Token {info.token_id} revoked" in follow(sql_ui, response)
    assert access_of(sql_ui).tokens("alice") == []
    again = upload(sql_ui, *make_wheel("alice-pkg", "1.1"), user="__token__", password=secret)
    assert again.status_int == 401


def test_nobody_revokes_or_sees_another_users_token(sql_ui):
    _, bobs = access_of(sql_ui).create_token("bob", description="bob's CI")
    login(sql_ui, "alice")
    assert bobs.token_id not in sql_ui.get("/admin/account/").text
    response = post_form(
        sql_ui, "/admin/do/revoke-own-token", {"token_id": bobs.token_id}, page="/admin/account/"
    )
    assert "You have no token" in follow(sql_ui, response)
    assert [t.token_id for t in access_of(sql_ui).tokens("bob")] == [bobs.token_id]


def test_a_user_cannot_make_a_token_for_somebody_else(sql_ui):
    """The account form ignores any user name sent with it; the admin form is for admins."""
    login(sql_ui, "alice")
    token = csrf_of(sql_ui.get("/admin/account/"))
    sql_ui.post(
        "/admin/do/add-own-token",
        {"csrf_token": token, "username": "bob", "current_password": PASSWORDS["alice"]},
    )
    assert access_of(sql_ui).tokens("bob") == []
    assert [t.username for t in access_of(sql_ui).tokens()] == ["alice"]
    response = sql_ui.post(
        "/admin/do/add-token", {"csrf_token": token, "username": "bob"}, expect_errors=True
    )
    assert response.status_int == 403
    assert access_of(sql_ui).tokens("bob") == []
