"""One suite for every access backend (SPEC section 8, access/base.py, access/editable.py).

The same users, groups and grants are given to each backend -- the ini backend
from settings, the database backend on SQLite and on PostgreSQL by importing the
ini backend's export -- and every check must answer the same. Then the
database backend's editing: changes seen at once by the same process, within
the check interval by another, cached logins ended by a password change, and
refused changes that leave nothing behind.
"""

from __future__ import annotations

import json

import passlib.hash
import pytest
import sqlalchemy as sa

from pypicloud.access import access_from_settings
from pypicloud.access import sql as sql_access
from pypicloud.access.aws_secrets_manager import SecretsManagerAccess
from pypicloud.access.config import ConfigAccess
from pypicloud.access.editable import AccessConflict, AccessData, InvalidAccessData
from pypicloud.access.schema import metadata as access_metadata
from pypicloud.access.schema import tokens as token_table
from pypicloud.access.sql import SQLAccess
from pypicloud.models import ANONYMOUS
from pypicloud.settings import Settings

# Cheap hashes: these tests are about the rules, not the hashing cost.
ALICE_HASH = passlib.hash.argon2.using(memory_cost=64, time_cost=1, parallelism=1).hash("alice-pw")
BOB_HASH = passlib.hash.sha512_crypt.using(rounds=1000).hash("bob-pw")
CAROL_HASH = passlib.hash.bcrypt.using(rounds=4).hash("carol-pw")
NEW_HASH = passlib.hash.argon2.using(memory_cost=64, time_cost=1, parallelism=1).hash("new-pw")

SETTINGS = {
    "user.alice": ALICE_HASH,
    "user.bob": BOB_HASH,
    "user.carol": CAROL_HASH,
    "group.dev": "bob carol",
    "group.ops": "carol",
    "auth.admins": "alice ops",
    "pypi.default_read": "authenticated",
    "package.Secret_Lib.user.bob": "rw",
    "package.secret-lib.group.dev": "r",
    "package.public-lib.group.everyone": "r",
}


def policy() -> dict:
    return ConfigAccess.base_kwargs_from_settings(Settings(SETTINGS, environ={}))


def config_backend() -> ConfigAccess:
    backend = access_from_settings(Settings(SETTINGS, environ={}))
    assert isinstance(backend, ConfigAccess)
    return backend


SQL_PARAMS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


def _location(request, kind: str, tmp_path) -> tuple[str, str | None]:
    """A database for the access tables: a SQLite file, or a fresh PostgreSQL schema."""
    if kind == "postgres":
        return request.getfixturevalue("postgres_schema")
    if kind == "mariadb":
        return request.getfixturevalue("mariadb_database")
    return f"sqlite:///{tmp_path / 'access.sqlite'}", None


@pytest.fixture(params=SQL_PARAMS + ["secrets", "memory"])
def sql_url(request, tmp_path):
    """Where an editable backend keeps its data: a database (and schema),
    ``("secrets", (endpoint, secret id))`` for AWS Secrets Manager on the moto server,
    or ``("memory", store)`` for tests/fakes.py's in-memory backend."""
    if request.param == "secrets":
        return "secrets", request.getfixturevalue("secrets_manager_secret")
    if request.param == "memory":
        from tests.fakes import AccessStore

        return "memory", AccessStore()
    return _location(request, request.param, tmp_path)


@pytest.fixture
def secrets_manager_secret(moto_server):
    """A secret name of this test on the moto server; the secret is deleted afterwards."""
    import boto3

    from tests.fixtures.services import unique_name

    name = unique_name("ppc-access")
    yield moto_server, name
    client = boto3.client("secretsmanager", endpoint_url=moto_server, region_name="us-east-1")
    try:
        client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    except client.exceptions.ResourceNotFoundException:
        pass
    client.close()


@pytest.fixture
def open_sql(sql_url):
    """Opens the editable backend (each call stands for another process)."""
    url, schema = sql_url
    opened: list = []

    def open_(**kw):
        if url == "memory":
            from tests.fakes import MemoryAccess

            backend = MemoryAccess(schema, **{**policy(), **kw})
        elif url == "secrets":
            endpoint, secret_id = schema
            backend = SecretsManagerAccess(
                secret_id=secret_id,
                endpoint_url=endpoint,
                region_name="us-east-1",
                check_seconds=sql_access.CHECK_SECONDS,
                **{**policy(), **kw},
            )
        else:
            backend = SQLAccess(url, schema=schema, **{**policy(), **kw})
        opened.append(backend)
        return backend

    yield open_
    for backend in opened:
        backend.close()


def ldap_settings(server) -> dict:
    """The same users, groups and admins in the test directory (tests/fixtures/ldap.py);
    the grants from the ini (1.x's ``auth.ldap.fallback = config``)."""
    from tests.fixtures import ldap as directory

    grants = {k: v for k, v in SETTINGS.items() if not k.startswith(("user.", "group."))}
    return {
        **grants,
        "pypi.auth": "ldap",
        "auth.ldap.url": server.url,
        "auth.ldap.service_dn": directory.SERVICE_DN,
        "auth.ldap.service_password": directory.SERVICE_PASSWORD,
        "auth.ldap.base_dn": directory.PEOPLE,
        "auth.ldap.user_search_filter": "(uid={username})",
        "auth.ldap.admin_field": "employeeType",
        "auth.ldap.admin_value": "admin",
        "auth.ldap.group_base_dn": directory.GROUPS,
        "auth.ldap.fallback": "config",
    }


@pytest.fixture(params=["config"] + SQL_PARAMS + ["secrets", "ldap", "remote", "memory"])
def backend(request, tmp_path):
    """The ini backend, the database backend loaded with its export (SQLite, PostgreSQL,
    MariaDB) and into AWS Secrets Manager (moto), the LDAP backend on a directory holding the same people, and the remote
    backend asking a service that answers for them."""
    if request.param == "config":
        yield config_backend()
        return
    if request.param == "memory":
        from tests.fakes import MemoryAccess

        memory = MemoryAccess(**policy())
        memory.load(config_backend().export_data())
        yield memory
        return
    if request.param == "secrets":
        endpoint, secret_id = request.getfixturevalue("secrets_manager_secret")
        stored = SecretsManagerAccess(
            secret_id=secret_id, endpoint_url=endpoint, region_name="us-east-1", **policy()
        )
        stored.load(config_backend().export_data())
        yield stored
        stored.close()
        return
    if request.param == "remote":
        from tests.fixtures.remote_access import remote_settings

        server = request.getfixturevalue("remote_access_server")
        yield access_from_settings(Settings(remote_settings(server), environ={}))
        return
    if request.param == "ldap":
        server = request.getfixturevalue("ldap_server")
        yield access_from_settings(Settings(ldap_settings(server), environ={}))
        return
    url, schema = _location(request, request.param, tmp_path)
    sql = SQLAccess(url, schema=schema, **policy())
    sql.load(config_backend().export_data())
    yield sql
    sql.close()


# ---------------------------------------------------------------------------
# The same answers from every backend
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "username,password", [("alice", "alice-pw"), ("bob", "bob-pw"), ("carol", "carol-pw")]
)
def test_each_hash_format_logs_in(backend, username, password):
    identity = backend.authenticate(username, password)
    assert identity is not None and identity.username == username


@pytest.mark.parametrize(
    "username,password", [("alice", "wrong"), ("nobody", "alice-pw"), ("", "x"), ("alice", "")]
)
def test_bad_credentials(backend, username, password):
    assert backend.authenticate(username, password) is None


def test_groups_and_admins(backend):
    assert backend.groups_of("carol") == {"dev", "ops"}
    assert backend.groups_of("nobody") == set()
    assert backend.is_admin("alice")  # by name
    assert backend.is_admin("carol")  # through the ops group
    assert not backend.is_admin("bob")
    assert backend.user_exists("bob") and not backend.user_exists("dave")


def test_permissions(backend):
    bob, carol, alice = (backend.identity(n) for n in ("bob", "carol", "alice"))
    assert backend.permission(bob, "secret-lib") == "rw"
    assert backend.permission(bob, "SECRET.lib") == "rw"  # canonical names
    assert backend.permission(carol, "secret-lib") == "rw"  # admin through ops
    assert backend.permission(alice, "other") == "rw"
    assert backend.permission(bob, "other") == "r"  # default_read = authenticated
    assert backend.permission(ANONYMOUS, "other") == ""
    assert backend.permission(ANONYMOUS, "public-lib") == "r"
    assert backend.can_delete(bob, "secret-lib") and not backend.can_delete(bob, "other")


def test_export_is_the_same_document(backend):
    try:
        doc = backend.export_data().to_json()
    except NotImplementedError:
        pytest.skip(f"{type(backend).__name__} cannot list its users")
    assert doc == config_backend().export_data().to_json()
    assert doc["users"]["alice"] == {"password_hash": ALICE_HASH, "admin": True}
    assert doc["groups"]["ops"] == {"members": ["carol"], "admin": True}
    assert doc["packages"]["secret-lib"] == {"users": {"bob": "rw"}, "groups": {"dev": "r"}}
    json.dumps(doc)  # plain JSON


# ---------------------------------------------------------------------------
# Database backend: editing
# ---------------------------------------------------------------------------
@pytest.fixture
def sql(open_sql):
    backend = open_sql()
    backend.load(config_backend().export_data())
    return backend


def test_migrations_build_the_schema_py_tables(open_sql):
    backend = open_sql()
    if not isinstance(backend, SQLAccess):
        pytest.skip("SQL only")
    inspector = sa.inspect(backend.engine)
    schema = backend.schema
    for table in access_metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name, schema=schema)}
        assert columns == {c.name for c in table.columns}, table.name
    assert "ppc_access_alembic_version" in inspector.get_table_names(schema=schema)


def test_created_user_logs_in_and_gets_grants(sql):
    sql.create_user("dave", NEW_HASH)
    assert sql.authenticate("dave", "new-pw").username == "dave"
    # secret-lib has grants, so they alone decide (1.x): dave has none there
    # (changed by issue 10; the defaults used to add "r").
    assert sql.permission(sql.identity("dave"), "secret-lib") == ""
    assert sql.permission(sql.identity("dave"), "no-grants-lib") == "r"
    sql.set_grant("Secret.Lib", "user", "dave", "rw")
    assert sql.permission(sql.identity("dave"), "secret-lib") == "rw"
    sql.set_grant("secret-lib", "user", "dave", None)
    assert sql.permission(sql.identity("dave"), "secret-lib") == ""


def test_password_change_ends_cached_logins_at_once(sql):
    assert sql.authenticate("bob", "bob-pw") is not None  # now cached
    sql.set_password_hash("bob", NEW_HASH)
    assert sql.authenticate("bob", "bob-pw") is None
    assert sql.authenticate("bob", "new-pw") is not None


def test_deleting_a_user_removes_memberships_and_grants(sql):
    assert sql.authenticate("bob", "bob-pw") is not None
    sql.delete_user("bob")
    assert sql.authenticate("bob", "bob-pw") is None
    doc = sql.export_data().to_json()
    assert "bob" not in doc["users"]
    assert doc["groups"]["dev"]["members"] == ["carol"]
    assert doc["packages"]["secret-lib"]["users"] == {}


def test_groups_membership_and_group_grants(sql):
    sql.create_group("qa")
    sql.set_membership("bob", "qa", True)
    sql.set_grant("qa-tools", "group", "qa", "rw")
    assert sql.permission(sql.identity("bob"), "qa-tools") == "rw"
    sql.set_membership("bob", "qa", False)
    # qa-tools' grants replace the defaults (1.x; changed by issue 10).
    assert sql.permission(sql.identity("bob"), "qa-tools") == ""
    sql.set_membership("bob", "qa", True)
    sql.delete_group("qa")
    assert sql.groups_of("bob") == {"dev"}
    assert "qa-tools" not in sql.export_data().to_json()["packages"]


def test_admin_flags(sql):
    sql.set_admin("bob", True)
    assert sql.identity("bob").is_admin
    sql.set_admin("bob", False)
    assert not sql.identity("bob").is_admin
    sql.create_group("admins", admin=True)
    sql.set_membership("bob", "admins", True)
    assert sql.identity("bob").is_admin


def test_pseudo_group_grants(sql):
    sql.set_grant("open-lib", "group", "everyone", "r")
    assert sql.permission(ANONYMOUS, "open-lib") == "r"


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.create_user("bob", NEW_HASH),
        lambda b: b.set_password_hash("nobody", NEW_HASH),
        lambda b: b.set_admin("nobody", True),
        lambda b: b.delete_user("nobody"),
        lambda b: b.create_group("dev"),
        lambda b: b.delete_group("nope"),
        lambda b: b.set_membership("nobody", "dev", True),
        lambda b: b.set_membership("bob", "nope", True),
        lambda b: b.set_grant("lib", "user", "nobody", "r"),
        lambda b: b.set_grant("lib", "group", "nope", "r"),
    ],
    ids=[
        "user-exists",
        "passwd-unknown",
        "admin-unknown",
        "delete-unknown",
        "group-exists",
        "delete-group-unknown",
        "member-unknown-user",
        "member-unknown-group",
        "grant-unknown-user",
        "grant-unknown-group",
    ],
)
def test_conflicts_change_nothing(sql, change):
    before = sql.export_data().to_json()
    with pytest.raises(AccessConflict):
        change(sql)
    assert sql.export_data().to_json() == before


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.create_user("eve", "plain-text-password"),
        lambda b: b.create_user("with space", NEW_HASH),
        lambda b: b.create_user("colon:name", NEW_HASH),
        lambda b: b.create_user("ctrl\x07", NEW_HASH),
        lambda b: b.create_group("everyone"),
        lambda b: b.set_grant("lib", "user", "bob", "x"),  # "w" is valid (1.x write-only)
        lambda b: b.set_password_hash("bob", "not-a-hash"),
    ],
    ids=["plain-password", "space", "colon", "control", "pseudo-group", "bad-perm", "bad-hash"],
)
def test_invalid_values_change_nothing(sql, change):
    before = sql.export_data().to_json()
    with pytest.raises(InvalidAccessData):
        change(sql)
    assert sql.export_data().to_json() == before


def test_another_process_sees_changes_within_the_check_interval(open_sql):
    writer, reader = open_sql(), open_sql()
    writer.load(config_backend().export_data())
    assert reader.authenticate("bob", "bob-pw") is not None  # cached in the reader
    writer.set_password_hash("bob", NEW_HASH)
    writer.create_user("dave", NEW_HASH)
    reader._checked_at -= sql_access.CHECK_SECONDS  # a second has passed
    assert reader.authenticate("bob", "bob-pw") is None
    assert reader.authenticate("bob", "new-pw") is not None
    assert reader.user_exists("dave")


def test_load_merges_by_default_and_replaces_on_request(sql):
    extra = AccessData.from_json(
        {
            "version": 1,
            "users": {"erin": {"password_hash": NEW_HASH}},
            "groups": {"dev": {"members": ["erin"]}},
        }
    )
    sql.load(extra)
    doc = sql.export_data().to_json()
    assert {"alice", "bob", "carol", "erin"} <= set(doc["users"])
    assert doc["groups"]["dev"]["members"] == ["erin"]  # a listed group: as listed
    assert doc["packages"]["secret-lib"]["users"] == {"bob": "rw"}  # untouched
    sql.load(extra, replace=True)
    doc = sql.export_data().to_json()
    assert set(doc["users"]) == {"erin"} and doc["packages"] == {}


@pytest.mark.parametrize(
    "doc,message",
    [
        ({"version": 2}, "version 1"),
        ({"version": 1, "users": {"x": {"password_hash": "nope"}}}, "not a password hash"),
        ({"version": 1, "groups": {"g": {"members": ["ghost"]}}}, "unknown user"),
        ({"version": 1, "packages": {"lib": {"groups": {"ghost": "r"}}}}, "unknown group"),
        ({"version": 1, "packages": {"lib": {"groups": {"everyone": "x"}}}}, "r, w or rw"),
        ({"version": 1, "users": []}, "must be an object"),
    ],
)
def test_bad_documents_are_refused_whole(doc, message):
    with pytest.raises(InvalidAccessData) as info:
        AccessData.from_json(doc)
    assert message in str(info.value)


# ---------------------------------------------------------------------------
# Settings: where the tables live
# ---------------------------------------------------------------------------
def test_by_default_the_tables_share_the_index_database(tmp_path):
    settings = Settings({"pypi.auth": "sql"}, environ={}, here=str(tmp_path))
    backend = access_from_settings(settings)
    try:
        assert isinstance(backend, SQLAccess)
        assert backend.url.database == str(tmp_path / "pypicloud.sqlite")
    finally:
        backend.close()


def test_auth_db_url_names_a_database_of_its_own(tmp_path):
    settings = Settings(
        {"pypi.auth": "sql", "auth.db.url": "sqlite:///users.db", "auth.admins": "root"},
        environ={},
        here=str(tmp_path),
    )
    backend = access_from_settings(settings)
    try:
        assert backend.url.database == str(tmp_path / "users.db")
        backend.create_user("root", NEW_HASH)
        assert backend.identity("root").is_admin  # auth.admins applies to the database too
    finally:
        backend.close()


def test_old_dotted_name_chooses_the_database_backend(tmp_path):
    settings = Settings(
        {"pypi.auth": "pypicloud.access.sql.SQLAccessBackend"}, environ={}, here=str(tmp_path)
    )
    backend = access_from_settings(settings)
    try:
        assert isinstance(backend, SQLAccess)
    finally:
        backend.close()


# ---------------------------------------------------------------------------
# API tokens (database backend)
# ---------------------------------------------------------------------------
def test_the_ini_backend_accepts_no_token():
    assert config_backend().authenticate("__token__", "ppc_0123456789abcdef_secret") is None


def test_read_token_reads_what_its_user_may_and_never_writes(sql):
    token, info = sql.create_token("bob")
    assert token.startswith(f"ppc_{info.token_id}_")
    identity = sql.authenticate("__token__", token)
    assert identity.username == "bob" and not identity.is_admin
    assert sql.permission(identity, "secret-lib") == "r"  # bob has rw; the token reads
    assert sql.permission(identity, "other") == "r"
    assert not sql.can_write(identity, "secret-lib") and not sql.can_delete(identity, "secret-lib")


def test_upload_token_limited_to_projects(sql):
    token, info = sql.create_token("bob", projects=["Secret_Lib"], upload=True)
    assert info.projects == ("secret-lib",)
    identity = sql.authenticate("__token__", token)
    assert sql.permission(identity, "secret.lib") == "rw"
    assert sql.permission(identity, "other") == ""  # outside the token: nothing
    assert not sql.can_delete(identity, "secret-lib")  # deleting takes a password


def test_admin_token_reaches_everything_but_is_no_admin(sql):
    identity = sql.authenticate("__token__", sql.create_token("alice", upload=True)[0])
    assert sql.permission(identity, "anything") == "rw"
    assert not identity.is_admin


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: t.replace("ppc_", "xyz_", 1),  # wrong prefix
        lambda t: "ppc_ffffffffffffffff_" + t.split("_", 2)[2],  # unknown id
        lambda t: t.rsplit("_", 1)[0],  # secret cut off
        lambda t: "",
    ],
    ids=["secret", "prefix", "id", "cut", "empty"],
)
def test_wrong_tokens_are_refused(sql, mangle):
    token, _ = sql.create_token("bob")
    assert sql.authenticate("__token__", mangle(token)) is None


def test_expired_deleted_and_orphaned_tokens_stop_working(sql):
    from datetime import timedelta

    from pypicloud.models import utcnow

    expired, _ = sql.create_token("bob", expires_at=utcnow() - timedelta(seconds=1))
    assert sql.authenticate("__token__", expired) is None
    token, info = sql.create_token("bob", expires_at=utcnow() + timedelta(days=1))
    assert sql.authenticate("__token__", token) is not None
    sql.delete_token(info.token_id)
    assert sql.authenticate("__token__", token) is None
    with pytest.raises(AccessConflict):
        sql.delete_token(info.token_id)
    token, _ = sql.create_token("carol")
    sql.delete_user("carol")
    assert sql.authenticate("__token__", token) is None
    assert sql.tokens("carol") == []


def test_a_token_deleted_elsewhere_stops_within_the_check_interval(open_sql):
    writer, reader = open_sql(), open_sql()
    writer.load(config_backend().export_data())
    token, info = writer.create_token("bob")
    reader._checked_at -= sql_access.CHECK_SECONDS
    assert reader.authenticate("__token__", token) is not None
    writer.delete_token(info.token_id)
    reader._checked_at -= sql_access.CHECK_SECONDS
    assert reader.authenticate("__token__", token) is None


def test_only_a_hash_of_the_secret_is_stored(sql):
    token, info = sql.create_token("bob", description="ci job")
    secret = token.split("_", 2)[2]
    if isinstance(sql, SecretsManagerAccess):
        stored = sql.client.get_secret_value(SecretId=sql.secret_id)["SecretString"]
        assert info.token_id in stored and secret not in stored
        return
    if not hasattr(sql, "engine"):  # tests/fakes.py's in-memory backend
        assert info.token_id in repr(sql.store) and secret not in repr(sql.store)
        return
    with sql.engine.connect() as conn:  # every column of every token row, as text
        rows = [tuple(str(v) for v in row) for row in conn.execute(sa.select(token_table))]
    assert rows and not any(secret in value for row in rows for value in row)
    assert [t.description for t in sql.tokens("bob")] == ["ci job"]


def test_token_for_unknown_user_or_empty_project_list_is_refused(sql):
    with pytest.raises(AccessConflict):
        sql.create_token("nobody")
    with pytest.raises(InvalidAccessData):
        sql.create_token("bob", projects=[])
    assert sql.tokens() == []


def test_the_token_user_name_is_reserved(sql):
    with pytest.raises(InvalidAccessData):
        sql.create_user("__token__", NEW_HASH)
