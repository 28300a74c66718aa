"""Several server processes on one deployment: shared S3 (moto server) and a shared index.

SPEC section 2 (scaled out): any process answers any request, an upload through
one is visible through every other at once, and they never disagree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.proxy import TcpProxy
from tests.fixtures.s3 import s3_settings
from tests.fixtures.server import child_env
from tests.fixtures.services import unique_name

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def shared_settings(kind: str, request, moto_server: str, bucket: str) -> dict:
    """Settings every process of one deployment shares: the bucket and the index."""
    settings = s3_settings(moto_server, bucket) | {
        "storage.dir": None,
        "storage.aws_access_key_id": "testing",
        "storage.aws_secret_access_key": "testing",
        "pypi.default_read": "authenticated",
    }
    if kind == "postgres":
        url, schema = request.getfixturevalue("postgres_schema")
        settings |= {"pypi.db": "sql", "db.url": url, "db.schema": schema}
    elif kind == "mariadb":
        url, _ = request.getfixturevalue("mariadb_database")
        settings |= {"pypi.db": "sql", "db.url": url}
    elif kind == "dynamo":
        from pypicloud.index.dynamo import DynamoIndex

        namespace = unique_name("ppc-scale") + "-"

        def drop():
            index = DynamoIndex(
                endpoint_url=moto_server, region_name="us-east-1", namespace=namespace, create=False
            )
            index.delete_tables()
            index.close()

        request.addfinalizer(drop)
        settings |= {
            "pypi.db": "dynamo",
            "db.endpoint_url": moto_server,
            "db.region_name": "us-east-1",
            "db.namespace": namespace,
        }
    else:
        url, prefix = request.getfixturevalue("redis_prefix")
        settings |= {"pypi.db": "redis", "db.url": url, "db.prefix": prefix}
    return settings


def twine_upload(server, *files: Path) -> None:
    result = subprocess.run(
        [
            str(BIN / "twine"),
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            server.url + "/simple/",
            "-u",
            "admin",
            "-p",
            "secret",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def pip_install(server, target: Path, requirement: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--target",
            str(target),
            "--index-url",
            server.auth_url() + "/simple/",
            requirement,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=child_env(),
    )


def location(server, project: str, filename: str) -> str:
    status, headers, _ = server.request("GET", f"/api/package/{project}/{filename}", user="admin")
    assert status == 302, status
    return headers["Location"]


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        pytest.param("redis", marks=pytest.mark.redis),
        "dynamo",
    ],
)
def test_two_processes_share_one_deployment(
    kind, request, server_factory, moto_server, s3_bucket, dists, tmp_path
):
    settings = shared_settings(kind, request, moto_server, s3_bucket)
    a = server_factory(settings, name="a")
    b = server_factory(settings, name="b")

    wheel, sdist = dists.wheel("1.0"), dists.sdist("1.0")
    twine_upload(a, wheel, sdist)

    # pip installs through B at once, following B's 302 to a signed URL on the moto server.
    result = pip_install(b, tmp_path / "site", "acme.widget==1.0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(p.name.startswith("acme") for p in (tmp_path / "site").iterdir())

    # Both hand out the same signed URL for a file (reuse through the shared index).
    first = location(a, dists.canonical, wheel.name)
    assert "X-Amz-Signature" in first
    assert location(b, dists.canonical, wheel.name) == first

    # Delete through B: A stops listing it on its next request.
    status, _, _ = a.request("GET", f"/simple/{dists.canonical}/", user="admin")
    assert status == 200
    for path in (wheel.name, sdist.name):
        status, _, body = b.request("DELETE", f"/api/package/{dists.canonical}/{path}", user="admin")
        assert status == 200, body
    status, _, _ = a.request("GET", f"/simple/{dists.canonical}/", user="admin")
    assert status == 404
    status, projects = a.get_json("/simple/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert projects["projects"] == []


@pytest.mark.postgres
def test_gunicorn_with_two_workers_stays_consistent(request, server_factory, moto_server, s3_bucket, dists):
    settings = shared_settings("postgres", request, moto_server, s3_bucket)
    srv = server_factory(settings, name="gunicorn", command="gunicorn")
    twine_upload(srv, dists.wheel("1.0"))
    # Every request may land on either worker: all must see the upload.
    page = f"/simple/{dists.canonical}/"
    assert {srv.request("GET", page, user="admin")[0] for _ in range(20)} == {200}
    status, _, body = srv.request(
        "DELETE", f"/api/package/{dists.canonical}/{dists.wheel('1.0').name}", user="admin"
    )
    assert status == 200, body
    assert {srv.request("GET", page, user="admin")[0] for _ in range(20)} == {404}


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        pytest.param("redis", marks=pytest.mark.redis),
    ],
)
def test_index_outage_gives_503_and_service_resumes(kind, request, server_factory, dists, tmp_path):
    settings = {"pypi.default_read": "authenticated"}
    if kind == "postgres":
        url, schema = request.getfixturevalue("postgres_schema")
        proxy = TcpProxy(5432)
        settings |= {"db.url": url.replace(":5432/", f":{proxy.port}/"), "db.schema": schema}
    elif kind == "mariadb":
        url, _ = request.getfixturevalue("mariadb_database")
        proxy = TcpProxy(3306)
        # A 1.x-style URL without a driver.
        settings |= {
            "db.url": url.replace("mysql+pymysql://", "mysql://", 1).replace(":3306/", f":{proxy.port}/")
        }
    else:
        url, prefix = request.getfixturevalue("redis_prefix")
        proxy = TcpProxy(6379)
        settings |= {
            "pypi.db": "redis",
            "db.url": url.replace(":6379/", f":{proxy.port}/"),
            "db.prefix": prefix,
        }
    try:
        srv = server_factory(settings)
        twine_upload(srv, dists.wheel("1.0"))
        page = f"/simple/{dists.canonical}/"
        assert srv.request("GET", page, user="admin")[0] == 200

        proxy.cut()
        srv.until_status("GET", page, 503, user="admin")  # the warm page: once the cut is noticed
        for path in (page, "/simple/", f"/pypi/{dists.canonical}/json"):
            status, _, body = srv.request("GET", path, user="admin")
            assert status == 503, (path, status, body)
            assert b"unavailable" in body.lower() and b"Traceback" not in body
        status, _, body = srv.request("GET", "/health", user="admin")
        assert status == 503
        report = json.loads(body)
        assert report["index"]["ok"] is False and report["storage"]["ok"] is True
        assert srv.alive

        proxy.restore()
        statuses = [srv.request("GET", page, user="admin")[0] for _ in range(5)]
        assert statuses[-1] == 200, statuses
        assert srv.health() == 200
    finally:
        proxy.close()
