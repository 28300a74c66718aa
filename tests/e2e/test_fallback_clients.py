"""Real pip and uv through a real server whose upstream fallback points at a fake upstream (SPEC 9).

The server is a ``pserve`` process (tests/fixtures/server.py); the upstream is
the loopback HTTP server of tests/fixtures/upstream.py, running in this test
process, which counts what it is asked.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.helpers import (
    PYTHON,
    UV,
    api_files,
    index_url,
    installed_version,
    ok,
    parse_downloads,
    pip_cmd,
    run,
    stored_packages,
)
from tests.fixtures.server import sha256_file

pytestmark = pytest.mark.e2e

PROJECT = "acme-widget"


@pytest.fixture
def upstream_dists(fake_upstream, dists):
    """Acme.Widget 1.0 and 1.1 (wheels with PEP 658 metadata, sdists) on the fake upstream."""
    for version in ("1.0", "1.1"):
        for path in dists.build(version):
            fake_upstream.add(dists.name, (path.name, path.read_bytes()))
    return fake_upstream


def test_pip_and_uv_install_through_the_pull_through_cache(
    server_factory, upstream_dists, dists, cenv, tmp_path
):
    upstream = upstream_dists
    # A page TTL of 0: every page request asks upstream, so the last install
    # below really runs with upstream gone, not from a remembered page.
    server = server_factory(
        {
            "pypi.fallback": "cache",
            "pypi.fallback_base_url": upstream.url,
            "pypi.fallback_page_ttl": "0",
            "pypi.fallback_timeout": "10",
        }
    )
    wheel_10, wheel_11 = dists.wheel("1.0"), dists.wheel("1.1")

    # pip, as alice (a plain reader: in the default pypi.cache_update = authenticated).
    target = tmp_path / "pip-target"
    log = ok(
        run(
            pip_cmd(
                "install",
                "--target",
                str(target),
                "--no-cache-dir",
                "-v",
                "--index-url",
                index_url(server, "alice"),
                "acme.widget==1.0",
            ),
            cenv,
        )
    )
    assert installed_version(target) == "1.0"
    # pip took the dependency data from the PEP 658 file, served through our URL.
    assert re.search(
        rf"{re.escape(server.url)}/packages/{PROJECT}/"
        rf"{re.escape(wheel_10.name)}\.metadata",
        log,
    ), log
    assert upstream.url not in log and f"127.0.0.1:{upstream.port}" not in log
    # The wheel is stored now, byte for byte what upstream published, from upstream.
    assert stored_packages(server, PROJECT) == {wheel_10.name: sha256_file(wheel_10)}
    listed = api_files(server, PROJECT)
    assert listed[wheel_10.name]["uploader"] == "(upstream)"
    assert upstream.hits(f"/files/{wheel_10.name}") == 1

    # uv, another version.
    target_uv = tmp_path / "uv-target"
    ok(
        run(
            [
                UV,
                "pip",
                "install",
                "--target",
                str(target_uv),
                "--python",
                PYTHON,
                "--index-url",
                index_url(server, "alice"),
                "acme-widget==1.1",
            ],
            cenv,
        )
    )
    assert installed_version(target_uv) == "1.1"
    assert stored_packages(server, PROJECT) == {
        wheel_10.name: sha256_file(wheel_10),
        wheel_11.name: sha256_file(wheel_11),
    }
    file_requests = upstream.count("/files/")

    # Upstream goes away: what is cached still installs, from local storage only.
    upstream.stop()
    target_again = tmp_path / "pip-again"
    log = ok(
        run(
            pip_cmd(
                "install",
                "--target",
                str(target_again),
                "--no-cache-dir",
                "-v",
                "--index-url",
                index_url(server, "alice"),
                "acme.widget==1.0",
            ),
            cenv,
        )
    )
    assert installed_version(target_again) == "1.0"
    assert [d for d in parse_downloads(log) if not d.endswith(".metadata")] == [wheel_10.name]
    assert upstream.count("/files/") == file_requests
    # A project never cached answers a clear 503 meanwhile (pip reports the failure).
    status, _, body = server.request("GET", "/simple/never-cached/", user="alice")
    assert status == 503, (status, body)
    assert b"unavailable" in body and b"Traceback" not in body


def test_pip_follows_the_redirect_mode_to_upstream(server_factory, upstream_dists, dists, cenv, tmp_path):
    upstream = upstream_dists
    server = server_factory({"pypi.fallback": "redirect", "pypi.fallback_base_url": upstream.url})
    target = tmp_path / "target"
    ok(
        run(
            pip_cmd(
                "install",
                "--target",
                str(target),
                "--no-cache-dir",
                "--index-url",
                index_url(server, "alice"),
                "acme.widget==1.1",
            ),
            cenv,
        )
    )
    assert installed_version(target) == "1.1"
    # pip got the page and the file from upstream itself; nothing was stored here.
    assert upstream.count(f"/simple/{PROJECT}/") >= 1
    assert upstream.hits(f"/files/{dists.wheel('1.1').name}") == 1
    assert stored_packages(server, PROJECT) == {}
