"""pypicloud 1.x's metadata names and file layout (pypicloud.storage.legacy_layout)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pypicloud.storage.legacy_layout import from_v1, read_v1_metadata, survey, write_v1_metadata

V1_S3 = {
    "name": "alpha",
    "version": "1.0",
    "hash-sha256": "ab" * 32,
    "hash-md5": "cd" * 16,
    "requires-python": ">=3.8",
    "summary": "Alpha",
    "uploader": "alice",
}


def test_1x_s3_metadata_gets_our_names():
    when = datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert from_v1(V1_S3, last_modified=when) == {
        "name": "alpha",
        "version": "1.0",
        "sha256": "ab" * 32,
        "md5": "cd" * 16,
        "requires-python": ">=3.8",
        "summary": "Alpha",
        "uploader": "alice",
        "upload-time": "2021-05-06T07:08:09+00:00",
    }


def test_metadata_that_is_not_1x_comes_back_unchanged():
    ours = {
        "sha256": "ab" * 32,
        "hash-sha256": "other",
        "requires_python": ">=3.8",
        "empty": "",
        "yanked": "",
    }
    assert from_v1(ours, last_modified=datetime.now(UTC)) == ours
    plain = {"requires_python": ">=3.8", "summary": "x"}  # no 1.x hash names: not 1.x's
    assert from_v1(plain) == plain


def test_sidecar_round_trip_readable_by_both(tmp_path):
    path = tmp_path / "alpha" / "1.0" / "alpha-1.0.tar.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    (tmp_path / "alpha" / "1.0" / "alpha-1.0.tar.gz.meta").write_text(
        json.dumps({"hash_sha256": "ab" * 32, "requires_python": ">=3.8", "uploader": "bob", "summary": None})
    )
    meta = read_v1_metadata(str(path))
    assert meta["sha256"] == "ab" * 32 and meta["requires-python"] == ">=3.8"
    assert meta["version"] == "1.0" and meta["uploader"] == "bob" and "upload-time" in meta
    assert "summary" not in meta
    write_v1_metadata(str(path), dict(meta, yanked="bad"))
    raw = json.loads((path.parent / "alpha-1.0.tar.gz.meta").read_text())
    assert raw["hash_sha256"] == "ab" * 32 and raw["requires_python"] == ">=3.8"
    assert "version" not in raw and "name" not in raw  # 1.x passes those positionally
    assert read_v1_metadata(str(path)) == dict(meta, yanked="bad")
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_survey(tmp_path):
    (tmp_path / "alpha" / "1.0").mkdir(parents=True)
    (tmp_path / "alpha" / "1.0" / "alpha-1.0.tar.gz").write_bytes(b"x")
    (tmp_path / "alpha" / "1.0" / "alpha-1.0.tar.gz.meta").write_text("{}")
    (tmp_path / "alpha" / "1.0" / ".alpha-1.0.tar.gz.0a1b2c3d").write_bytes(b"")  # 1.x temp
    (tmp_path / "alpha" / "alpha-2.0-py3-none-any.whl").write_bytes(b"x")
    (tmp_path / "alpha" / "alpha-2.0-py3-none-any.whl.metadata").write_bytes(b"x")
    (tmp_path / "alpha" / ".alpha-2.0-py3-none-any.whl.meta").write_text("{}")
    assert survey(str(tmp_path)) == {"ours": 1, "v1": 1, "unexplained": 0, "example": None}
    (tmp_path / "alpha" / "1.0" / "alpha-1.0-py2.7.egg").write_bytes(b"x")
    (tmp_path / "alpha" / "1.0" / "deeper" / "more").mkdir(parents=True)
    (tmp_path / "alpha" / "1.0" / "deeper" / "more" / "a.whl").write_bytes(b"x")
    (tmp_path / "alpha" / "1.0" / "deeper" / "b.txt").write_bytes(b"x")
    (tmp_path / "stray.tar.gz").write_bytes(b"x")
    counts = survey(str(tmp_path))
    assert counts["unexplained"] == 4 and counts["ours"] == 1 and counts["v1"] == 1
    assert counts["example"] == str(tmp_path / "alpha" / "1.0" / "alpha-1.0-py2.7.egg")
