"""The database access backend through the real app and the real commands.

A team moves from users in the ini to ``pypi.auth = sql``: ``ppc-export`` of the
old ini, ``ppc-import`` into the new deployment, then ``ppc-access`` changes
users and grants while the server runs; the server follows without a restart.
"""

from __future__ import annotations

import io
import json
import sys

import pytest

from pypicloud.cli import access as access_cli

from .helpers import HASHES, assert_rejected, auth_headers, make_wheel, project_names, upload, upload_dist

WHEEL = make_wheel("team-lib", "1.0")


def write_ini(path, settings: dict[str, str]) -> str:
    lines = ["[app:main]", "use = egg:pypicloud"] + [f"{k} = {v}" for k, v in settings.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def run(main, argv, stdin: str = "", monkeypatch=None, capsys=None) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def sql_settings(tmp_path) -> dict[str, str]:
    return {
        "pypi.storage": "file",
        "storage.dir": str(tmp_path / "packages"),
        "db.url": f"sqlite:///{tmp_path / 'index.sqlite'}",
        "pypi.auth": "sql",
    }


@pytest.fixture
def cli(monkeypatch, capsys):
    def call(main, *argv, stdin=""):
        return run(main, list(argv), stdin, monkeypatch, capsys)

    return call


@pytest.fixture
def migrated(tmp_path, sql_settings, cli):
    """An ini deployment's users exported and imported into the database; the new ini's path."""
    old_ini = write_ini(
        tmp_path / "old.ini",
        {
            "user.admin": HASHES["admin"],
            "user.alice": HASHES["alice"],
            "user.bob": HASHES["bob"],
            "auth.admins": "admin",
            "package.team-lib.user.alice": "rw",
            # team-lib has grants, so only they count (1.x): bob reads through his own.
            "package.team-lib.user.bob": "r",
        },
    )
    code, out, err = cli(access_cli.export_main, old_ini)
    assert code == 0, err
    assert "3 users" in err
    (tmp_path / "access.json").write_text(out, encoding="utf-8")
    new_ini = write_ini(tmp_path / "new.ini", sql_settings)
    code, _, err = cli(access_cli.import_main, new_ini, str(tmp_path / "access.json"))
    assert code == 0, err
    return new_ini


def test_imported_users_log_in_and_keep_their_grants(make_app, migrated, sql_settings):
    app = make_app(sql_settings)
    assert upload_dist(app, WHEEL, user="alice").status_int == 200
    assert_rejected(upload(app, *make_wheel("team-lib", "1.1"), user="bob"), 403, "may not")
    assert project_names(app, user="bob") == ["team-lib"]
    response = app.get("/simple/team-lib/", headers=auth_headers("alice", "wrong"), expect_errors=True)
    assert response.status_int == 401


def test_changes_through_ppc_access_apply_to_a_running_server(make_app, migrated, sql_settings, cli):
    app = make_app(sql_settings)
    upload_dist(app, WHEEL, user="alice")
    code, _, err = cli(access_cli.access_main, migrated, "add-user", "carol", stdin="carol-pw\n")
    assert code == 0, err
    code, _, err = cli(access_cli.access_main, migrated, "grant", "Team_Lib", "user", "carol", "rw")
    assert code == 0, err
    a_second_passes(app)
    assert (
        upload_dist(app, make_wheel("team-lib", "1.1"), user="carol", password="carol-pw").status_int == 200
    )

    code, _, err = cli(access_cli.access_main, migrated, "set-password", "carol", stdin="new-pw\n")
    assert code == 0, err
    code, _, err = cli(access_cli.access_main, migrated, "revoke", "team-lib", "user", "alice")
    assert code == 0, err
    a_second_passes(app)
    response = app.get("/simple/team-lib/", headers=auth_headers("carol", "carol-pw"), expect_errors=True)
    assert response.status_int == 401  # the cached login ended with the change
    assert app.get("/simple/", headers=auth_headers("carol", "new-pw")).status_int == 200
    assert_rejected(upload(app, *make_wheel("team-lib", "1.2"), user="alice"), 403, "may not")

    code, out, _ = cli(access_cli.access_main, migrated, "list")
    assert code == 0
    assert "user  admin (admin)" in out
    assert "grant team-lib user carol rw" in out
    assert "grant team-lib user alice" not in out


@pytest.mark.parametrize(
    "argv,stdin,message",
    [
        (["add-user", "alice"], "pw\n", "exists already"),
        (["add-user", "new user"], "pw\n", "Invalid user name"),
        (["add-user", "dave"], "\n", "the password is empty"),
        (["delete-user", "nobody"], "", "No such user"),
        (["grant", "lib", "user", "nobody", "r"], "", "No such user"),
        (["add-group", "qa", "alice", "ghost"], "", "no such user: ghost"),
        (["add-group", "everyone"], "", "built-in group"),
    ],
)
def test_refused_changes_exit_1_and_change_nothing(migrated, cli, argv, stdin, message):
    before = cli(access_cli.export_main, migrated)[1]
    code, _, err = cli(access_cli.access_main, migrated, *argv, stdin=stdin)
    assert code == 1
    assert message in err
    assert cli(access_cli.export_main, migrated)[1] == before


def test_the_ini_backend_cannot_be_edited(tmp_path, cli):
    ini = write_ini(tmp_path / "ini-users.ini", {"user.admin": HASHES["admin"]})
    code, _, err = cli(access_cli.access_main, ini, "delete-user", "admin")
    assert code == 2
    assert "pypi.auth = sql" in err
    code, _, err = cli(access_cli.import_main, ini, "-", stdin='{"version": 1}')
    assert code == 2


def test_import_of_a_bad_file_writes_nothing(tmp_path, migrated, cli):
    before = cli(access_cli.export_main, migrated)[1]
    bad = {
        "version": 1,
        "users": {"mallory": {"password_hash": HASHES["bob"]}},
        "groups": {"dev": {"members": ["ghost"]}},
    }
    code, _, err = cli(access_cli.import_main, migrated, "-", stdin=json.dumps(bad))
    assert code == 1 and "unknown user 'ghost'" in err
    code, _, err = cli(access_cli.import_main, migrated, "-", stdin="{not json")
    assert code == 2 and "cannot read" in err
    assert cli(access_cli.export_main, migrated)[1] == before


def test_import_replace_removes_what_the_file_does_not_hold(tmp_path, migrated, cli):
    doc = json.loads(cli(access_cli.export_main, migrated)[1])
    del doc["users"]["bob"]
    del doc["packages"]["team-lib"]["users"]["bob"]
    path = tmp_path / "smaller.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert cli(access_cli.import_main, migrated, str(path))[0] == 0
    assert "bob" in json.loads(cli(access_cli.export_main, migrated)[1])["users"]  # merge
    assert cli(access_cli.import_main, migrated, str(path), "--replace")[0] == 0
    assert "bob" not in json.loads(cli(access_cli.export_main, migrated)[1])["users"]


def test_health_names_the_access_database(make_app, sql_settings):
    app = make_app(sql_settings)
    app.app.registry.service.access.create_user("admin", HASHES["admin"], admin=True)
    body = app.get("/health", headers=auth_headers("admin")).json
    assert body["access"] == {"ok": True, "backend": "SQLAccess"}


# ---------------------------------------------------------------------------
# API tokens: made with ppc-access, used as the password of user __token__
# ---------------------------------------------------------------------------
def a_second_passes(app) -> None:
    """The server's next look at the access data (it checks for changes once a second)."""
    app.app.registry.service.access._checked_at = float("-inf")


def token_headers(token: str) -> dict[str, str]:
    return auth_headers("__token__", token)


def add_token(cli, ini, *argv) -> str:
    code, out, err = cli(access_cli.access_main, ini, "add-token", *argv)
    assert code == 0, err
    assert "it is not shown again" in err
    return out.strip()


def test_upload_token_for_one_project(make_app, migrated, sql_settings, cli):
    app = make_app(sql_settings)
    token = add_token(
        cli, migrated, "alice", "--project", "Team.Lib", "--upload", "--description", "release job"
    )
    response = upload(app, *WHEEL, user="__token__", password=token)
    assert response.status_int == 200
    record = app.app.registry.service.index.get(WHEEL[0])
    assert record.uploader == "alice"  # the token's user, not "__token__"
    other = make_wheel("other-lib", "1.0")
    assert_rejected(upload(app, *other, user="__token__", password=token), 403, "may not")
    assert app.app.registry.service.index.get(other[0]) is None
    # Reading: the token sees only its project.
    listing = app.get(
        "/simple/", headers={**token_headers(token), "Accept": "application/vnd.pypi.simple.v1+json"}
    )
    assert [p["name"] for p in listing.json["projects"]] == ["team-lib"]
    # Deleting takes a password.
    response = app.delete(
        f"/api/package/team-lib/{WHEEL[0]}", headers=token_headers(token), expect_errors=True
    )
    assert response.status_int == 403
    assert app.app.registry.service.index.get(WHEEL[0]) is not None

    code, out, _ = cli(access_cli.access_main, migrated, "list-tokens", "alice")
    assert code == 0 and "release job" in out and token not in out


def test_read_token_cannot_upload_and_revoked_token_is_401(make_app, migrated, sql_settings, cli):
    app = make_app(sql_settings)
    upload_dist(app, WHEEL, user="alice")
    token = add_token(cli, migrated, "bob", "--expires-days", "1")
    a_second_passes(app)
    assert app.get("/simple/team-lib/", headers=token_headers(token)).status_int == 200
    wheel = make_wheel("team-lib", "1.1")
    assert_rejected(upload(app, *wheel, user="__token__", password=token), 403, "may not")
    token_id = token.split("_")[1]
    code, _, err = cli(access_cli.access_main, migrated, "delete-token", token_id)
    assert code == 0, err
    a_second_passes(app)
    response = app.get("/simple/team-lib/", headers=token_headers(token), expect_errors=True)
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_admin_token_cannot_rebuild_the_index(make_app, migrated, sql_settings, cli):
    app = make_app(sql_settings)
    token = add_token(cli, migrated, "admin", "--upload")
    response = app.post("/admin/rebuild", headers=token_headers(token), expect_errors=True)
    assert response.status_int == 403
    assert app.post("/admin/rebuild", headers=auth_headers("admin")).status_int == 200


def test_add_token_refusals(migrated, cli):
    code, _, err = cli(access_cli.access_main, migrated, "add-token", "nobody")
    assert code == 1 and "No such user" in err
    code, _, err = cli(access_cli.access_main, migrated, "add-token", "bob", "--expires-days", "-1")
    assert code == 1
    code, _, err = cli(access_cli.access_main, migrated, "add-token", "bob", "--expires-days", "99999999")
    assert code == 1 and "between 0 (never) and 3650" in err
    code, out, _ = cli(access_cli.access_main, migrated, "list-tokens")
    assert out == ""
