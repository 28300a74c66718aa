"""Rebuilding the index from S3 costs a HEAD per package file only (issue 17 item 4).

A listing page tells key, size and last-modified time; only the metadata that
names a file's hashes, uploader and summary needs a HeadObject. The PEP 658
companion files are indexed from the listing alone, and no body is ever read.
The requests the app's own S3 client sends are counted with botocore's event
hooks, on the moto server.
"""

from __future__ import annotations

import collections

import pytest

from tests.fixtures.s3 import s3_settings
from tests.functional.helpers import make_sdist, make_wheel, service, upload_dist


@pytest.fixture
def s3_app(make_app, moto_server, s3_bucket):
    return make_app(
        s3_settings(moto_server, s3_bucket, prefix="pkgs/")
        | {"storage.dir": None, "pypi.default_read": "everyone"}
    )


def count_requests(client) -> collections.Counter:
    """Every S3 operation the client sends from now on, by name (HeadObject, GetObject ...)."""
    seen: collections.Counter = collections.Counter()

    def count(model, **kwargs):
        seen[model.name] += 1

    client.meta.events.register("before-call.s3", count)
    return seen


def test_rebuild_heads_each_package_file_once_and_reads_no_body(s3_app):
    dists = [make_wheel("alpha", f"1.{i}") for i in range(4)] + [
        make_sdist("beta", "2.0"),
        make_wheel("beta", "2.0"),
    ]
    for dist in dists:
        upload_dist(s3_app, dist)
    svc = service(s3_app)
    before = sorted(svc.index.all_records(), key=lambda r: r.filename)
    companions = sum(1 for r in before if r.metadata_sha256)
    assert companions == len(dists)  # each file has a PEP 658 companion beside it in the bucket

    seen = count_requests(svc.storage.client)
    assert svc.rebuild() == len(dists)

    assert seen["HeadObject"] == len(dists)  # none for the .metadata companions
    assert seen["GetObject"] == 0
    assert seen["ListObjectsV2"] == 1
    after = sorted(svc.index.all_records(), key=lambda r: r.filename)
    assert after == before
