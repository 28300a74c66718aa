"""Item 4: web UI sessions can be ended server-side and have an absolute lifetime.

The review's attacks: a copied session cookie replayed after logout, after a
password change and after the user was deleted and re-created; a session kept
alive forever by use; a session alone minting a never-expiring token.
"""

from __future__ import annotations

import pytest

from pypicloud import sessions
from tests.functional.helpers import HASHES, PASSWORDS
from tests.functional.test_admin_ui import SECRET, login, post_form

ACCOUNT = "/admin/account/"


@pytest.fixture
def ui(make_app, tmp_path):
    app = make_app({"session.secret": SECRET, "pypi.auth": "sql", "session.lifetime": "3600"})
    access = app.app.registry.service.access
    for name in ("admin", "alice", "bob"):
        access.create_user(name, HASHES[name], admin=name == "admin")
    return app


def cookie(app) -> str:
    return app.cookies[sessions.COOKIE_NAME]


def logged_in_with(app, value: str) -> bool:
    """Replay a saved cookie in a fresh browser: is it a logged-in session?"""
    app.reset()
    app.set_cookie(sessions.COOKIE_NAME, value)
    response = app.get(ACCOUNT, expect_errors=True)
    return response.status_int == 200


def test_a_copied_cookie_dies_with_logout(ui):
    assert login(ui, "alice").status_int == 303
    stolen = cookie(ui)
    assert logged_in_with(ui, stolen)
    ui.reset()
    login(ui, "alice")
    other_device = cookie(ui)
    response = post_form(ui, "/logout", page=ACCOUNT)
    assert response.status_int == 303
    assert not logged_in_with(ui, stolen)
    assert not logged_in_with(ui, other_device)  # logout ends every session of the user
    # Logging in again works.
    ui.reset()
    assert login(ui, "alice").status_int == 303 and logged_in_with(ui, cookie(ui))


def test_a_password_change_ends_other_sessions(ui):
    login(ui, "alice")
    stolen = cookie(ui)
    ui.reset()
    login(ui, "alice")
    response = post_form(
        ui,
        "/admin/do/change-password",
        {"current": PASSWORDS["alice"], "password": "a-new-long-password", "repeat": "a-new-long-password"},
        page=ACCOUNT,
    )
    assert response.status_int == 303
    mine = cookie(ui)
    assert not logged_in_with(ui, stolen)
    assert logged_in_with(ui, mine)  # the session that changed it goes on


def test_a_password_set_outside_the_ui_ends_sessions(ui):
    """ppc-access (or another process) changes the hash: the cookie's stamp no longer matches."""
    login(ui, "alice")
    stolen = cookie(ui)
    ui.app.registry.service.access.set_password_hash("alice", HASHES["bob"])
    assert not logged_in_with(ui, stolen)


def test_a_deleted_and_recreated_user_does_not_inherit_sessions(ui):
    login(ui, "alice")
    stolen = cookie(ui)
    access = ui.app.registry.service.access
    access.delete_user("alice")
    access.create_user("alice", HASHES["alice"])  # even with the very same hash
    ui.reset()
    login(ui, "admin")
    post_form(ui, "/admin/do/delete-user", {"username": "alice"}, page="/admin/access/")
    access.create_user("alice", HASHES["alice"])
    assert not logged_in_with(ui, stolen)


def test_sessions_have_an_absolute_lifetime(ui, monkeypatch):
    login(ui, "alice")
    value = cookie(ui)
    assert logged_in_with(ui, value)
    real = sessions.time.time
    monkeypatch.setattr(sessions.time, "time", lambda: real() + 3601)
    assert not logged_in_with(ui, value)


def test_creating_a_token_asks_for_the_current_password(ui):
    login(ui, "alice")
    for fields in ({}, {"current_password": "wrong-password"}):
        response = post_form(
            ui, "/admin/do/add-own-token", {"expires_days": "0", "upload": "1", **fields}, page=ACCOUNT
        )
        # Post/redirect/get: refused, back to the form with the reason.
        assert response.status_int == 303, response.status
        assert "current password" in ui.get(response.location).text
    assert ui.app.registry.service.access.tokens("alice") == []
    response = post_form(
        ui,
        "/admin/do/add-own-token",
        {"expires_days": "0", "current_password": PASSWORDS["alice"]},
        page=ACCOUNT,
    )
    assert response.status_int == 303
    assert len(ui.app.registry.service.access.tokens("alice")) == 1
