"""A pypicloud 1.x database with ``pypi.auth = sql`` keeps every user, admin flag,
group, grant and pending sign-up (issue 10, item 3).

The fixtures are what pypicloud 1.3.12 itself wrote (tests/fixtures/v1/
make_sql_access.py): an SQLite file, and a pg_dump of the same data made on
PostgreSQL, loaded here into a schema of the test's own.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from pypicloud.access.sql import SQLAccess
from pypicloud.cli import access as access_cli
from tests.fixtures.v1.make_sql_access import USERS
from tests.functional.helpers import build_app, close_app, make_wheel, registry, upload
from tests.functional.test_sql_access import cli  # noqa: F401 (fixture)

V1 = Path(__file__).resolve().parent.parent / "fixtures" / "v1"
V1_TABLES = [
    "pypicloud_users",
    "pypicloud_groups",
    "pypicloud_user_groups",
    "pypicloud_user_permissions",
    "pypicloud_group_permissions",
    "pypicloud_keyvals",
]
PROJECTS = [
    "private-lib",
    "uploads-only",
    "team-lib",
    "public-lib",
    "internal-lib",
    "mixed-case-lib",
    "free-lib",
]
# What 1.x's grants (make_sql_access.GRANTS) give with 1.x's default defaults
# (read: authenticated, write: admins only): a project with grants gets only them.
EXPECTED = {
    "alice": ["rw", "", "rw", "r", "r", "rw", "r"],
    "bob": ["r", "", "rw", "r", "r", "rw", "r"],
    "carol": ["", "w", "", "r", "r", "", "r"],
    "dave.smith": ["", "", "r", "r", "r", "", "r"],
    "root": ["rw"] * 7,
    None: ["", "", "", "r", "", "", ""],
}
APPROVED = sorted(n for n, u in USERS.items() if not u[3])
PENDING = sorted(n for n, u in USERS.items() if u[3])


def creds(user: str | None, password: str | None = None) -> dict[str, str]:
    if user is None:
        return {}
    password = USERS[user][0] if password is None else password
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(params=["sqlite", "postgres"])
def v1_database(request, tmp_path):
    """Settings pointing ``pypi.auth = sql`` at a database 1.3.12 filled."""
    if request.param == "sqlite":
        path = tmp_path / "access.sqlite"
        shutil.copy(V1 / "access-1.3.12.sqlite", path)
        yield {"auth.db.url": f"sqlite:///{path}"}
        return
    url, schema = request.getfixturevalue("postgres_schema")
    dump = (V1 / "access-1.3.12.postgresql.sql").read_text(encoding="utf-8")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in dump.replace("ppc_v1_fixture", schema).split(";\n"):
            lines = [ln for ln in statement.splitlines() if not ln.startswith("--")]
            if "".join(lines).strip():
                conn.exec_driver_sql("\n".join(lines))
    engine.dispose()
    yield {"auth.db.url": url, "auth.db.schema": schema}


def v1_row_counts(access: SQLAccess) -> dict[str, int]:
    with access.engine.connect() as conn:
        return (
            {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in V1_TABLES}
            if not access.schema
            else {
                t: conn.execute(sa.text(f'SELECT count(*) FROM "{access.schema}".{t}')).scalar_one()
                for t in V1_TABLES
            }
        )


def start(tmp_path, spool_dir, v1_database, name="app"):
    settings = {
        "pypi.storage": "file",
        "storage.dir": str(tmp_path / "packages"),
        "pypi.db": "sql",
        "db.url": f"sqlite:///{tmp_path / 'index.sqlite'}",
        "pypi.auth": "sql",
        "pypi.fallback": "none",
        **v1_database,
    }
    return build_app(tmp_path, settings)


def test_every_1x_user_group_grant_and_sign_up_survives(tmp_path, spool_dir, v1_database):
    app = start(tmp_path, spool_dir, v1_database)
    try:
        access = registry(app).service.access
        before = v1_row_counts(access)
        # Every approved 1.x user logs in with their 1.x password (five hash schemes).
        for user in APPROVED:
            response = app.get("/simple/public-lib/", headers=creds(user), expect_errors=True)
            assert response.status_int == 404, (user, response.status)  # in, but no files yet
            assert access.authenticate(user, USERS[user][0]) is not None, user
            assert access.authenticate(user, "not-" + USERS[user][0]) is None, user
        # Admins are admins, and only they.
        assert [u for u in APPROVED if access.is_admin(u)] == ["root"]
        assert app.post("/admin/rebuild", headers=creds("root")).status_int == 200
        assert app.post("/admin/rebuild", headers=creds("alice"), expect_errors=True).status_int == 403
        # Groups and memberships.
        assert access.groups_of("bob") == {"dev", "ops"}
        assert access.groups_of("dave.smith") == {"ops"}
        assert set(access.export_data().groups) == {"dev", "ops", "qa"}
        # Grants hold, over HTTP: read a page, upload a file.
        for project in PROJECTS:
            filename, data = make_wheel(project, "1.0")
            upload(app, filename, data, user=None, headers=creds("root"), status=200)
        wrong = []
        for n, (user, cells) in enumerate(EXPECTED.items()):
            refused = 401 if user is None else 403
            for project, cell in zip(PROJECTS, cells):
                page = app.get(f"/simple/{project}/", headers=creds(user), expect_errors=True)
                if page.status_int != (200 if "r" in cell else refused):
                    wrong.append(f"{user} reads {project}: {page.status}, expected {cell or '-'}")
                filename, data = make_wheel(project, f"2.{n}")
                response = upload(app, filename, data, user=None, headers=creds(user))
                if response.status_int != (200 if "w" in cell else refused):
                    wrong.append(f"{user} uploads to {project}: {response.status}, expected {cell or '-'}")
        assert not wrong, "\n".join(wrong)
        # Pending sign-ups are kept, cannot log in, and become users when approved.
        assert access.pending_users() == PENDING
        for user in PENDING:
            assert app.get("/simple/team-lib/", headers=creds(user), expect_errors=True).status_int == 401
            assert access.authenticate(user, USERS[user][0]) is None
        access.approve_user("newbie")
        assert access.authenticate("newbie", USERS["newbie"][0]).username == "newbie"
        assert access.pending_users() == ["applicant"]
        # 1.x's tables were only read.
        assert v1_row_counts(access) == before
        # The copy happens once: a user deleted here does not come back on restart.
        access.delete_user("carol")
    finally:
        close_app(app)
    again = start(tmp_path, spool_dir, v1_database)
    try:
        access = registry(again).service.access
        assert not access.user_exists("carol")
        assert access.user_exists("newbie") and access.pending_users() == ["applicant"]
    finally:
        close_app(again)


def test_ppc_import_reads_1x_ppc_export_output(tmp_path, cli):
    ini = tmp_path / "new.ini"
    ini.write_text(
        "[app:main]\nuse = egg:pypicloud\npypi.auth = sql\n"
        f"auth.db.url = sqlite:///{tmp_path / 'auth.sqlite'}\n"
        f"db.url = sqlite:///{tmp_path / 'index.sqlite'}\n"
        f"storage.dir = {tmp_path / 'packages'}\n",
        encoding="utf-8",
    )
    exported = V1 / "ppc-export-1.3.12.json"
    code, _, err = cli(access_cli.import_main, str(ini), str(exported))
    assert code == 0, err
    code, out, err = cli(access_cli.export_main, str(ini))
    doc = json.loads(out)
    one_x = json.loads(exported.read_text(encoding="utf-8"))
    assert set(doc["users"]) == {u["username"] for u in one_x["users"]} == set(APPROVED)
    for user in one_x["users"]:
        assert doc["users"][user["username"]] == {"password_hash": user["password"], "admin": user["admin"]}
    assert doc["groups"]["ops"]["members"] == ["bob", "dave.smith"]
    assert doc["packages"]["uploads-only"] == {"users": {"carol": "w"}, "groups": {}}
    assert doc["packages"]["mixed-case-lib"] == {"users": {}, "groups": {"dev": "rw"}}
    # Every grant in the 1.x file arrives. (1.x's export itself leaves out grants to
    # everyone/authenticated when those are no rows of pypicloud_groups, as on SQLite;
    # the start-up copy of the tables, above, keeps them.)
    for kind in ("users", "groups"):
        for package, grants in one_x["packages"][kind].items():
            for name, perms in grants.items():
                value = ("r" if "read" in perms else "") + ("w" if "write" in perms else "")
                project = package.lower().replace("_", "-").replace(".", "-")
                assert doc["packages"][project][kind][name] == value, (package, name)


def test_ppc_access_lists_and_approves_1x_pending_sign_ups(tmp_path, cli):
    shutil.copy(V1 / "access-1.3.12.sqlite", tmp_path / "access.sqlite")
    ini = tmp_path / "server.ini"
    ini.write_text(
        "[app:main]\nuse = egg:pypicloud\npypi.auth = sql\n"
        f"auth.db.url = sqlite:///{tmp_path / 'access.sqlite'}\n"
        f"db.url = sqlite:///{tmp_path / 'index.sqlite'}\n"
        f"storage.dir = {tmp_path / 'packages'}\n",
        encoding="utf-8",
    )
    code, out, err = cli(access_cli.access_main, str(ini), "list-pending")
    assert code == 0, err
    assert out.split() == PENDING
    code, _, err = cli(access_cli.access_main, str(ini), "approve", "applicant")
    assert code == 0, err
    code, out, _ = cli(access_cli.access_main, str(ini), "list-pending")
    assert out.split() == ["newbie"]
    assert "user  applicant" in cli(access_cli.access_main, str(ini), "list")[1]
    code, _, err = cli(access_cli.access_main, str(ini), "approve", "nobody")
    assert code == 1 and "No such pending user" in err
