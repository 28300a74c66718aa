"""A real server switched onto pypicloud 1.x's data: pip installs what 1.3.12 stored.

The data is what 1.3.12 itself wrote (``tests/fixtures/pypicloud1x/``, made by
its ``make_fixtures.py``): its file-storage folder, copied, and its S3 objects
loaded into the moto server. The ini keeps 1.x's defaults of the
``ppc-make-config`` dev template (``default_read = everyone``,
``default_write = authenticated``).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.helpers import api_files, client_env, ok, pip_cmd, run, twine_upload
from tests.fixtures.s3 import s3_settings

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pypicloud1x"
DATASET = json.loads((FIXTURES / "dataset.json").read_text(encoding="utf-8"))
V1_DEFAULTS = {"pypi.default_read": "everyone", "pypi.default_write": "authenticated"}


def pip_install(srv, target: Path, env, *requirements: str) -> None:
    # Anonymous, as 1.x's default_read = everyone allowed.
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
                f"{srv.url}/simple/",
                *requirements,
            ),
            env,
        )
    )


def assert_listed_as_1x_left_them(srv, summaries: dict[str, str] | None = None) -> None:
    for project, name in (("alpha", "alpha"), ("beta-pkg", "Beta_Pkg")):
        listed = api_files(srv, project)
        expected = [e for e in DATASET if e["name"] == name]
        assert sorted(listed) == sorted(e["filename"] for e in expected)
        for entry in expected:
            got = listed[entry["filename"]]
            assert (got["version"], got["sha256"], got["uploader"]) == (
                entry["version"],
                entry["sha256"],
                entry["uploader"],
            )
            assert got["summary"] == (summaries or {}).get(entry["filename"], entry["summary"])


def test_pip_installs_from_a_1x_storage_folder(server_factory, tmp_path, dists):
    folder = tmp_path / "v1-packages"
    shutil.copytree(FIXTURES / "files", folder)
    (folder / "alpha" / "notes.txt").write_text("not a package\n")
    srv = server_factory({**V1_DEFAULTS, "storage.dir": str(folder)})

    log = srv.stderr_text()
    assert f"{len(DATASET)} package files in pypicloud 1.x's layout" in log
    assert "1 files are not served" in log and str(folder / "alpha" / "notes.txt") in log
    assert_listed_as_1x_left_them(srv)

    env = client_env(tmp_path / "client")
    pip_install(srv, tmp_path / "site", env, "alpha==1.1", "Beta_Pkg==2.0")
    installed = sorted(p.name for p in (tmp_path / "site").iterdir() if p.name.endswith(".dist-info"))
    assert installed == ["Beta_Pkg-2.0.dist-info", "alpha-1.1.dist-info"]

    # A new upload lands in the new layout beside 1.x's folders and installs too.
    wheel, _ = dists.build("3.0")
    ok(twine_upload(srv, [wheel], env, user="alice"))
    assert (folder / dists.canonical / wheel.name).is_file()
    assert (folder / "alpha" / "1.1" / "alpha-1.1-py3-none-any.whl").is_file()  # untouched
    pip_install(srv, tmp_path / "site2", env, f"{dists.canonical}==3.0")

    # After a restart on an empty index (the rebuild path) nothing is lost.
    srv.stop()
    (srv.base / "pypicloud.sqlite").unlink()
    srv.start()
    assert_listed_as_1x_left_them(srv)
    assert wheel.name in api_files(srv, dists.canonical)


def test_pip_installs_from_a_1x_bucket(server_factory, moto_server, s3_client, s3_bucket, tmp_path):
    objects = json.loads((FIXTURES / "s3-objects.json").read_text())["objects"]
    for obj in objects:
        s3_client.put_object(
            Bucket=s3_bucket, Key=obj["key"], Body=base64.b64decode(obj["body"]), Metadata=obj["metadata"]
        )
    srv = server_factory({**V1_DEFAULTS, **s3_settings(moto_server, s3_bucket), "storage.dir": None})
    summaries = {o["key"].rsplit("/", 1)[1]: o["metadata"]["summary"] for o in objects}
    assert_listed_as_1x_left_them(srv, summaries)
    env = client_env(tmp_path / "client")
    pip_install(srv, tmp_path / "site", env, "alpha==1.1", "beta-pkg==2.0")
    installed = sorted(p.name for p in (tmp_path / "site").iterdir() if p.name.endswith(".dist-info"))
    assert installed == ["Beta_Pkg-2.0.dist-info", "alpha-1.1.dist-info"]
