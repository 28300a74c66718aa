"""``pypi.auth = ldap`` against a real OpenLDAP slapd (tests/fixtures/ldap.py), issue 14.

1.x's ``auth.ldap.*`` keys: users found by search filter or DN format, passwords
checked by binding, admins by attribute or admin group, groups from the
directory, grants from the ini (``fallback = config``), lookups cached for
``cache_time``. Start-up refuses a wrong service password and an unreachable
directory naming the key; an outage while running answers 503.
"""

from __future__ import annotations

import sys

import pytest

from pypicloud.access import access_from_settings
from pypicloud.access.ldap import LDAPAccess
from pypicloud.errors import ConfigError
from pypicloud.settings import Settings
from tests.fixtures import ldap as directory
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.services import free_port

from .helpers import auth_headers, make_wheel, upload


def ldap(server, **extra) -> dict[str, str]:
    settings = {
        "pypi.auth": "ldap",
        "auth.ldap.url": server.url,
        "auth.ldap.service_dn": directory.SERVICE_DN,
        "auth.ldap.service_password": directory.SERVICE_PASSWORD,
        "auth.ldap.base_dn": directory.PEOPLE,
        "auth.ldap.user_search_filter": "(uid={username})",
        "auth.ldap.admin_field": "employeeType",
        "auth.ldap.admin_value": "admin",
        "auth.ldap.group_base_dn": directory.GROUPS,
    }
    settings.update(extra)
    return {k: v for k, v in settings.items() if v is not None}


def backend(settings) -> LDAPAccess:
    built = access_from_settings(Settings(settings, environ={}))
    assert isinstance(built, LDAPAccess)
    return built


def test_groups_and_admins_come_from_the_directory(ldap_server):
    access = backend(ldap(ldap_server))
    assert access.groups_of("carol") == {"dev", "ops"}
    assert access.groups_of("bob") == {"dev"}
    assert access.groups_of("nobody") == set()
    assert access.is_admin("alice") and not access.is_admin("bob")
    assert access.user_exists("carol") and not access.user_exists("dave")  # outside base_dn
    assert access.authenticate("carol", "carol-pw").groups == {"dev", "ops"}
    assert access.authenticate("carol", "bob-pw") is None


def test_user_dn_format_and_admin_group_dn_of_1x(ldap_server):
    access = backend(
        ldap(
            ldap_server,
            **{
                "pypi.auth": "pypicloud.access.ldap_.LDAPAccessBackend",
                "auth.ldap.base_dn": None,
                "auth.ldap.user_search_filter": None,
                "auth.ldap.user_dn_format": f"uid={{username}},{directory.PEOPLE}",
                "auth.ldap.admin_field": None,
                "auth.ldap.admin_group_dn": f"cn=ops,{directory.GROUPS}",
            },
        )
    )
    assert access.authenticate("bob", "bob-pw").username == "bob"
    assert access.is_admin("carol") and not access.is_admin("alice")
    assert access.authenticate("dave", "dave-pw") is None


@pytest.mark.parametrize("name", ["*", "bob)(uid=*", "b*", "alice,ou=people"])
def test_names_cannot_change_the_search(ldap_server, name):
    access = backend(ldap(ldap_server))
    assert not access.user_exists(name)
    assert access.authenticate(name, "bob-pw") is None


def test_several_entries_for_one_name(ldap_server):
    wide = {"auth.ldap.base_dn": directory.SUFFIX}
    assert backend(ldap(ldap_server, **wide)).authenticate("twin", "twin-pw") is None
    tolerant = backend(ldap(ldap_server, **wide, **{"auth.ldap.ignore_multiple_results": "true"}))
    assert tolerant.user_exists("twin")


def test_lookups_are_cached_for_cache_time(ldap_server):
    import ldap3

    cached = backend(ldap(ldap_server, **{"auth.ldap.cache_time": "3600"}))
    fresh = backend(ldap(ldap_server, **{"auth.ldap.cache_time": "0"}))
    assert not cached.is_admin("bob") and not fresh.is_admin("bob")
    root = ldap3.Connection(
        ldap3.Server(ldap_server.url), f"cn=admin,{directory.SUFFIX}", "admin-pw", auto_bind=True
    )
    dn = f"uid=bob,{directory.PEOPLE}"
    try:
        root.modify(dn, {"employeeType": [(ldap3.MODIFY_REPLACE, ["admin"])]})
        assert fresh.is_admin("bob")
        assert not cached.is_admin("bob")  # still the entry read an hour ago
        cached.forget_credentials("bob")
        assert cached.is_admin("bob")
    finally:
        root.modify(dn, {"employeeType": [(ldap3.MODIFY_REPLACE, ["staff"])]})
        root.unbind()


def test_grants_from_the_ini_and_uploads(make_app, ldap_server):
    app = make_app(ldap(ldap_server, **{"auth.ldap.fallback": "config", "package.team-lib.group.dev": "rw"}))
    filename, data = make_wheel("team-lib", "1.0")
    upload(app, filename, data, user="bob", password="bob-pw", status=200)
    filename, data = make_wheel("other-lib", "1.0")
    upload(app, filename, data, user="bob", password="bob-pw", status=403)
    upload(app, filename, data, user="bob", password="wrong", status=401)


def test_wrong_service_password_stops_start_up_naming_the_key(ldap_server):
    with pytest.raises(ConfigError) as info:
        backend(ldap(ldap_server, **{"auth.ldap.service_password": "not-it"}))
    assert "auth.ldap.service_password" in str(info.value) and "not-it" not in str(info.value)


def test_unreachable_directory_stops_start_up_naming_the_key(ldap_server):
    with pytest.raises(ConfigError, match="auth.ldap.url"):
        backend(
            ldap(
                ldap_server, **{"auth.ldap.url": f"ldap://127.0.0.1:{free_port()}", "auth.ldap.timeout": "2"}
            )
        )


def test_missing_extra_names_it(ldap_server, monkeypatch):
    monkeypatch.setitem(sys.modules, "ldap3", None)  # as if ldap3 were not installed
    with pytest.raises(ConfigError, match=r"pip install 'pypicloud\[ldap\]'"):
        backend(ldap(ldap_server))


# ldap3 leaves the socket of a connection whose server vanished to the garbage
# collector (a third-party leak, not ours): not an error for this test only.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_outage_gives_503_and_health_then_service_resumes(make_app, ldap_server):
    proxy = TcpProxy(ldap_server.port)
    try:
        app = make_app(
            ldap(
                ldap_server,
                **{
                    "auth.ldap.url": f"ldap://127.0.0.1:{proxy.port}",
                    "auth.ldap.timeout": "2",
                    "auth.cache_seconds": "0",
                    "auth.ldap.cache_time": "0",
                },
            )
        )
        headers = auth_headers("alice", "alice-pw")
        assert app.get("/simple/", headers=headers).status_int == 200
        proxy.cut()
        response = app.get("/simple/", headers=headers, expect_errors=True)
        assert response.status_int == 503 and "LDAP" in response.text
        health = app.get("/health", expect_errors=True)
        assert health.status_int == 503 and health.json == {"status": "unavailable"}  # details: admins only
        proxy.restore()
        assert app.get("/simple/", headers=headers).status_int == 200
        assert app.get("/health").status_int == 200
    finally:
        proxy.close()
