"""A real server on pypicloud 1.3.12's access database, driven by twine and pip
as 1.x users with their 1.x passwords (issue 10, item 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.e2e.helpers import ok, pip_cmd, run, twine_upload
from tests.fixtures.server import DistSet
from tests.fixtures.v1.make_sql_access import USERS

V1 = Path(__file__).resolve().parent.parent / "fixtures" / "v1"


def index(server, user: str) -> str:
    return f"http://{user}:{USERS[user][0]}@127.0.0.1:{server.port}/simple/"


def test_1x_users_upload_and_install_with_their_1x_passwords(server_factory, tmp_path, cenv):
    database = tmp_path / "access-1x.sqlite"
    shutil.copy(V1 / "access-1.3.12.sqlite", database)
    server = server_factory(
        {
            "pypi.auth": "sql",
            "auth.db.url": f"sqlite:///{database}",
            "auth.admins": None,
            "user.admin": None,
            "user.alice": None,
        }
    )
    assert "Copied pypicloud 1.x's access data" in server.stderr_text()
    # 1.x granted group dev rw on "Mixed_Case.Lib" (its spelling): alice is in dev.
    dists = DistSet(tmp_path / "dists", name="Mixed_Case.Lib")
    (tmp_path / "dists").mkdir()
    ok(twine_upload(server, dists.build("1.0"), cenv, user="alice", password=USERS["alice"][0]))
    # root, a 1.x admin, may upload anywhere.
    ok(twine_upload(server, dists.build("1.1"), cenv, user="root", password=USERS["root"][0]))
    # bob (dev, pbkdf2_sha512 hash from 1.x) installs it.
    target = tmp_path / "bob-target"
    ok(
        run(
            pip_cmd(
                "install",
                "--target",
                str(target),
                "--no-cache-dir",
                "--index-url",
                index(server, "bob"),
                "mixed-case-lib==1.0",
            ),
            cenv,
        )
    )
    assert sorted(p.name for p in target.glob("*.dist-info")) == ["Mixed_Case_Lib-1.0.dist-info"]
    # carol has no grant on it: refused (403), nothing installed.
    target = tmp_path / "carol-target"
    result = run(
        pip_cmd(
            "install",
            "--target",
            str(target),
            "--no-cache-dir",
            "--index-url",
            index(server, "carol"),
            "mixed-case-lib",
        ),
        cenv,
    )
    assert result.returncode != 0
    assert "No matching distribution found for mixed-case-lib" in result.stdout
    assert not target.exists() or not list(target.glob("*.dist-info"))
    status, _, _ = server.request("GET", "/simple/mixed-case-lib/", user="carol", password=USERS["carol"][0])
    assert status == 403
    # dave.smith (bcrypt hash from 1.x, in ops) cannot upload to a dev-only project.
    result = twine_upload(
        server, dists.build("1.2"), cenv, user="dave.smith", password=USERS["dave.smith"][0]
    )
    assert result.returncode != 0 and "403" in result.stdout + (result.stderr or "")
    status, _, body = server.request(
        "GET",
        "/simple/mixed-case-lib/",
        user="root",
        password=USERS["root"][0],
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    assert status == 200
    listed = sorted(f["filename"] for f in json.loads(body)["files"])
    assert listed == sorted(p.name for v in ("1.0", "1.1") for p in dists.build(v))
