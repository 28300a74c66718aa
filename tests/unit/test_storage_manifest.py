"""The storage manifest's format (pypicloud.storage.manifest) and the contract's defaults."""

from __future__ import annotations

import gzip
import json

import pytest

from pypicloud.models import FileRecord, StoredObject
from pypicloud.rebuild_manifest import entries_of, record_from_entry
from pypicloud.storage.manifest import ManifestEntry, decode, encode
from pypicloud.storage.memory import MemoryStorage


def test_entries_round_trip_and_untagged_ones_are_left_out():
    entries = {
        "0a1b/demo/demo-1.0-py3-none-any.whl": ManifestEntry(
            '"e1"/10/2026-01-01T00:00:00+00:00', {"sha256": "ab"}
        ),
        "demo/untagged.tar.gz": ManifestEntry("", {"sha256": "cd"}),
        "x/ünïcode-1.0.tar.gz": ManifestEntry("t", {"summary": "naïve ☃", "yanked": ""}),
    }
    data = encode(entries)
    assert data[:2] == b"\x1f\x8b"  # gzip
    assert decode(data) == {k: e for k, e in entries.items() if e.tag}


def _gz(document) -> bytes:
    return gzip.compress(json.dumps(document).encode())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"plain text",
        gzip.compress(b"{not json"),
        encode({"k": ManifestEntry("t", {})})[:-6],  # cut short
        _gz([1, 2]),
        _gz({"format": "other", "version": 1, "objects": {}}),
        _gz({"format": "pypicloud-manifest", "version": 2, "objects": {}}),
        _gz({"format": "pypicloud-manifest", "version": 1}),
        _gz({"format": "pypicloud-manifest", "version": 1, "objects": {"k": ["t"]}}),
        _gz({"format": "pypicloud-manifest", "version": 1, "objects": {"k": ["", {}]}}),
        _gz({"format": "pypicloud-manifest", "version": 1, "objects": {"k": ["t", {"a": 1}]}}),
        _gz({"format": "pypicloud-manifest", "version": 1, "objects": {"k": ["t", []]}}),
    ],
    # Named, not shown: gzip's header holds the time, and pytest-xdist's workers must
    # collect the same test ids even when they do so in different seconds.
    ids=[
        "empty",
        "not-gzip",
        "not-json",
        "cut-short",
        "not-an-object",
        "other-format",
        "other-version",
        "no-objects",
        "entry-without-metadata",
        "entry-without-tag",
        "metadata-not-text",
        "metadata-not-an-object",
    ],
)
def test_anything_else_is_refused_whole(data):
    with pytest.raises(ValueError):
        decode(data)


def test_a_row_comes_back_from_its_entry_only_with_the_same_tag():
    record = FileRecord(
        project="demo",
        name="Demo",
        version="1.0",
        filename="demo-1.0.tar.gz",
        size=12,
        sha256="a" * 64,
        md5="b" * 32,
        summary="s" * 500,  # kept whole: the manifest has no 2 KB limit
        uploader="alice",
        yanked=True,
        yanked_reason="broken",
        metadata_sha256=None,
        key="k/demo/demo-1.0.tar.gz",
        storage_tag="tag-1",
    )
    entries = entries_of([record, record.replace(filename="other.tar.gz", key="k2", storage_tag="")])
    assert list(entries) == [record.key]
    listed = StoredObject("demo", record.filename, 12, {}, key=record.key, tag="tag-1")
    assert record_from_entry(entries[record.key], listed) == record
    assert record_from_entry(entries[record.key], listed).storage_tag == "tag-1"
    assert (
        record_from_entry(entries[record.key], StoredObject("demo", record.filename, 12, {}, tag="tag-2"))
        is None
    )
    assert record_from_entry(None, listed) is None


def test_a_backend_keeps_no_manifest_by_default():
    storage = MemoryStorage()
    assert storage.read_manifest() is None
    assert storage.write_manifest({"k": ManifestEntry("t", {})}) is False
    assert storage.read_manifest() is None
