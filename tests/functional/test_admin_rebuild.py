"""Rebuilding the index from storage: at start-up, by an admin over HTTP, and with ppc-reindex."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from pypicloud.service import record_to_metadata
from tests.functional.helpers import (
    HASHES,
    auth_headers,
    make_sdist,
    make_wheel,
    restart,
    service,
    simple_json,
    upload_dist,
)


def listed(app, project: str) -> list[str]:
    response = app.get(
        f"/simple/{project}/",
        headers=auth_headers("admin", Accept="application/vnd.pypi.simple.v1+json"),
        expect_errors=True,
    )
    return [] if response.status_int == 404 else [f["filename"] for f in response.json["files"]]


def test_admin_rebuild_restores_lost_rows(app):
    wheel, sdist = make_wheel("demo", "1.0"), make_sdist("demo", "1.0")
    upload_dist(app, wheel)
    upload_dist(app, sdist)
    index = service(app).index
    index.remove(wheel[0])
    assert listed(app, "demo") == [sdist[0]]

    assert app.post("/admin/rebuild", expect_errors=True).status_int == 401
    assert app.post("/admin/rebuild", headers=auth_headers("bob"), expect_errors=True).status_int == 403
    response = app.post("/admin/rebuild", headers=auth_headers("admin"))
    assert response.json["files"] == 2
    assert sorted(listed(app, "demo")) == sorted([wheel[0], sdist[0]])
    # The rebuilt row is the uploaded one, PEP 658 metadata included.
    page = simple_json(app, "/simple/demo/")
    entry = next(f for f in page.json["files"] if f["filename"] == wheel[0])
    assert entry["core-metadata"] and entry["size"] == len(wheel[1])


@pytest.mark.parametrize("graceful", ["true", "false"])
def test_rebuild_follows_storage_exactly(make_app, graceful):
    app = make_app({"db.graceful_reload": graceful})
    kept, gone = make_wheel("demo", "1.0"), make_wheel("demo", "2.0")
    upload_dist(app, kept)
    upload_dist(app, gone)
    storage = service(app).storage
    # Outside the server: one file removed from storage, one added by hand.
    storage.delete("demo", gone[0])
    record = (
        service(app).index.get(kept[0]).replace(filename="other-1.0.tar.gz", project="other", name="other")
    )
    storage.put("other", "other-1.0.tar.gz", io.BytesIO(b"x" * 10), record_to_metadata(record))
    app.post("/admin/rebuild", headers=auth_headers("admin"))
    assert listed(app, "demo") == [kept[0]]
    assert listed(app, "other") == ["other-1.0.tar.gz"]


def test_empty_index_is_rebuilt_at_start_up(app, tmp_path):
    upload_dist(app, make_wheel("demo", "1.0"))
    (tmp_path / "index.sqlite").unlink()
    for extra in ("index.sqlite-wal", "index.sqlite-shm"):
        (tmp_path / extra).unlink(missing_ok=True)
    again = restart(app)
    try:
        assert listed(again, "demo") == ["demo-1.0-py3-none-any.whl"]
    finally:
        service(again).index.close()


def test_ppc_reindex_command(app, tmp_path):
    upload_dist(app, make_wheel("demo", "1.0"))
    service(app).index.replace_all([])
    ini = tmp_path / "reindex.ini"
    ini.write_text(
        "[app:main]\nuse = egg:pypicloud\n"
        f"storage.dir = {tmp_path / 'packages'}\n"
        f"db.url = sqlite:///{tmp_path / 'index.sqlite'}\n"
        f"user.admin = {HASHES['admin']}\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ppc-reindex"), str(ini)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "index rebuilt: 1 files" in result.stderr
    assert listed(app, "demo") == ["demo-1.0-py3-none-any.whl"]


def test_ppc_reindex_reports_a_bad_setting(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text("[app:main]\nuse = egg:pypicloud\npypi.storage = nosuch\n", encoding="utf-8")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ppc-reindex"), str(ini)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "pypi.storage" in result.stderr
