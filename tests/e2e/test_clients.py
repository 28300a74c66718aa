"""The real clients against a real server: twine, uv publish, pip and uv pip (SPEC sections 4, 5).

Every test starts its own ``pserve`` process (tests/fixtures/server.py) and
runs the clients of the project's virtualenv as subprocesses, isolated from
the user's configuration (tests/e2e/helpers.py: ``client_env``).
"""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.helpers import (
    PYTHON,
    UV,
    api_files,
    assert_index_matches_storage,
    index_url,
    installed_version,
    ok,
    parse_downloads,
    pip_cmd,
    run,
    simple_files,
    stored_packages,
    twine_upload,
)
from tests.fixtures.server import package_files, sha256_file, write_wheel

pytestmark = pytest.mark.e2e

PROJECT = "acme-widget"


def dist_info_dirs(target) -> list[str]:
    return sorted(p.name for p in target.iterdir() if p.name.endswith(".dist-info"))


# ---------------------------------------------------------------------------
# twine
# ---------------------------------------------------------------------------
def test_twine_upload_reupload_and_skip_existing(server_factory, dists, cenv, tmp_path):
    # alice may write this project (a plain writer, besides the admin).
    server = server_factory({"package.acme-widget.user.alice": "rw"})
    wheel, sdist = dists.build("1.0")
    out = ok(twine_upload(server, [wheel, sdist], cenv))
    assert "Uploading" in out

    stored = assert_index_matches_storage(server, PROJECT)
    assert stored == {wheel.name: sha256_file(wheel), sdist.name: sha256_file(sdist)}
    first = api_files(server, PROJECT)
    assert {r["name"] for r in first.values()} == {"Acme.Widget"}
    assert {r["version"] for r in first.values()} == {"1.0"}
    assert {r["uploader"] for r in first.values()} == {"admin"}
    # The non-canonical spelling redirects to the canonical page (PEP 503).
    status, headers, _ = server.request("GET", "/simple/Acme.Widget/", user="admin")
    assert status == 301 and headers["Location"].endswith(f"/simple/{PROJECT}/")

    # Re-running a release with identical bytes is a success that changes nothing.
    ok(twine_upload(server, [wheel, sdist], cenv))
    assert api_files(server, PROJECT) == first
    assert assert_index_matches_storage(server, PROJECT, download=False) == stored

    # --skip-existing: twine >= 6 refuses the flag for any index but PyPI's own
    # (a client-side check, "UnsupportedConfiguration"); where it runs it must succeed.
    result = twine_upload(server, [wheel, sdist], cenv, extra=["--skip-existing"])
    if result.returncode != 0:
        assert "UnsupportedConfiguration" in result.stdout, result.stdout
        assert "--skip-existing" in result.stdout

    # What --skip-existing relies on, through twine's own upload code: a
    # different file under an existing name is answered 409 "File already
    # exists", which twine's skip_upload() accepts as "already there".
    from twine.commands.upload import skip_upload
    from twine.package import PackageFile
    from twine.repository import Repository

    other_dir = tmp_path / "other"
    other_dir.mkdir()
    conflicting = write_wheel(other_dir, "Acme.Widget", "1.0", payload=b"VERSION = 'other'\n")
    assert conflicting.name == wheel.name and sha256_file(conflicting) != sha256_file(wheel)
    for user, password in (("alice", "alice-pw"), ("admin", "secret")):
        # Overwriting is off by default, for admins too (SPEC section 5).
        repository = Repository(f"{server.url}/simple/", user, password, disable_progress_bar=True)
        repository.session.trust_env = False  # no proxy or netrc of the environment
        try:
            for path, expected in ((conflicting, 409), (wheel, 200)):
                package = PackageFile.from_filename(str(path), None)
                response = repository.upload(package)
                assert response.status_code == expected, (user, response.status_code, response.text)
                if expected == 409:
                    assert response.text.startswith("File already exists"), response.text
                    assert skip_upload(response, True, package)
                    assert not skip_upload(response, False, package)
        finally:
            repository.close()
    # Nothing changed: the first file is still the one stored and served.
    assert assert_index_matches_storage(server, PROJECT) == stored


def test_wrong_password_and_read_only_user_store_nothing(server, dists, cenv):
    wheel, sdist = dists.build("1.0")
    result = twine_upload(server, [wheel, sdist], cenv, password="not-the-password")
    assert result.returncode != 0, result.stdout
    assert "401" in result.stdout, result.stdout

    # alice may read but not write: 403.
    result = twine_upload(server, [wheel], cenv, user="alice")
    assert result.returncode != 0, result.stdout
    assert "403" in result.stdout, result.stdout

    # An anonymous POST (no Authorization at all) is 401 with a challenge.
    body = (
        b'--b\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
        b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nAcme.Widget\r\n'
        b'--b\r\nContent-Disposition: form-data; name="version"\r\n\r\n1.0\r\n'
        b'--b\r\nContent-Disposition: form-data; name="content"; filename="'
        + wheel.name.encode()
        + b'"\r\n\r\n'
        + wheel.read_bytes()
        + b"\r\n--b--\r\n"
    )
    status, headers, _ = server.request(
        "POST", "/simple/", body=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert status == 401
    assert headers.get("WWW-Authenticate", "").startswith("Basic")

    assert package_files(server.storage_dir) == []
    assert stored_packages(server, PROJECT) == {}
    assert simple_files(server, PROJECT) is None  # 404
    assert api_files(server, PROJECT) is None
    status, _, body = server.request(
        "GET", "/simple/", user="admin", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    assert status == 200 and json.loads(body)["projects"] == []


# ---------------------------------------------------------------------------
# pip
# ---------------------------------------------------------------------------
def test_pip_install_reads_pep658_metadata(published, dists, cenv, tmp_path):
    target = tmp_path / "target"
    result = run(
        pip_cmd(
            "install",
            "--target",
            str(target),
            "--index-url",
            index_url(published),
            "-v",
            "--no-cache-dir",
            "acme.widget==1.0",
        ),
        cenv,
    )
    log = ok(result)
    assert installed_version(target) == "1.0"
    assert dist_info_dirs(target) == ["Acme_Widget-1.0.dist-info"]
    wheel = dists.wheel("1.0").name

    # pip took the dependency information from the PEP 658 file, not the wheel.
    assert re.search(
        rf"Obtaining dependency information for \S+ from "
        rf"{re.escape(published.url)}/packages/{PROJECT}/"
        rf"{re.escape(wheel)}\.metadata",
        log,
    ), log
    assert re.search(r"\S+\.whl\.metadata", log), log
    # The only distribution downloaded is the one installed.
    downloads = parse_downloads(log)
    assert wheel + ".metadata" in downloads, log
    assert [d for d in downloads if not d.endswith(".metadata")] == [wheel], log
    assert "admin:secret" not in log  # pip masks the password; nothing of ours echoed it


def test_pip_download_after_yank(published, dists, cenv, tmp_path):
    yanked = [dists.wheel("1.0").name, dists.sdist("1.0").name]
    for filename in yanked:
        status, _, body = published.request(
            "POST",
            f"/api/package/{PROJECT}/{filename}/yank",
            user="admin",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"reason": "broken build"}).encode(),
        )
        assert status == 200, body
        assert json.loads(body)["yanked"] is True
    page = simple_files(published, PROJECT)
    assert {n for n, f in page.items() if f["yanked"]} == set(yanked)
    assert page[yanked[0]]["yanked"] == "broken build"

    # Unpinned: the newest version that is not yanked.
    dest = tmp_path / "download"
    ok(
        run(
            pip_cmd(
                "download",
                "--no-deps",
                "--no-cache-dir",
                "-d",
                str(dest),
                "--index-url",
                index_url(published),
                "acme.widget",
            ),
            cenv,
        )
    )
    assert sorted(p.name for p in dest.iterdir()) == [dists.wheel("1.1").name]

    # A pin still installs a yanked release (PEP 592), with a warning.
    target = tmp_path / "target"
    log = ok(
        run(
            pip_cmd(
                "install",
                "--target",
                str(target),
                "--no-cache-dir",
                "--index-url",
                index_url(published),
                "acme.widget==1.0",
            ),
            cenv,
        )
    )
    assert installed_version(target) == "1.0"
    assert "yanked" in log.lower(), log  # pip warns about the yanked pick
    assert "broken build" in log, log

    # Yanking is kept in storage metadata: it survives a restart.
    published.restart()
    page = simple_files(published, PROJECT)
    assert {n for n, f in page.items() if f["yanked"]} == set(yanked)


# ---------------------------------------------------------------------------
# uv
# ---------------------------------------------------------------------------
def test_uv_pip_install(published, cenv, tmp_path):
    target = tmp_path / "target"
    ok(
        run(
            [
                UV,
                "pip",
                "install",
                "--target",
                str(target),
                "--python",
                PYTHON,
                "--index-url",
                index_url(published),
                "acme-widget",
            ],
            cenv,
        )
    )
    assert installed_version(target) == "1.1"
    assert dist_info_dirs(target) == ["Acme_Widget-1.1.dist-info"]

    # A second install of an exact pin from a fresh cache (uv reads PEP 658 too).
    target2 = tmp_path / "target2"
    ok(
        run(
            [
                UV,
                "pip",
                "install",
                "--target",
                str(target2),
                "--python",
                PYTHON,
                "--no-cache",
                "--index-url",
                index_url(published, "alice"),
                "Acme.Widget==1.0",
            ],
            cenv,
        )
    )
    assert installed_version(target2) == "1.0"


def test_uv_publish_then_pip_sees_it(published, dists, cenv, tmp_path):
    # uv publish only accepts normalised file names (acme_widget-1.2-...).
    wheel, sdist = dists.build("1.2", normalized=True)
    out = ok(
        run(
            [
                UV,
                "publish",
                "--publish-url",
                f"{published.url}/simple/",
                "-u",
                "admin",
                "-p",
                "secret",
                str(wheel),
                str(sdist),
            ],
            cenv,
        )
    )
    assert "skipping" not in out, out
    stored = assert_index_matches_storage(published, PROJECT)
    assert stored[wheel.name] == sha256_file(wheel)
    assert stored[sdist.name] == sha256_file(sdist)
    assert len(stored) == 6

    target = tmp_path / "target"
    log = ok(
        run(
            pip_cmd(
                "install",
                "--target",
                str(target),
                "--no-cache-dir",
                "-v",
                "--index-url",
                index_url(published, "alice"),
                "acme.widget",
            ),
            cenv,
        )
    )
    assert installed_version(target) == "1.2"
    assert wheel.name + ".metadata" in parse_downloads(log), log

    # Re-publishing the same files is accepted (identical bytes).
    ok(
        run(
            [
                UV,
                "publish",
                "--publish-url",
                f"{published.url}/simple/",
                "-u",
                "admin",
                "-p",
                "secret",
                str(wheel),
                str(sdist),
            ],
            cenv,
        )
    )
    assert assert_index_matches_storage(published, PROJECT, download=False) == stored


def test_uv_publish_wrong_password_fails(server, dists, cenv):
    wheel, _ = dists.build("1.2", normalized=True)
    result = run(
        [UV, "publish", "--publish-url", f"{server.url}/simple/", "-u", "admin", "-p", "wrong", str(wheel)],
        cenv,
    )
    assert result.returncode != 0, result.stdout
    assert "401" in result.stdout, result.stdout
    assert package_files(server.storage_dir) == []
    assert simple_files(server, PROJECT) is None
