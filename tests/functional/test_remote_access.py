"""``pypi.auth = remote``: 1.x's protocol against a small service the test starts (issue 14)."""

from __future__ import annotations

import pytest

from pypicloud.access import access_from_settings
from pypicloud.access.remote import RemoteAccess
from pypicloud.errors import ConfigError
from pypicloud.settings import Settings
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.remote_access import remote_settings
from tests.fixtures.services import free_port

from .helpers import auth_headers, make_wheel, upload


def backend(settings) -> RemoteAccess:
    built = access_from_settings(Settings(settings, environ={}))
    assert isinstance(built, RemoteAccess)
    return built


def test_1x_dotted_name_and_paths_of_its_own(remote_access_server):
    root = f"http://127.0.0.1:{remote_access_server.port}"
    paths = {
        f"auth.uri.{name}": f"/api/{name}"
        for name in (
            "verify",
            "groups",
            "group_members",
            "admin",
            "group_permissions",
            "user_permissions",
            "user_package_permissions",
            "group_package_permissions",
            "user_data",
        )
    }
    paths["auth.uri.admin"] = "/api/admin"
    access = backend(
        remote_settings(
            remote_access_server,
            **paths,
            **{"pypi.auth": "pypicloud.access.remote.RemoteAccessBackend", "auth.backend_server": root},
        )
    )
    assert access.authenticate("carol", "carol-pw").groups == {"dev", "ops"}
    assert access.is_admin("carol")
    assert set(remote_access_server.requests) >= {"/api/verify", "/api/groups", "/api/admin"}


def test_answers_are_cached_for_cache_time(remote_access_server):
    cached = backend(remote_settings(remote_access_server))
    fresh = backend(remote_settings(remote_access_server, **{"auth.remote.cache_time": "0"}))
    bob = cached.identity("bob")
    assert cached.permission(bob, "secret-lib") == "rw"
    asked = len(remote_access_server.requests)
    for _ in range(5):
        assert cached.permission(bob, "secret-lib") == "rw"
    assert len(remote_access_server.requests) == asked  # no new request
    remote_access_server.directory.packages["secret-lib"]["users"]["bob"] = []
    assert fresh.permission(fresh.identity("bob"), "secret-lib") == "r"  # dev's read grant
    assert cached.permission(bob, "secret-lib") == "rw"


def test_uploads_through_the_app(make_app, remote_access_server):
    app = make_app(remote_settings(remote_access_server))
    filename, data = make_wheel("secret-lib", "1.0")
    upload(app, filename, data, user="bob", password="bob-pw", status=200)
    filename, data = make_wheel("other", "1.0")
    upload(app, filename, data, user="bob", password="bob-pw", status=403)
    upload(app, filename, data, user="bob", password="nope", status=401)


def test_wrong_service_credentials_stop_start_up_naming_the_key(remote_access_server):
    with pytest.raises(ConfigError) as info:
        backend(remote_settings(remote_access_server, **{"auth.password": "not-it"}))
    assert "auth.password" in str(info.value) and "not-it" not in str(info.value)


def test_unreachable_service_stops_start_up_naming_the_key():
    with pytest.raises(ConfigError, match="auth.backend_server"):
        backend(
            {
                "pypi.auth": "remote",
                "auth.backend_server": f"http://127.0.0.1:{free_port()}",
                "auth.remote.timeout": "2",
            }
        )


def test_outage_gives_503_and_health_then_service_resumes(make_app, remote_access_server):
    proxy = TcpProxy(remote_access_server.port)
    try:
        app = make_app(
            remote_settings(
                remote_access_server,
                **{
                    "auth.backend_server": f"http://127.0.0.1:{proxy.port}/api",
                    "auth.cache_seconds": "0",
                    "auth.remote.cache_time": "0",
                },
            )
        )
        headers = auth_headers("alice", "alice-pw")
        assert app.get("/simple/", headers=headers).status_int == 200
        proxy.cut()
        response = app.get("/simple/", headers=headers, expect_errors=True)
        assert response.status_int == 503 and "access service" in response.text
        health = app.get("/health", expect_errors=True)
        assert health.status_int == 503 and health.json == {"status": "unavailable"}  # details: admins only
        proxy.restore()
        assert app.get("/simple/", headers=headers).status_int == 200
        assert app.get("/health").status_int == 200
    finally:
        proxy.close()
