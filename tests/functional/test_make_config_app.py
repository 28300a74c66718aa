"""ppc-make-config output is a working server: built with PasteDeploy, served through WebTest."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import webtest
from pyramid.paster import get_app

from pypicloud.cli import make_config
from tests.functional.helpers import JSON_TYPE, auth_headers, make_sdist, make_wheel, upload

ADMIN, PASSWORD = "boss", "correct horse"


@pytest.fixture
def generate(tmp_path, monkeypatch, capsys):
    """``generate(*flags)`` -> path of a config written by ppc-make-config's main()."""
    monkeypatch.setenv("PPC_TEST_ADMIN_PASSWORD", PASSWORD)
    apps: list = []

    def run(*flags: str, name: str = "server.ini"):
        out = tmp_path / name
        code = make_config.main(
            [*flags, "--admin", ADMIN, "--password-env", "PPC_TEST_ADMIN_PASSWORD", str(out)]
        )
        err = capsys.readouterr().err
        assert code == 0, err
        return out

    def serve(path) -> webtest.TestApp:
        wsgi = get_app(str(path))  # exactly what pserve builds
        apps.append(wsgi)
        return webtest.TestApp(wsgi)

    run.serve = serve
    yield run
    for wsgi in apps:
        wsgi.registry.service.index.close()
        wsgi.registry.service.storage.close()


def files_of(app, project: str, user=ADMIN, password=PASSWORD) -> dict[str, dict]:
    page = app.get(f"/simple/{project}/", headers=auth_headers(user, password, Accept=JSON_TYPE))
    return {f["filename"]: f for f in page.json["files"]}


def test_generated_dev_config_serves_and_its_admin_can_upload(generate, tmp_path):
    ini = generate("--dev")
    app = generate.serve(ini)
    assert app.get("/simple/").status_int == 200  # --dev: anyone may read

    wheel, sdist = make_wheel("demo", "1.0"), make_sdist("demo", "1.0")
    for filename, data in (wheel, sdist):
        upload(app, filename, data, user=ADMIN, password=PASSWORD, status=200)
    # The wrong password is refused; so is a user the file does not define.
    upload(app, *make_wheel("demo", "2.0"), user=ADMIN, password="wrong", status=401)
    upload(app, *make_wheel("demo", "2.0"), user="admin", password=PASSWORD, status=401)

    listed = files_of(app, "demo", user=None)
    assert set(listed) == {wheel[0], sdist[0]}
    assert listed[wheel[0]]["hashes"]["sha256"] == hashlib.sha256(wheel[1]).hexdigest()
    assert app.get(f"/api/package/demo/{wheel[0]}").body == wheel[1]
    assert b"Name: demo" in app.get(f"/api/package/demo/{wheel[0]}.metadata").body
    # Where --dev keeps things: beside the ini.
    assert (tmp_path / "data" / "packages" / "demo" / wheel[0]).read_bytes() == wheel[1]
    assert (tmp_path / "data" / "pypicloud.sqlite").exists()


def test_generated_prod_config_requires_login_to_read(generate, tmp_path):
    ini = generate("--prod", "--dir", "pkgs", "--db-url", "sqlite:///index.sqlite")
    app = generate.serve(ini)
    upload(app, *make_wheel("demo", "1.0"), user=ADMIN, password=PASSWORD, status=200)
    assert list(files_of(app, "demo")) == ["demo-1.0-py3-none-any.whl"]
    response = app.get("/simple/demo/", expect_errors=True)
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert "demo" not in app.get("/simple/").text  # absent for anonymous callers
    # Relative paths are relative to the ini file.
    assert (tmp_path / "pkgs" / "demo" / "demo-1.0-py3-none-any.whl").exists()
    assert (tmp_path / "index.sqlite").exists()


def test_generated_s3_config_serves_from_the_bucket(generate, moto_server, s3_bucket, s3_client):
    ini = generate(
        "--dev",
        "--bucket",
        s3_bucket,
        "--endpoint-url",
        moto_server,
        "--region",
        "us-east-1",
        "--prefix",
        "pkgs/",
    )
    app = generate.serve(ini)
    filename, data = make_wheel("demo", "1.0")
    upload(app, filename, data, user=ADMIN, password=PASSWORD, status=200)
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert any(k.startswith("pkgs/") and k.endswith("/demo/" + filename) for k in keys), keys
    response = app.get(f"/api/package/demo/{filename}")
    assert response.status_int == 302
    with urllib.request.urlopen(response.headers["Location"], timeout=10) as fetched:
        assert fetched.read() == data


SCRIPT = Path(sys.executable).parent / "ppc-make-config"


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed")
def test_installed_script_never_waits_for_input_without_a_terminal(tmp_path):
    # stdin is an open pipe nobody writes to: the tool must not read it.
    out = tmp_path / "server.ini"
    with subprocess.Popen(
        [str(SCRIPT), str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            code = proc.wait(timeout=60)
        finally:
            proc.stdin.close()
            if proc.poll() is None:
                proc.kill()
        err = proc.stderr.read()
    assert code == 2, err
    assert "no password for the admin user" in err
    assert not out.exists()
