"""Upgrading from pypicloud 1.x: the same ini's ``db.url`` finds 1.x's index data (issue 10).

A 1.x site kept its metadata cache in an SQL table (``packages``, on SQLite or
PostgreSQL) or in Redis keys (``pypicloud:set``, ``pypicloud:package:<file>``,
...), where ``db.url`` points. The upgraded server is started with the same
``pypi.db`` / ``db.url`` and the same storage folder. Its own index lives
beside 1.x's data (``ppc_*`` tables, other Redis key names) and is rebuilt from
storage, so every package is listed with its uploader and summary, and 1.x's
tables / keys are left exactly as 1.3.12 wrote them (a 1.x server started
again on them still works). The data is what 1.3.12 itself wrote
(``tests/fixtures/pypicloud1x/make_index_fixtures.py``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name as canonical

from tests.fixtures.v1.make_sql_access import USERS
from tests.fixtures.v1_index import REDIS_DUMP, V1X, sql_snapshot, v1_index  # noqa: F401
from tests.functional.helpers import JSON_TYPE, auth_headers, make_wheel, upload_dist
from tests.functional.test_upgrade_storage import DATASET, assert_serves_the_dataset


@pytest.fixture
def v1_dir(tmp_path) -> Path:
    target = tmp_path / "packages"
    shutil.copytree(V1X / "files", target)
    return target


def test_the_index_fixtures_are_what_1x_wrote():
    """1.x's cache names every file of the dataset with its uploader and summary."""
    rows = sql_snapshot(f"sqlite:///{V1X / 'index-1.3.12.sqlite'}")
    assert [r[0] for r in rows] == sorted(e["filename"] for e in DATASET)
    by_file = {e["filename"]: e for e in DATASET}
    for filename, name, version, _, summary, data in rows:
        entry = by_file[filename]
        # 1.x's cache keeps the canonical name (1.x normalised it), the display name is lost.
        assert (name, version, summary) == (canonical(entry["name"]), entry["version"], entry["summary"])
        assert json.loads(data)["uploader"] == entry["uploader"]
    # 1.x's Redis layout: one hash per file, a set of names, a set and a summary per name.
    assert REDIS_DUMP["pypicloud:set"]["value"] == ["alpha", "beta-pkg"]
    for entry in DATASET:
        stored = REDIS_DUMP[f"pypicloud:package:{entry['filename']}"]
        assert stored["type"] == "hash"
        # 1.x wrote the extra fields JSON-encoded, the others as plain text.
        assert json.loads(stored["value"]["uploader"]) == entry["uploader"]
        assert stored["value"]["summary"] == entry["summary"]


def test_same_ini_serves_everything_and_leaves_1x_index_data_alone(v1_index, v1_dir, make_app):
    settings, snapshot = v1_index
    before = snapshot()
    assert before, "1.x's index data was not loaded"

    app = make_app(settings)
    assert_serves_the_dataset(app)
    assert snapshot() == before

    # A restart on the same database (index no longer empty) still lists all of it.
    again = make_app(settings)
    assert_serves_the_dataset(again)
    assert snapshot() == before

    # Writes of the new server do not touch 1.x's data either.
    upload_dist(again, make_wheel("alice-pkg", "1.0"), user="alice")
    again.get("/simple/alice-pkg/", headers=auth_headers("alice"), status=200)
    assert snapshot() == before


def test_one_1x_database_for_index_and_users(v1_dir, make_app, tmp_path):
    """pypicloud-docker's compose inis point db.url and auth.db.url at one database."""
    import sqlite3

    path = tmp_path / "v1-shared.sqlite"
    shutil.copy(V1X.parent / "v1" / "access-1.3.12.sqlite", path)
    source = sqlite3.connect(V1X / "index-1.3.12.sqlite")
    target = sqlite3.connect(path)
    with target:  # 1.x's own DDL and rows of its index table, beside its access tables
        for statement in source.iterdump():
            if statement not in ("BEGIN TRANSACTION;", "COMMIT;"):
                target.execute(statement)
    source.close()
    target.close()
    url = f"sqlite:///{path}"
    before = sql_snapshot(url)
    app = make_app(
        {
            "pypi.db": "sql",
            "db.url": url,
            "pypi.auth": "sql",
            "auth.db.url": url,
            "auth.admins": None,
            "user.admin": None,
            "user.alice": None,
            "user.bob": None,
            "package.alice-pkg.user.alice": None,
        }
    )
    root = auth_headers("root", USERS["root"][0])
    simple = app.get("/simple/", headers={**root, "Accept": JSON_TYPE})
    assert sorted(p["name"] for p in simple.json["projects"]) == ["alpha", "beta-pkg"]
    for entry in DATASET:
        project = canonical(entry["name"])
        listed = app.get(f"/api/package/{project}/", headers=root).json["packages"]
        got = next(f for f in listed if f["filename"] == entry["filename"])
        assert (got["uploader"], got["summary"]) == (entry["uploader"], entry["summary"])
    # A 1.x user of that database logs in with the 1.x password; a wrong one does not.
    carol = app.get(
        "/api/package/alpha/", headers=auth_headers("carol", USERS["carol"][0]), expect_errors=True
    )
    assert carol.status_int == 200
    app.get("/api/package/alpha/", headers=auth_headers("carol", "not-carol-pw"), status=401)
    assert sql_snapshot(url) == before
