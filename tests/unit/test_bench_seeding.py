"""Seeding the comparison's targets (benchmarks.seeding): files put where each server reads them.

The in-memory ceiling serves at start-up what its folder holds; pypiserver's folder is
flat; pypicloud 1.x's layout is ``<project>/<version>/<file>`` with a JSON sidecar its
``reload_from_storage`` reads. Nothing is started or timed here.
"""

from __future__ import annotations

import hashlib
import json
import os

from benchmarks import ceiling, seeding
from benchmarks.peers import Target


def _read_and_close(handle, size) -> list[bytes]:
    with handle:
        return [handle.read()]


def _call(app, path: str, accept: str = "text/html") -> tuple[str, bytes]:
    got = {}

    def start_response(status, headers):
        got["status"] = status

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "HTTP_ACCEPT": accept}
    environ["wsgi.file_wrapper"] = _read_and_close
    body = b"".join(app(environ, start_response))
    return got["status"], body


def _target(key: str, **info) -> Target:
    target = Target(key, key, server=None, ready_path="/")  # type: ignore[arg-type]
    target.info.update(info)
    return target


def test_the_ceiling_serves_what_was_seeded_into_its_folder(tmp_path):
    dists = seeding.lean_dists(1, 3)  # projects 1 and 2 of the corpus
    seeding.SEEDERS["ceiling"](_target("ceiling", packages=str(tmp_path)), dists, "")
    app = ceiling.CeilingIndex(str(tmp_path))
    status, page = _call(app, f"/simple/{dists[1].project}/")
    assert status == "200 OK"
    sha256 = hashlib.sha256(dists[1].data).hexdigest()
    assert f"/api/package/{dists[1].project}/{dists[1].filename}#sha256={sha256}".encode() in page
    status, root = _call(app, "/simple/", accept="application/vnd.pypi.simple.v1+json")
    assert {p["name"] for p in json.loads(root)["projects"]} == {d.project for d in dists}
    status, data = _call(app, f"/api/package/{dists[0].project}/{dists[0].filename}")
    assert data == dists[0].data


def test_pypiserver_gets_a_flat_folder_and_pypicloud_1x_its_own_layout(tmp_path):
    dists = seeding.lean_dists(1, 2)
    flat = tmp_path / "flat"
    seeding.SEEDERS["pypiserver"](_target("pypiserver", packages=str(flat)), dists, "")
    assert os.listdir(flat) == [dists[0].filename]

    v1, db = tmp_path / "v1", tmp_path / "db.sqlite"
    db.write_bytes(b"the old cache")
    seeding.SEEDERS["pypicloud1"](_target("pypicloud1", packages=str(v1), db=str(db)), dists, "")
    stored = v1 / dists[0].project / "1.0.0" / dists[0].filename
    assert stored.read_bytes() == dists[0].data
    meta = json.loads((v1 / dists[0].project / "1.0.0" / (dists[0].filename + ".meta")).read_text())
    assert meta["hash_sha256"] == hashlib.sha256(dists[0].data).hexdigest()
    assert not db.exists()  # 1.x rebuilds an empty cache from storage at start-up


def test_a_target_that_cannot_be_seeded_is_not_grown_past_its_budget():
    devpi = _target("devpi", api_files_per_s=5.0)  # no server: an upload would fail loudly
    got = seeding.api_grow(devpi, "Basic x", seeding.lean_dists(1, 101), budget_s=10)
    assert got["reason"].startswith("100 more files through its upload API at 5.0 files/s")
