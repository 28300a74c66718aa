"""API tokens end to end: the real ppc-access, twine, pip and uv against a real server.

A CI job gets an upload token for one project from ``ppc-access add-token`` and
publishes with ``twine upload -u __token__``; installers read with a read-only
token in the index URL; a token for another project uploads nothing.
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import PYTHON, UV, api_files, ok, pip_cmd, run, twine_upload
from tests.fixtures.installed import installed_bin
from tests.fixtures.server import USERS, package_files

pytestmark = pytest.mark.e2e


def ppc_access(ini, *argv: str, stdin: str = "") -> str:
    import subprocess

    result = subprocess.run(
        [str(installed_bin() / "ppc-access"), str(ini), *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def sql_server(server_factory):
    """A server with pypi.auth = sql whose users were made with ppc-access before it started."""
    srv = server_factory({"pypi.auth": "sql"}, start=False)
    ini = srv.write_ini()
    ppc_access(ini, "add-user", "admin", "--admin", stdin=USERS["admin"] + "\n")
    ppc_access(ini, "add-user", "ci", stdin="ci-password\n")
    ppc_access(ini, "grant", "acme-widget", "user", "ci", "rw")
    srv.start()
    return srv


def test_ci_publishes_with_an_upload_token_and_installers_read_with_a_read_token(
    sql_server, dists, cenv, tmp_path
):
    ini = sql_server.ini_path
    upload_token = ppc_access(ini, "add-token", "ci", "--project", "Acme.Widget", "--upload")
    read_token = ppc_access(ini, "add-token", "ci")
    wheel, sdist = dists.build("1.0")

    ok(twine_upload(sql_server, [wheel, sdist], cenv, user="__token__", password=upload_token))
    files = api_files(sql_server, "acme-widget")
    assert set(files) == {wheel.name, sdist.name}
    assert {f["uploader"] for f in files.values()} == {"ci"}

    index = f"http://__token__:{read_token}@127.0.0.1:{sql_server.port}/simple/"
    target = tmp_path / "pip-target"
    ok(
        run(
            pip_cmd(
                "install", "--no-cache-dir", "--target", str(target), "--index-url", index, "acme-widget==1.0"
            ),
            cenv,
        )
    )
    assert (target / "acme_widget").is_dir()
    target = tmp_path / "uv-target"
    ok(
        run(
            [
                UV,
                "pip",
                "install",
                "--python",
                PYTHON,
                "--target",
                str(target),
                "--index-url",
                index,
                "acme-widget==1.0",
            ],
            cenv,
        )
    )
    assert (target / "acme_widget").is_dir()

    # The read token uploads nothing, and neither does the upload token elsewhere.
    wheel11, _ = dists.build("1.1")
    before = package_files(sql_server.storage_dir)
    result = twine_upload(sql_server, [wheel11], cenv, user="__token__", password=read_token)
    assert result.returncode != 0 and "403" in result.stdout
    assert package_files(sql_server.storage_dir) == before
