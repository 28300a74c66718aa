"""The whole app on S3 storage (moto server on loopback, real boto3, real signed URLs)."""

from __future__ import annotations

import hashlib
import time
import urllib.request
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config

from tests.fixtures.s3 import s3_settings
from tests.functional.helpers import auth_headers, make_sdist, make_wheel, service, upload, upload_dist
from tests.functional.test_s3_rebuild_requests import count_requests


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # loopback moto server
        return response.read()


@pytest.fixture
def s3_app(make_app, moto_server, s3_bucket):
    def build(**storage):
        return make_app(
            s3_settings(moto_server, s3_bucket, **storage)
            | {"storage.dir": None, "pypi.default_read": "everyone"}
        )

    return build


def test_upload_stores_object_at_documented_key(s3_app, s3_client, s3_bucket):
    app = s3_app(prefix="pkgs/", prepend_hash="true")
    filename, data = make_wheel("Acme.Widget", "1.0")
    upload_dist(app, (filename, data))
    keys = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    segment = hashlib.md5(filename.encode()).hexdigest()[:4]
    assert f"pkgs/{segment}/acme-widget/{filename}" in keys
    head = s3_client.head_object(Bucket=s3_bucket, Key=f"pkgs/{segment}/acme-widget/{filename}")
    assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert head["ContentLength"] == len(data)


def test_download_redirects_to_signed_url_that_serves_the_bytes(s3_app):
    app = s3_app()
    filename, data = make_wheel("demo", "1.0")
    upload_dist(app, (filename, data))
    page = app.get("/simple/demo/", headers={"Accept": "text/html"})
    assert f"/packages/demo/{filename}#sha256=" in page.text
    assert "data-core-metadata" in page.text
    response = app.get(f"/api/package/demo/{filename}")
    assert response.status_int == 302
    location = response.headers["Location"]
    assert "X-Amz-Signature" in location
    assert fetch(location) == data
    # PEP 658 metadata is served by the server itself.
    meta = app.get(f"/api/package/demo/{filename}.metadata")
    assert b"Name: demo" in meta.body


def test_a_warm_metadata_file_is_served_without_asking_s3(s3_app):
    """Objects are replaced whole: the checked bytes are kept by name and the record's
    sha256, with no HEAD per request; a re-upload with other metadata is read anew."""
    app = s3_app()
    first = make_wheel("demo", "1.0", summary="The first upload")
    upload_dist(app, first)
    path = f"/api/package/demo/{first[0]}.metadata"
    assert b"The first upload" in app.get(path).body
    seen = count_requests(service(app).storage.client)
    for _ in range(3):
        assert b"The first upload" in app.get(path).body
    assert sum(seen.values()) == 0
    app.delete(f"/api/package/demo/{first[0]}", headers=auth_headers("admin"), status=200)
    app.get(path, status=404)
    upload_dist(app, make_wheel("demo", "1.0", summary="The second upload"))
    body = app.get(path).body
    assert b"The second upload" in body and b"The first upload" not in body


def test_signed_url_is_reused_within_buffer_and_renewed_after(s3_app, make_app, moto_server, s3_bucket):
    app = s3_app(expire_after="3600", buffer_time="600")
    filename, _ = make_wheel("demo", "1.0")
    upload_dist(app, (filename, _))
    first = app.get(f"/api/package/demo/{filename}").headers["Location"]
    time.sleep(1.1)  # a new signature would carry a new X-Amz-Date
    assert app.get(f"/api/package/demo/{filename}").headers["Location"] == first
    # A second app on the same index (another process) hands out the same URL.
    other = s3_app(expire_after="3600", buffer_time="600")
    assert other.get(f"/api/package/demo/{filename}").headers["Location"] == first
    # With less than buffer_time left the URL is replaced.
    short = s3_app(expire_after="3600", buffer_time="3599")
    time.sleep(1.1)
    renewed = short.get(f"/api/package/demo/{filename}").headers["Location"]
    assert renewed != first
    assert parse_qs(urlsplit(renewed).query)["X-Amz-Expires"] == ["3600"]


def test_redirect_urls_false_puts_signed_urls_in_pages(s3_app):
    app = s3_app(redirect_urls="false")
    filename, data = make_wheel("demo", "1.0")
    upload_dist(app, (filename, data))
    page = app.get("/simple/demo/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    entry = page.json["files"][0]
    assert "X-Amz-Signature" in entry["url"]
    assert fetch(entry["url"]) == data
    # A .metadata URL cannot be derived from a signed URL, so none is offered.
    assert entry["core-metadata"] is False
    html = app.get("/simple/demo/", headers={"Accept": "text/html"}).text
    assert "#sha256=" + hashlib.sha256(data).hexdigest() in html


def test_stream_files_proxies_bytes_with_ranges(make_app, moto_server, s3_bucket):
    app = make_app(
        s3_settings(moto_server, s3_bucket)
        | {"storage.dir": None, "pypi.stream_files": "true", "pypi.package_max_age": "600"}
    )
    filename, data = make_sdist("demo", "1.0")
    upload_dist(app, (filename, data))
    whole = app.get(f"/api/package/demo/{filename}", headers=auth_headers("admin"))
    assert whole.status_int == 200 and whole.body == data
    assert "max-age=600" in whole.headers["Cache-Control"]
    part = app.get(f"/api/package/demo/{filename}", headers=auth_headers("admin", Range="bytes=10-19"))
    assert part.status_int == 206 and part.body == data[10:20]


def test_s3_outage_gives_503_and_leaves_nothing(s3_app, s3_bucket, s3_client):
    app = s3_app()
    storage = service(app).storage
    working = storage.client
    storage.client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        config=Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1}),
    )
    try:
        filename, data = make_wheel("demo", "1.0")
        response = upload(app, filename, data)
        assert response.status_int == 503
        assert "unavailable" in response.text.lower()
        assert service(app).index.get(filename) is None
        health = app.get("/health", headers=auth_headers("admin"), expect_errors=True)
        assert health.status_int == 503 and health.json["storage"]["ok"] is False
    finally:
        storage.client = working
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0
    # Service resumes by itself once S3 answers again.
    assert app.get("/health", headers=auth_headers("admin")).json["storage"]["ok"] is True
    upload_dist(app, make_wheel("demo", "1.0"))
