"""A real server started on a whole pypicloud 1.x deployment: its storage folder,
its index database or Redis (``db.url``) and its SQL access database, as 1.3.12
left them. pip installs every package as the 1.x users, with their 1.x
passwords; the upgrade leaves 1.x's index data untouched (issue 10, "Done when").
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.e2e.helpers import ok, pip_cmd, run
from tests.fixtures.v1.make_sql_access import USERS
from tests.fixtures.v1_index import V1X, v1_index  # noqa: F401

pytestmark = pytest.mark.e2e

DATASET = json.loads((V1X / "dataset.json").read_text(encoding="utf-8"))
V1 = V1X.parent / "v1"


def test_1x_deployment_with_its_index_and_users(v1_index, server_factory, tmp_path, cenv):
    settings, snapshot = v1_index
    before = snapshot()
    folder = tmp_path / "v1-packages"
    shutil.copytree(V1X / "files", folder)
    access = tmp_path / "access-1x.sqlite"
    shutil.copy(V1 / "access-1.3.12.sqlite", access)
    srv = server_factory(
        {
            **settings,
            "storage.dir": str(folder),
            "pypi.auth": "sql",
            "auth.db.url": f"sqlite:///{access}",
            "pypi.default_read": "authenticated",
            "auth.admins": None,
            "user.admin": None,
            "user.alice": None,
        }
    )

    # Every 1.x file, with 1.x's uploader and summary, as the 1.x admin sees it.
    for project, name in (("alpha", "alpha"), ("beta-pkg", "Beta_Pkg")):
        status, _, body = srv.request(
            "GET", f"/api/package/{project}/", user="root", password=USERS["root"][0]
        )
        assert status == 200, body[:300]
        listed = {p["filename"]: p for p in json.loads(body)["packages"]}
        expected = [e for e in DATASET if e["name"] == name]
        assert sorted(listed) == sorted(e["filename"] for e in expected)
        for entry in expected:
            got = listed[entry["filename"]]
            assert (got["version"], got["sha256"], got["uploader"], got["summary"]) == (
                entry["version"],
                entry["sha256"],
                entry["uploader"],
                entry["summary"],
            )

    # Anonymous callers are refused (default_read = authenticated) ...
    assert srv.request("GET", "/simple/alpha/")[0] == 401
    # ... and 1.x users install with their 1.x passwords.
    for user in ("alice", "dave.smith"):
        target = tmp_path / f"site-{user}"
        url = f"http://{user}:{USERS[user][0]}@127.0.0.1:{srv.port}/simple/"
        ok(
            run(
                pip_cmd(
                    "install",
                    "--no-cache-dir",
                    "--no-deps",
                    "--only-binary",
                    ":all:",
                    "--target",
                    str(target),
                    "--index-url",
                    url,
                    "alpha==1.1",
                    "Beta_Pkg==2.0",
                ),
                cenv,
            )
        )
        assert sorted(p.name for p in target.glob("*.dist-info")) == [
            "Beta_Pkg-2.0.dist-info",
            "alpha-1.1.dist-info",
        ]

    srv.stop()
    assert snapshot() == before  # 1.x's index tables / keys as 1.3.12 wrote them
