"""PEP 658 ``.metadata`` files served from memory (pypicloud/metadata_files.py).

A warm ``.metadata`` request neither opens nor hashes the file, but whatever
happens to the file or to its record since is seen on the next request: a file
deleted and uploaded again with other metadata serves its new metadata, and a
companion replaced, rewritten or removed on disk is checked again (never served
with bytes that do not match the record's sha256).
"""

from __future__ import annotations

import os

import pytest

from pypicloud.errors import ConfigError
from pypicloud.storage.file import FileStorage

from .helpers import auth_headers, core_metadata, make_wheel, service, stored_path, upload_dist

ADMIN = auth_headers("admin")
FIRST = make_wheel("demo", "1.0", metadata=core_metadata("demo", "1.0", summary="The first upload"))
URL = f"/api/package/demo/{FIRST[0]}.metadata"
PATHS = [URL, f"/packages/demo/{FIRST[0]}.metadata"]


@pytest.fixture(params=["fast lane", "pyramid"])
def lane_app(request, make_app):
    """The app with the fast lane on (the default) and off: both call the same service."""
    return make_app({"pypi.fast_reads": "true" if request.param == "fast lane" else "false"})


@pytest.fixture
def opens(monkeypatch):
    """The names file storage opens."""
    opened: list[str] = []
    real_open = FileStorage.open

    def counting_open(self, project, filename, offset=0, length=None):
        opened.append(filename)
        return real_open(self, project, filename, offset, length)

    monkeypatch.setattr(FileStorage, "open", counting_open)
    return opened


def replace_file(path, data: bytes) -> None:
    """What a writer that publishes by rename does (a new inode under the name)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@pytest.mark.parametrize("path", PATHS)
def test_a_warm_metadata_request_does_not_open_the_file(lane_app, opens, path):
    upload_dist(lane_app, FIRST)
    first = lane_app.get(path, headers=ADMIN, status=200)
    opens.clear()
    for _ in range(3):
        assert lane_app.get(path, headers=ADMIN, status=200).body == first.body
    assert b"Summary: The first upload" in first.body
    assert opens == []


def test_deleted_and_uploaded_again_serves_the_new_metadata(lane_app):
    upload_dist(lane_app, FIRST)
    assert b"The first upload" in lane_app.get(URL, headers=ADMIN, status=200).body
    lane_app.delete(f"/api/package/demo/{FIRST[0]}", headers=ADMIN, status=200)
    lane_app.get(URL, headers=ADMIN, status=404)
    second = make_wheel("demo", "1.0", metadata=core_metadata("demo", "1.0", summary="The second upload"))
    assert second[0] == FIRST[0] and second[1] != FIRST[1]
    upload_dist(lane_app, second)
    body = lane_app.get(URL, headers=ADMIN, status=200).body
    assert b"The second upload" in body and b"The first upload" not in body


def test_a_companion_replaced_on_disk_is_checked_again(lane_app):
    upload_dist(lane_app, FIRST)
    good = lane_app.get(URL, headers=ADMIN, status=200).body
    companion = stored_path(lane_app, "demo", FIRST[0] + ".metadata")
    replace_file(companion, good.replace(b"The first upload", b"Someone else's text"))
    lane_app.get(URL, headers=ADMIN, status=404)
    # The right bytes back: served again.
    replace_file(companion, good)
    assert lane_app.get(URL, headers=ADMIN, status=200).body == good


def test_a_companion_rewritten_in_place_is_checked_again(lane_app):
    upload_dist(lane_app, FIRST)
    good = lane_app.get(URL, headers=ADMIN, status=200).body
    companion = stored_path(lane_app, "demo", FIRST[0] + ".metadata")
    with open(companion, "r+b") as handle:  # same inode, other size
        handle.truncate(len(good) // 2)
    lane_app.get(URL, headers=ADMIN, status=404)


def test_a_companion_removed_from_disk_is_not_served(lane_app):
    upload_dist(lane_app, FIRST)
    lane_app.get(URL, headers=ADMIN, status=200)
    os.unlink(stored_path(lane_app, "demo", FIRST[0] + ".metadata"))
    lane_app.get(URL, headers=ADMIN, status=404)
    # The wheel itself is still served.
    assert lane_app.get(URL[: -len(".metadata")], headers=ADMIN, status=200).body == FIRST[1]


def test_metadata_cache_mb_zero_reads_the_file_every_time(make_app, opens):
    test_app = make_app({"pypi.metadata_cache_mb": "0"})
    upload_dist(test_app, FIRST)
    opens.clear()
    for _ in range(2):
        assert b"The first upload" in test_app.get(URL, headers=ADMIN, status=200).body
    assert opens == [FIRST[0] + ".metadata"] * 2


def test_metadata_cache_mb_bounds_the_memory_kept(make_app):
    test_app = make_app({"pypi.metadata_cache_mb": "1"})
    big = b"x" * 200_000  # a long description: each file about 200 KB
    for n in range(8):
        meta = core_metadata("demo", f"{n}.0", body=big.decode())
        dist = make_wheel("demo", f"{n}.0", metadata=meta)
        upload_dist(test_app, dist)
        test_app.get(f"/api/package/demo/{dist[0]}.metadata", headers=ADMIN, status=200)
    kept = service(test_app)._metadata_files.cached_bytes
    assert 0 < kept <= 1024 * 1024


def test_a_negative_metadata_cache_mb_stops_start_up(make_app):
    with pytest.raises(ConfigError, match="pypi.metadata_cache_mb"):
        make_app({"pypi.metadata_cache_mb": "-1"})
