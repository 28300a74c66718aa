"""The storage manifest of an S3 bucket (issue 17 item 4), on the moto server.

Every rebuild writes ``<prefix>.pypicloud/manifest.json.gz``: each indexed
file's metadata and the listing tag it was read with. A rebuild into an empty
index (a new server, a lost database) takes the rows of objects listed with
exactly that tag from it, with no HEAD; everything else is asked about as
without a manifest. The requests the app's own S3 client sends are counted
with botocore's event hooks.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import time

import pytest

from pypicloud.cli import reindex
from pypicloud.storage.s3.listing import SETTLED
from pypicloud.storage.s3.manifest_io import manifest_key
from tests.fixtures.s3 import s3_settings
from tests.functional.helpers import make_wheel, service, sha256, simple_json, upload_dist
from tests.functional.test_s3_rebuild_requests import count_heads, count_requests


@pytest.fixture
def s3_app(make_app, moto_server, s3_bucket):
    return make_app(
        s3_settings(moto_server, s3_bucket, prefix="pkgs/")
        | {"storage.dir": None, "pypi.default_read": "everyone"}
    )


def sorted_rows(svc):
    return sorted(svc.index.all_records(), key=lambda r: r.filename)


def uploaded_and_rebuilt(app, project: str, count: int):
    """``count`` wheels of ``project`` uploaded, then one rebuild (which writes the manifest)."""
    dists = [make_wheel(project, f"1.{i}") for i in range(count)]
    for dist in dists:
        upload_dist(app, dist)
    # S3 times have one-second precision: answers within SETTLED of a write get no tag.
    time.sleep(SETTLED.total_seconds() + 0.2)
    svc = service(app)
    assert svc.rebuild() == count
    return dists, sorted_rows(svc)


def head_keys(heads) -> list[str]:
    return sorted(k for k in heads if isinstance(k, str))


def test_a_rebuild_into_an_empty_index_takes_every_unchanged_file_from_the_manifest(s3_app, make_app):
    dists, before = uploaded_and_rebuilt(s3_app, "alpha", 5)
    assert all(r.storage_tag for r in before)

    other = make_app(s3_app.ppc_settings)  # a fresh storage object...
    svc = service(other)
    svc.index.replace_all([])  # ...and an empty index (a new server, a lost database)
    heads, seen = count_heads(svc.storage.client), count_requests(svc.storage.client)
    assert svc.rebuild() == len(dists)

    assert heads == {}
    assert seen["GetObject"] == seen[("GetObject", manifest_key(svc.storage))] == 1  # no body
    after = sorted_rows(svc)
    assert after == before
    assert [r.storage_tag for r in after] == [r.storage_tag for r in before]
    names = [f["filename"] for f in simple_json(other, "/simple/alpha/", user=None).json["files"]]
    assert sorted(names) == sorted(d[0] for d in dists)


def test_an_object_written_after_the_manifest_is_asked_about_and_indexed_as_it_is_now(s3_app):
    dists, before = uploaded_and_rebuilt(s3_app, "beta", 3)
    svc = service(s3_app)
    replaced, gone = dists[1][0], dists[2][0]
    new_bytes = make_wheel("beta", "1.1", payload=b"VALUE = 2\n")[1]
    metadata = dict(svc.storage.stat("beta", replaced).metadata)
    metadata.update(sha256=sha256(new_bytes), summary="Replaced behind the index's back")
    svc.storage.put("beta", replaced, io.BytesIO(new_bytes), metadata, overwrite=True)
    svc.storage.delete("beta", gone)
    added = make_wheel("beta", "2.0")
    svc.storage.put("beta", added[0], io.BytesIO(added[1]), {**metadata, "version": "2.0"})

    svc.index.replace_all([])
    heads = count_heads(svc.storage.client)
    assert svc.rebuild() == 3

    assert head_keys(heads) == sorted(svc.storage.key_for("beta", name) for name in (replaced, added[0]))
    row = svc.index.get(replaced)
    assert row.sha256 == sha256(new_bytes) and row.summary == "Replaced behind the index's back"
    assert svc.index.get(gone) is None
    assert svc.index.get(added[0]).version == "2.0"
    assert svc.index.get(dists[0][0]) == before[0]


@pytest.mark.parametrize(
    "body",
    [
        b"not gzip at all",
        gzip.compress(b'{"format": "pypicloud-manifest", "version": 1, "objects": {'),  # cut short
        gzip.compress(json.dumps({"format": "something else", "objects": {}}).encode()),
        gzip.compress(
            json.dumps({"format": "pypicloud-manifest", "version": 1, "objects": {"k": 3}}).encode()
        ),
    ],
    ids=["not-gzip", "truncated-json", "foreign-format", "bad-entry"],
)
def test_a_corrupt_manifest_is_ignored_with_a_warning_and_the_rebuild_is_right(s3_app, body, caplog):
    dists, before = uploaded_and_rebuilt(s3_app, "gamma", 3)
    svc = service(s3_app)
    key = manifest_key(svc.storage)
    svc.storage.client.put_object(Bucket=svc.storage.bucket, Key=key, Body=body)

    svc.index.replace_all([])
    heads = count_heads(svc.storage.client)
    with caplog.at_level(logging.WARNING, logger="pypicloud.storage.s3"):
        assert svc.rebuild() == len(dists)

    assert len(head_keys(heads)) == len(dists)  # asked about every file, as without a manifest
    assert sorted_rows(svc) == before
    assert any("ignoring the manifest" in r.getMessage() and key in r.getMessage() for r in caplog.records)
    # The rebuild wrote a good manifest in its place.
    assert svc.storage.read_manifest().keys() == {r.key for r in before}


def test_a_manifest_entry_with_another_tag_is_not_used(s3_app):
    """A manifest that lies (an entry whose tag the listing does not show) never makes a row."""
    _, before = uploaded_and_rebuilt(s3_app, "delta", 2)
    svc = service(s3_app)
    entries = svc.storage.read_manifest()
    wrong = {k: type(e)(e.tag + "-old", {**e.metadata, "summary": "stale"}) for k, e in entries.items()}
    svc.storage.write_manifest(wrong)

    svc.index.replace_all([])
    heads = count_heads(svc.storage.client)
    assert svc.rebuild() == 2
    assert len(head_keys(heads)) == 2
    assert sorted_rows(svc) == before

    # An entry with the right tag but without the metadata a row needs: asked about, never read.
    svc.storage.write_manifest({k: type(e)(e.tag, {}) for k, e in svc.storage.read_manifest().items()})
    svc.index.replace_all([])
    heads, seen = count_heads(svc.storage.client), count_requests(svc.storage.client)
    assert svc.rebuild() == 2
    assert len(head_keys(heads)) == 2
    assert seen["GetObject"] == seen[("GetObject", manifest_key(svc.storage))]
    assert sorted_rows(svc) == before


@pytest.mark.parametrize(
    ("prefix", "prepend_hash"), [("pkgs/", "true"), ("", "true"), ("", "false"), ("pkgs", "false")]
)
def test_the_manifest_is_never_a_package(make_app, moto_server, s3_bucket, prefix, prepend_hash):
    app = make_app(
        s3_settings(moto_server, s3_bucket, prefix=prefix, prepend_hash=prepend_hash)
        | {"storage.dir": None, "pypi.default_read": "everyone"}
    )
    upload_dist(app, make_wheel("epsilon", "1.0"))
    time.sleep(SETTLED.total_seconds() + 0.2)  # so that the rebuild writes a manifest
    svc = service(app)
    assert svc.rebuild() == 1
    keys = [o["Key"] for o in svc.storage.client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert manifest_key(svc.storage) in keys  # it is in the bucket...

    # ...but neither listed, nor indexed, nor shown.
    assert {o.filename for o in svc.storage.list()} == {
        "epsilon-1.0-py3-none-any.whl",
        "epsilon-1.0-py3-none-any.whl.metadata",
    }
    assert [r.project for r in svc.index.all_records()] == ["epsilon"]
    projects = simple_json(app, "/simple/", user=None).json["projects"]
    assert [p["name"] for p in projects] == ["epsilon"]


def test_ppc_reindex_write_manifest_writes_it_from_the_index(s3_app, tmp_path, capsys):
    _, before = uploaded_and_rebuilt(s3_app, "zeta", 2)
    svc = service(s3_app)
    svc.storage.client.delete_object(Bucket=svc.storage.bucket, Key=manifest_key(svc.storage))
    ini = tmp_path / "reindex.ini"
    settings = {k: v for k, v in s3_app.ppc_settings.items() if not k.startswith("user.")}
    ini.write_text(
        "[app:main]\nuse = egg:pypicloud\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()),
        encoding="utf-8",
    )

    assert reindex.main([str(ini), "--write-manifest"]) == 0

    assert "manifest written: 2 files" in capsys.readouterr().out
    entries = svc.storage.read_manifest()
    assert {k: e.tag for k, e in entries.items()} == {r.key: r.storage_tag for r in before}
    assert sorted_rows(svc) == before  # the index was not touched


def test_read_only_storage_writes_no_manifest(make_app, moto_server, s3_bucket, s3_app):
    uploaded_and_rebuilt(s3_app, "eta", 1)
    service(s3_app).storage.client.delete_object(Bucket=s3_bucket, Key=manifest_key(service(s3_app).storage))
    reader = make_app(
        s3_settings(moto_server, s3_bucket, prefix="pkgs/", read_only="true")
        | {"storage.dir": None, "pypi.default_read": "everyone"}
    )
    svc = service(reader)
    assert svc.rebuild() == 1
    assert svc.write_manifest() is None
    assert svc.storage.read_manifest() is None


def test_a_companion_written_after_the_manifest_is_seen(s3_app):
    """A file indexed while its PEP 658 companion was missing (an upload cut short) is
    asked about again once the companion is there: the object's metadata names it."""
    dist = make_wheel("theta", "1.0")
    upload_dist(s3_app, dist)
    filename = dist[0]
    svc = service(s3_app)
    companion = filename + ".metadata"
    with svc.storage.open("theta", companion) as stream:
        metadata_bytes = stream.read()
    sha = svc.index.get(filename).metadata_sha256
    svc.storage.delete("theta", companion)
    time.sleep(SETTLED.total_seconds() + 0.2)
    assert svc.rebuild() == 1
    assert svc.index.get(filename).metadata_sha256 is None
    assert svc.storage.read_manifest()  # the row, without its companion, is in the manifest

    svc.storage.put_companion("theta", companion, metadata_bytes, {"sha256": sha})
    svc.index.replace_all([])
    heads = count_heads(svc.storage.client)
    assert svc.rebuild() == 1
    assert head_keys(heads) == [svc.storage.key_for("theta", filename)]
    assert svc.index.get(filename).metadata_sha256 == sha
