"""The DynamoDB index as pypicloud 1.x inis configure it (issue 14), on the moto server.

``pypi.db = dynamo`` (or 1.x's dotted name) with 1.x's keys: ``db.namespace`` /
``db.tablenames`` name the tables, ``db.region_name`` and ``db.endpoint_url`` (or
1.x's ``db.host`` / ``db.port`` / ``db.secure``) say where. Wrong credentials or
an endpoint that does not answer stop start-up naming the key; an outage while
running answers 503 and shows in /health, and service resumes afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from pypicloud.errors import ConfigError
from pypicloud.index.dynamo import REPAIR_LOCK_SECONDS, DynamoIndex
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.s3 import moto_auth_enforced
from tests.fixtures.services import free_port, unique_name

from .helpers import auth_headers, make_wheel, project_names, service, upload_dist


@pytest.fixture
def namespace(moto_server):
    """A table-name prefix of this test; its tables are dropped afterwards."""
    prefix = unique_name("ppc") + "-"
    yield prefix
    cleaner = DynamoIndex(endpoint_url=moto_server, region_name="us-east-1", namespace=prefix, create=False)
    cleaner.delete_tables()
    cleaner.close()


def table_names(moto_server) -> set[str]:
    index = DynamoIndex(endpoint_url=moto_server, region_name="us-east-1", create=False)
    try:
        return set(index.client.list_tables()["TableNames"])
    finally:
        index.close()


def test_alias_and_1x_table_names(make_app, moto_server, namespace):
    app = make_app(
        {
            "pypi.db": "dynamo",
            "db.endpoint_url": moto_server,
            "db.region_name": "us-east-1",
            "db.namespace": namespace,
        }
    )
    assert isinstance(service(app).index, DynamoIndex)
    upload_dist(app, make_wheel("Dyn.Pkg", "1.0"))
    assert project_names(app) == ["dyn-pkg"]
    assert app.get("/health", headers=auth_headers("admin")).json["index"]["ok"] is True
    assert {namespace + "DynamoPackage", namespace + "PackageSummary"} <= table_names(moto_server)


def test_1x_dotted_name_host_port_and_tablenames(make_app, moto_server, namespace):
    url = urlsplit(moto_server)
    tables = [namespace + "files", namespace + "summaries"]
    app = make_app(
        {
            "pypi.db": "pypicloud.cache.dynamo.DynamoCache",
            "db.host": url.hostname,
            "db.port": str(url.port),
            "db.secure": "false",
            "db.region_name": "us-east-1",
            "db.tablenames": " ".join(tables),
        }
    )
    upload_dist(app, make_wheel("old-style", "1.0"))
    assert project_names(app) == ["old-style"]
    index = service(app).index
    assert (index.files_table, index.summary_table) == tuple(tables)
    assert set(tables) <= table_names(moto_server)


def test_two_apps_on_one_table_set_see_each_other(make_app, moto_server, namespace, tmp_path):
    settings = {
        "pypi.db": "dynamo",
        "db.endpoint_url": moto_server,
        "db.namespace": namespace,
        "storage.dir": str(tmp_path / "shared"),
    }
    first = make_app(settings)
    second = make_app(settings, base=tmp_path / "other")
    upload_dist(first, make_wheel("shared", "1.0"))
    assert project_names(second) == ["shared"]
    second.delete("/api/package/shared/shared-1.0-py3-none-any.whl", headers=auth_headers("admin"))
    assert project_names(first) == []


def test_wrong_credentials_stop_start_up_naming_the_key(make_app, moto_server, namespace):
    with moto_auth_enforced(), pytest.raises(ConfigError) as info:
        make_app(
            {
                "pypi.db": "dynamo",
                "db.endpoint_url": moto_server,
                "db.namespace": namespace,
                "db.aws_access_key_id": "AKIAWRONG",
                "db.aws_secret_access_key": "wrong-secret",
            }
        )
    message = str(info.value)
    assert "db.aws_access_key_id" in message and "refused" in message
    assert "wrong-secret" not in message


def test_an_endpoint_that_does_not_answer_stops_start_up(make_app):
    with pytest.raises(ConfigError) as info:
        make_app({"pypi.db": "dynamo", "db.endpoint_url": f"http://127.0.0.1:{free_port()}"})
    assert "db.endpoint_url" in str(info.value) and "cannot reach DynamoDB" in str(info.value)


def test_outage_gives_503_and_health_then_service_resumes(make_app, moto_server, namespace):
    proxy = TcpProxy(urlsplit(moto_server).port)
    try:
        app = make_app(
            {
                "pypi.db": "dynamo",
                "db.endpoint_url": f"http://127.0.0.1:{proxy.port}",
                "db.namespace": namespace,
            }
        )
        upload_dist(app, make_wheel("demo", "1.0"))
        proxy.cut()
        for path in ("/simple/", "/simple/demo/"):
            response = app.get(path, headers=auth_headers("admin"), expect_errors=True)
            assert response.status_int == 503, path
            assert "unavailable" in response.text.lower() and "Traceback" not in response.text
        health = app.get("/health", headers=auth_headers("admin"), expect_errors=True)
        assert health.status_int == 503 and health.json["index"]["ok"] is False
        proxy.restore()
        assert project_names(app) == ["demo"]
        assert app.get("/health", headers=auth_headers("admin")).status_int == 200
    finally:
        proxy.close()


def test_two_apps_share_intents_local_marks_and_the_repair_lock(make_app, moto_server, namespace, tmp_path):
    settings = {
        "pypi.db": "dynamo",
        "db.endpoint_url": moto_server,
        "db.namespace": namespace,
        "storage.dir": str(tmp_path / "shared"),
        "pypi.repair_interval": "0",
    }
    first = make_app(settings)
    second = make_app(settings, base=tmp_path / "other")
    filename, data = make_wheel("demo", "1.0")
    upload_dist(first, (filename, data))
    assert service(second).index.was_local("demo")
    # What a writer of the first app killed after its storage write leaves.
    service(first).index.remove(filename)
    service(first).index.begin_intent("upload", "demo", filename)
    assert project_names(second) == []
    with service(first).index.repair_lock() as mine:
        assert mine is True
        assert service(second).repair() is None  # the first app is repairing
    assert service(second).repair() == 1
    assert project_names(first) == ["demo"]
    assert service(first).repair() == 0  # the intent is gone for both


def test_a_repair_lock_left_by_a_killed_holder_lapses(moto_server, namespace, monkeypatch):
    indexes = [
        DynamoIndex(endpoint_url=moto_server, region_name="us-east-1", namespace=namespace) for _ in range(3)
    ]
    try:
        dead = indexes[0].repair_lock()
        assert dead.__enter__() is True  # its process dies inside the block
        with indexes[1].repair_lock() as got:
            assert got is False
        later = datetime.now(UTC) + timedelta(seconds=REPAIR_LOCK_SECONDS + 1)

        class Clock(datetime):
            @classmethod
            def now(cls, tz=None):
                return later

        monkeypatch.setattr("pypicloud.index.dynamo_items.datetime", Clock)
        with indexes[1].repair_lock() as got:
            assert got is True
            # The lapsed holder finishing late must not free the new holder's lock.
            dead.__exit__(None, None, None)
            with indexes[2].repair_lock() as third:
                assert third is False
        with indexes[2].repair_lock() as third:
            assert third is True
    finally:
        for index in indexes:
            index.close()
