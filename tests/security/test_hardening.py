"""Items 7 and 10-16: the smaller findings of the review, each attacked as it was there."""

from __future__ import annotations

import configparser
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pypicloud.errors import ConfigError
from tests.functional.helpers import HASHES, JSON_TYPE, auth_headers, make_wheel, upload_dist
from tests.functional.test_admin_ui import SECRET, login

from .helpers import sql_app

ROOT = Path(__file__).resolve().parents[2]
WHEEL = make_wheel("alice-pkg", "1.0")


# Item 10 ------------------------------------------------------------------
def test_cr_lf_in_the_path_cannot_forge_log_lines(app, caplog, monkeypatch):
    forged = "2026-12-03 09:01:00,000 INFO  [pypicloud.service] admin uploaded evil.whl"
    service = app.app.registry.service

    def broken(*args, **kwargs):
        raise RuntimeError("storage exploded")

    monkeypatch.setattr(service, "project_files", broken)
    path = "/api/package/x%0a" + forged.replace(" ", "%20") + "/"
    with caplog.at_level(logging.INFO):
        response = app.get(path, headers=auth_headers("admin"), expect_errors=True)
    assert response.status_int == 500
    lines = [line for r in caplog.records for line in r.getMessage().splitlines()]
    assert not any(line.startswith("2026-12-03 09:01:00") for line in lines), lines


# Item 11 ------------------------------------------------------------------
def test_login_next_with_cr_lf_is_not_a_500(make_app):
    app = make_app({"session.secret": SECRET})
    response = login(app, "alice", next="/admin\r\nX-Injected: 1")
    assert response.status_int == 303
    assert "\n" not in response.location and "X-Injected" not in response.headers
    again = app.get("/login", params={"next": "/admin\r\nX-Injected: 1"}, expect_errors=True)
    assert again.status_int == 302


# Item 12 ------------------------------------------------------------------
def test_database_passwords_are_masked_in_error_messages(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text(
        "[app:main]\nuse = egg:pypicloud\npypi.storage = file\n"
        f"storage.dir = {tmp_path}/p\npypi.auth = sql\n"
        "db.url = postgresql+psycopg://ppcuser:SuperSecretDbPassw0rd@127.0.0.1:1/test\n"
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ppc-access"), str(ini), "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "db.url" in result.stderr
    assert "SuperSecretDbPassw0rd" not in result.stderr + result.stdout
    message = str(ConfigError("db.url", "redis://:hunter2@cache:6379/0", "cannot reach Redis"))
    assert "hunter2" not in message and "redis://:***@cache:6379/0" in message


# Item 13 ------------------------------------------------------------------
def test_export_and_sqlite_files_with_hashes_are_private(make_app, tmp_path):
    old = os.umask(0o022)
    try:
        app = sql_app(make_app, tmp_path)
        database = tmp_path / "index.sqlite"
        ini = tmp_path / "export.ini"
        ini.write_text(f"[app:main]\nuse = egg:pypicloud\npypi.auth = sql\ndb.url = sqlite:///{database}\n")
        out = tmp_path / "export.json"
        result = subprocess.run(
            [str(Path(sys.executable).parent / "ppc-export"), str(ini), "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "argon2" in out.read_text() or "pbkdf2" in out.read_text()
    finally:
        os.umask(old)
    for path in (out, database):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, (path, oct(path.stat().st_mode))
    assert app is not None


# Item 14 ------------------------------------------------------------------
def test_the_upstream_user_name_is_reserved(make_app, tmp_path):
    with pytest.raises(ConfigError, match=r"user\.\(upstream\)"):
        make_app({"user.(upstream)": HASHES["alice"]})
    app = sql_app(make_app, tmp_path / "sql")
    access = app.app.registry.service.access
    with pytest.raises(Exception, match="reserved"):
        access.create_user("(upstream)", HASHES["alice"])
    assert not access.user_exists("(upstream)")


# Item 15 ------------------------------------------------------------------
def test_anonymous_health_shows_the_status_only(app, tmp_path):
    (tmp_path / "packages").rename(tmp_path / "moved")
    anonymous = app.get("/health", expect_errors=True)
    assert anonymous.status_int == 503
    assert anonymous.json == {"status": "unavailable"}
    assert str(tmp_path) not in anonymous.text
    admin = app.get("/health", headers=auth_headers("admin"), expect_errors=True)
    assert admin.json["storage"]["ok"] is False and "packages" in admin.json["storage"]["error"]
    assert app.get("/health", headers=auth_headers("alice"), expect_errors=True).json == {
        "status": "unavailable"
    }


# Item 16 ------------------------------------------------------------------
def test_nosniff_everywhere(app):
    upload_dist(app, WHEEL, user="alice")
    for path, user in (
        ("/simple/", "admin"),
        ("/simple/alice-pkg/", "admin"),
        (f"/api/package/alice-pkg/{WHEEL[0]}", "admin"),
        (f"/api/package/alice-pkg/{WHEEL[0]}.metadata", "admin"),
        ("/simple/nonexistent/", "admin"),
        ("/simple/", None),
        ("/health", None),
        ("/login", None),
    ):
        response = app.get(path, headers=auth_headers(user, Accept=JSON_TYPE), expect_errors=True)
        assert response.headers.get("X-Content-Type-Options") == "nosniff", (path, response.status)


def _server_section(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return dict(parser["server:main"])


# Items 7 and 16 -------------------------------------------------------------
@pytest.mark.parametrize("ini", ["development.ini", "config/production.ini"])
def test_shipped_inis_bound_slow_clients_and_trust_no_proxy_blindly(ini):
    server = _server_section(ROOT / ini)
    assert int(server["channel_timeout"]) <= 60
    assert int(server["connection_limit"]) >= 200
    assert server.get("asyncore_use_poll") == "true"
    assert int(server["max_request_body_size"]) <= 2 * 1024**3 - 1
    assert server.get("trusted_proxy", "") != "*"
