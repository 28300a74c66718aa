"""The whole app on gcs (gcp-storage-emulator), azure-blob (Azurite) and cloudfront storage.

Uploads land in the bucket/container, downloads answer 302 to a signed URL that
serves the bytes, the signed URL is reused from the index cache while it has more
than ``buffer_time`` left, and a storage outage answers 503 with a clear reason
(and in ``/health``) and stores nothing.
"""

from __future__ import annotations

import urllib.request

import pytest

from tests.fixtures.azurite import ACCOUNT, KEY, azure_settings
from tests.fixtures.gcs import gcs_settings
from tests.fixtures.s3 import s3_settings
from tests.fixtures.services import free_port
from tests.functional.helpers import make_wheel, service, upload, upload_dist


def fetch(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        return response.read()


@pytest.fixture(params=["gcs", "azure-blob", "cloudfront"])
def cloud_app(request, make_app, tmp_path):
    """``(app, kind)``: an app whose storage is a fresh bucket/container of that kind."""
    if request.param == "gcs":
        endpoint = request.getfixturevalue("gcs_emulator")
        key_file = request.getfixturevalue("gcs_service_account")[0]
        settings = gcs_settings(endpoint, request.getfixturevalue("gcs_bucket_name"), key_file)
    elif request.param == "azure-blob":
        settings = azure_settings(
            request.getfixturevalue("azurite_server"), request.getfixturevalue("azure_container")
        )
    else:
        key_id, pem, _ = request.getfixturevalue("cloudfront_keys")
        key_file = tmp_path / "cf.pem"
        key_file.write_bytes(pem)
        settings = s3_settings(
            request.getfixturevalue("moto_server"), request.getfixturevalue("s3_bucket")
        ) | {
            "pypi.storage": "cloudfront",
            "storage.cloud_front_domain": request.getfixturevalue("cloudfront_distribution"),
            "storage.cloud_front_key_id": key_id,
            "storage.cloud_front_key_file": str(key_file),
        }
    settings |= {"storage.dir": None, "pypi.default_read": "everyone"}
    return make_app(settings), request.param


def test_upload_download_through_a_cached_signed_url(cloud_app):
    app, kind = cloud_app
    filename, data = make_wheel("demo", "1.0")
    upload_dist(app, (filename, data))
    stored = service(app).storage.stat("demo", filename)
    assert stored is not None and stored.size == len(data)
    assert stored.metadata["sha256"]

    first = app.get(f"/api/package/demo/{filename}")
    assert first.status_int == 302
    location = first.headers["Location"]
    marker = {"gcs": "X-Goog-Signature=", "azure-blob": "sig=", "cloudfront": "Signature="}[kind]
    assert marker in location
    assert fetch(location) == data
    # Within expire_after - buffer_time every process hands out the same URL (index cache).
    second = app.get(f"/api/package/demo/{filename}")
    assert second.headers["Location"] == location
    # The index pages list the file, and PEP 658 metadata comes from storage.
    assert filename in app.get("/simple/demo/", headers={"Accept": "text/html"}).text
    assert b"Name: demo" in app.get(f"/api/package/demo/{filename}.metadata").body


def _break_storage(storage, kind: str):
    """Point the storage's client at a closed port; returns a function that restores it."""
    dead = f"http://127.0.0.1:{free_port()}"
    if kind == "gcs":
        from pypicloud.storage.gcs import GoogleCloudStorage

        broken = GoogleCloudStorage(
            storage.bucket_name, api_endpoint=dead, project_id="p", timeout=1, retry_timeout=1
        )
        saved = storage.client, storage.bucket, storage.retry
        storage.client, storage.bucket, storage.retry = broken.client, broken.bucket, broken.retry

        def restore():
            storage.client, storage.bucket, storage.retry = saved

        return restore
    if kind == "azure-blob":
        from pypicloud.storage.azure_blob import AzureBlobStorage

        broken = AzureBlobStorage(
            storage.container,
            account_url=dead + "/" + ACCOUNT,
            account_name=ACCOUNT,
            account_key=KEY,
            connect_timeout=1,
            retries=0,
        )
        saved = storage.client
        storage.client = broken.client

        def restore():
            storage.client = saved

        return restore
    import boto3
    from botocore.config import Config

    saved = storage.client
    storage.client = boto3.client(
        "s3",
        endpoint_url=dead,
        region_name="us-east-1",
        config=Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1}),
    )

    def restore():
        storage.client = saved

    return restore


def test_outage_gives_503_and_health_and_stores_nothing(cloud_app):
    app, kind = cloud_app
    storage = service(app).storage
    restore = _break_storage(storage, kind)
    try:
        filename, data = make_wheel("demo", "1.0")
        response = upload(app, filename, data)
        assert response.status_int == 503
        assert "unavailable" in response.text.lower()
        assert service(app).index.get(filename) is None
        health = app.get("/health", expect_errors=True)
        assert health.status_int == 503 and health.json == {"status": "unavailable"}  # details: admins only
    finally:
        restore()
    assert list(storage.list()) == []
    # Service resumes by itself once storage answers again.
    assert app.get("/health").json == {"status": "ok"}  # details: admins only
    upload_dist(app, make_wheel("demo", "1.0"))
