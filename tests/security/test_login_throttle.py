"""Items 3 and 6: password guessing is throttled, the hash cannot be used to burn CPU,
old hashes are upgraded, unknown users cost what known ones do.

The review's attacks: 60 wrong guesses and then the right one were all
answered normally; a 4 KB password against a pypicloud 1.x ``sha512_crypt``
hash cost seconds of CPU; unknown user names answered faster than known ones.
"""

from __future__ import annotations

import io
import logging

import pytest
from passlib.hash import sha512_crypt

from pypicloud.access import passwords
from pypicloud.models import Identity
from tests.functional.helpers import PASSWORDS, auth_headers, make_wheel
from tests.functional.test_admin_ui import SECRET, csrf_of

from .helpers import sql_app

# A page anonymous callers may not read: wrong credentials there answer 401 (on a read
# anonymous callers may do they count as none, as in pypicloud 1.x, and the page answers).
PAGE = "/simple/demo/"


def _with_project(app) -> None:
    service = app.app.registry.service
    if not service.index.files("demo"):
        name, data = make_wheel("demo", "1.0")
        service.upload_file(Identity("admin", is_admin=True), name, io.BytesIO(data))


def get(app, user, password, address="192.0.2.10"):
    _with_project(app)
    return app.get(
        PAGE, headers=auth_headers(user, password), expect_errors=True, extra_environ={"REMOTE_ADDR": address}
    )


def test_wrong_basic_passwords_are_throttled_per_user(make_app):
    app = make_app({"auth.throttle_user": "5", "auth.throttle_address": "0"})
    for i in range(5):
        assert get(app, "alice", f"guess-{i}", address=f"192.0.2.{i}").status_int == 401
    # The right password from yet another address: still refused while throttled.
    response = get(app, "alice", PASSWORDS["alice"], address="192.0.2.99")
    assert response.status_int == 429, response.status
    assert int(response.headers["Retry-After"]) > 0
    # Other users are not affected.
    assert get(app, "bob", PASSWORDS["bob"]).status_int == 200


def test_wrong_passwords_are_throttled_per_address(make_app):
    app = make_app({"auth.throttle_user": "0", "auth.throttle_address": "4"})
    for user in ("alice", "bob", "nosuchuser", "__token__"):
        assert get(app, user, "wrong-password").status_int == 401
    assert get(app, "admin", PASSWORDS["admin"]).status_int == 429
    # Another client is not affected.
    assert get(app, "admin", PASSWORDS["admin"], address="198.51.100.7").status_int == 200


def test_web_login_is_throttled(make_app):
    app = make_app({"session.secret": SECRET, "auth.throttle_user": "3"})
    environ = {"REMOTE_ADDR": "192.0.2.20"}
    statuses = []
    for password in ("a", "b", "c", PASSWORDS["alice"]):
        token = csrf_of(app.get("/login", extra_environ=environ))
        response = app.post(
            "/login",
            {"username": "alice", "password": password, "csrf_token": token},
            expect_errors=True,
            extra_environ=environ,
        )
        statuses.append(response.status_int)
    assert statuses == [401, 401, 401, 429]
    assert "Retry-After" in response.headers


def test_overlong_passwords_are_refused_without_hashing(make_app, monkeypatch):
    long_password = "p" * 2000
    app = make_app({"user.longpw": passwords.hash_password(long_password, "sha512_crypt")})
    hashed = []
    real = passwords.CONTEXT.verify
    monkeypatch.setattr(
        passwords.CONTEXT, "verify", lambda secret, h, **kw: hashed.append(h) or real(secret, h, **kw)
    )
    assert get(app, "longpw", long_password).status_int == 401
    assert get(app, "alice", "x" * 4096).status_int == 401
    assert hashed == []  # no hash was run for either


def test_an_old_hash_is_upgraded_on_login_sql(make_app, tmp_path):
    app = sql_app(make_app, tmp_path)
    access = app.app.registry.service.access
    old = sha512_crypt.using(rounds=5000).hash("legacy-password")
    access.create_user("legacy", old)
    assert get(app, "legacy", "legacy-password").status_int == 200
    stored = access.export_data().users["legacy"]["password_hash"]
    assert stored.startswith("$argon2id$") and not passwords.needs_rehash(stored)
    access.forget_credentials()
    assert get(app, "legacy", "legacy-password").status_int == 200


def test_an_old_hash_in_the_ini_is_reported(make_app, caplog):
    app = make_app({"user.legacy": sha512_crypt.using(rounds=5000).hash("legacy-password")})
    with caplog.at_level(logging.WARNING):
        assert get(app, "legacy", "legacy-password").status_int == 200
    assert any(
        "user.legacy" in r.getMessage() and "ppc-gen-password" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize("backend", ["config", "sql"])
def test_unknown_users_are_checked_against_a_hash_like_the_users(make_app, tmp_path, monkeypatch, backend):
    """Item 6: the work for an unknown name is the work for a known one (same scheme, same cost)."""
    legacy = sha512_crypt.using(rounds=20000)
    users = {name: legacy.hash(name + "-pw") for name in ("u1", "u2", "u3")}
    if backend == "config":
        app = make_app(
            {f"user.{n}": h for n, h in users.items()}
            | {"user.admin": None, "user.alice": None, "user.bob": None}
        )
    else:
        app = make_app({"pypi.auth": "sql", "db.url": f"sqlite:///{tmp_path / 'i.sqlite'}"})
        for name, hashed in users.items():
            app.app.registry.service.access.create_user(name, hashed)
    checked = []
    real = passwords.CONTEXT.verify
    monkeypatch.setattr(
        passwords.CONTEXT, "verify", lambda secret, h, **kw: checked.append(h) or real(secret, h, **kw)
    )
    assert get(app, "u1", "wrong").status_int == 401
    assert get(app, "nosuchuser", "wrong").status_int == 401
    known, unknown = checked
    assert passwords._profile(unknown) == passwords._profile(known)
    assert unknown not in users.values()


def test_a_throttled_address_does_not_lock_out_valid_tokens_and_verified_passwords(make_app, tmp_path):
    """Many users behind one proxy address: an attacker there must not lock them all out."""
    app = sql_app(make_app, tmp_path, **{"auth.throttle_address": "3", "auth.throttle_user": "0"})
    access = app.app.registry.service.access
    # Current-format hash: no upgrade at login (an access change empties the login cache).
    access.set_password_hash("alice", passwords.hash_password(PASSWORDS["alice"]))
    token, _ = access.create_token("bob")
    assert get(app, "alice", PASSWORDS["alice"]).status_int == 200  # verified, remembered
    for i in range(3):
        assert get(app, "admin", f"guess-{i}").status_int == 401
    assert get(app, "admin", PASSWORDS["admin"]).status_int == 429  # would need a hash
    assert get(app, "__token__", token).status_int == 200
    assert get(app, "alice", PASSWORDS["alice"]).status_int == 200
    assert get(app, "__token__", "ppc_bad_token").status_int == 429
