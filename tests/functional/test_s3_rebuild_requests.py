"""Rebuilding the index from S3 costs a HEAD per package file only (issue 17 item 4).

A listing page tells key, size and last-modified time; only the metadata that
names a file's hashes, uploader and summary needs a HeadObject. The PEP 658
companion files are indexed from the listing alone, and no body is ever read.
The requests the app's own S3 client sends are counted with botocore's event
hooks, on the moto server.
"""

from __future__ import annotations

import collections
import threading
import time

import pytest

from pypicloud.storage.s3.listing import SETTLED
from pypicloud.storage.s3.manifest_io import manifest_key
from tests.fixtures.s3 import s3_settings
from tests.functional.helpers import basic, make_sdist, make_wheel, service, upload_dist


@pytest.fixture
def s3_app(make_app, moto_server, s3_bucket):
    return make_app(
        s3_settings(moto_server, s3_bucket, prefix="pkgs/")
        | {"storage.dir": None, "pypi.default_read": "everyone"}
    )


def count_requests(client) -> collections.Counter:
    """Every S3 operation the client sends from now on, by name (HeadObject, GetObject ...),
    and by ``(name, key)`` for the reads and writes of one object."""
    seen: collections.Counter = collections.Counter()

    def count(model, **kwargs):
        seen[model.name] += 1

    def count_key(model, params, **kwargs):
        if model.name in ("GetObject", "PutObject"):
            seen[(model.name, params.get("Key"))] += 1

    client.meta.events.register("before-call.s3", count)
    client.meta.events.register("provide-client-params.s3", count_key)
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
    # No body is read; the one GET looks for the manifest (there is none yet).
    manifest = manifest_key(svc.storage)
    assert seen["GetObject"] == seen[("GetObject", manifest)] == 1
    # The rebuild's only write is its manifest (written when some HEAD came SETTLED after an upload).
    assert seen["PutObject"] == seen[("PutObject", manifest)] <= 1
    assert seen["ListObjectsV2"] == 1
    after = sorted(svc.index.all_records(), key=lambda r: r.filename)
    assert after == before


def count_heads(client) -> collections.Counter:
    """Keys of the HeadObject requests the client sends from now on, with the threads sending them."""
    seen: collections.Counter = collections.Counter()

    def count(params, **kwargs):
        seen[params["Key"]] += 1
        seen[("thread", threading.current_thread().name.split("_")[0])] += 1

    client.meta.events.register("provide-client-params.s3.HeadObject", count)
    return seen


def test_a_second_rebuild_of_an_unchanged_bucket_sends_no_head(s3_app):
    dists = [make_wheel("gamma", f"1.{i}") for i in range(5)]
    for dist in dists:
        upload_dist(s3_app, dist)
    svc = service(s3_app)
    before = sorted(svc.index.all_records(), key=lambda r: r.filename)
    # S3 times have one-second precision: answers within SETTLED of a write are not remembered.
    time.sleep(SETTLED.total_seconds() + 0.2)

    heads = count_heads(svc.storage.client)
    assert svc.rebuild() == len(dists)
    keys = {k: n for k, n in heads.items() if isinstance(k, str)}
    assert sorted(keys.values()) == [1] * len(dists)  # each object once...
    assert set(heads) - set(keys) == {("thread", "s3-list")}  # ...from the listing's pool

    heads.clear()
    assert svc.rebuild() == len(dists)
    assert heads == {}
    tagged = sorted(svc.index.all_records(), key=lambda r: r.filename)
    assert tagged == before
    # Rows without a tag (as uploads write them) are taken from the manifest
    # the last rebuild wrote...
    svc.index.replace_all(before)
    assert svc.rebuild() == len(dists)
    assert heads == {}
    # ...and asked about again when there is none.
    svc.index.replace_all(before)
    svc.storage.client.delete_object(Bucket=svc.storage.bucket, Key=manifest_key(svc.storage))
    assert svc.rebuild() == len(dists)
    assert sum(1 for k in heads if isinstance(k, str)) == len(dists)

    # A metadata change (a yank is a copy of the object) is seen: that object alone is asked again.
    yanked = dists[2][0]
    s3_app.post(f"/api/package/gamma/{yanked}/yank", params={"reason": "broken"}, headers=basic("admin"))
    svc.index.replace_all(tagged)  # an index that missed the yank
    heads.clear()
    assert svc.rebuild() == len(dists)
    assert [k for k in heads if isinstance(k, str)] == [svc.storage.key_for("gamma", yanked)]
    assert svc.index.get(yanked).yanked and svc.index.get(yanked).yanked_reason == "broken"


def test_a_rebuild_sees_a_file_deleted_and_one_added_behind_its_back(s3_app):
    for dist in (make_wheel("delta", "1.0"), make_wheel("delta", "1.1")):
        upload_dist(s3_app, dist)
    svc = service(s3_app)
    time.sleep(SETTLED.total_seconds() + 0.2)
    assert svc.rebuild() == 2
    gone = make_wheel("delta", "1.0")[0]
    svc.storage.delete("delta", gone)
    upload_dist(s3_app, make_wheel("delta", "1.2"))
    heads = count_heads(svc.storage.client)
    assert svc.rebuild() == 2
    assert [k for k in heads if isinstance(k, str)] == [
        svc.storage.key_for("delta", make_wheel("delta", "1.2")[0])
    ]
    assert sorted(r.filename for r in svc.index.all_records()) == sorted(
        make_wheel("delta", v)[0] for v in ("1.1", "1.2")
    )


def test_a_rebuild_in_a_new_process_reuses_the_rows_of_unchanged_objects(s3_app, make_app):
    """The tag each row was read with is kept in the index: another process's
    rebuild (a restart, ``ppc-reindex``) asks S3 only about what changed."""
    dists = [make_wheel("epsilon", f"1.{i}") for i in range(4)]
    for dist in dists:
        upload_dist(s3_app, dist)
    time.sleep(SETTLED.total_seconds() + 0.2)
    assert service(s3_app).rebuild() == len(dists)
    before = sorted(service(s3_app).index.all_records(), key=lambda r: r.filename)
    assert all(r.storage_tag for r in before)

    other = make_app(s3_app.ppc_settings)  # same bucket and index, a fresh storage object
    svc = service(other)
    heads, seen = count_heads(svc.storage.client), count_requests(svc.storage.client)
    assert svc.rebuild() == len(dists)
    assert heads == {} and seen["GetObject"] == seen[("GetObject", manifest_key(svc.storage))]
    after = sorted(svc.index.all_records(), key=lambda r: r.filename)
    assert after == before
    assert [r.storage_tag for r in after] == [r.storage_tag for r in before]
