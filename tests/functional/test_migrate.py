"""ppc-migrate: storage to storage, with metadata, resume, conflicts and dry runs.

Files are uploaded through the real app first; the destination is then served
by an app built from DEST.ini and must offer the same files, sha256 and PEP 658
metadata. ``main(argv)`` is called in-process so failures can be injected.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from pypicloud.cli import migrate
from pypicloud.storage.file import FileStorage
from tests.fixtures.s3 import s3_settings
from tests.functional.helpers import (
    JSON_TYPE,
    auth_headers,
    base_settings,
    leftover_temp_files,
    make_sdist,
    make_wheel,
    storage_files,
    upload_dist,
)

DISTS = [
    make_wheel("demo", "1.0"),
    make_sdist("demo", "1.0"),
    make_wheel("demo", "2.0", requires_python=">=3.10"),
    make_wheel("Other.Lib", "0.1"),
    make_sdist("Other.Lib", "0.1"),
]


def write_ini(path: Path, settings: dict[str, str]) -> Path:
    lines = ["[app:main]", "use = egg:pypicloud"]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def source(tmp_path, make_app):
    """A file-storage deployment with DISTS uploaded (one yanked): (app, ini path)."""
    base = tmp_path / "source"
    base.mkdir()
    app = make_app(base=base)
    for dist in DISTS:
        upload_dist(app, dist)
    yanked = DISTS[2][0]
    app.post(
        f"/api/package/demo/{yanked}/yank",
        params={"reason": "broken"},
        headers=auth_headers("admin"),
        status=200,
    )
    return app, write_ini(base / "source.ini", app.ppc_settings)


# A destination whose disk fails as ``faults.put`` says (tests/faults/backends.py),
# chosen by dotted name as any third-party backend is.
FLAKY = {"pypi.storage": "tests.faults.backends.FlakyFileStorage"}


def flaky_destination(tmp_path: Path, faults: str) -> Path:
    """A second ini of the deployment ``dest``: the same places, a disk failing as ``faults`` says."""
    _, settings = deployment(tmp_path, "dest")
    return write_ini(tmp_path / "dest" / "flaky.ini", settings | FLAKY | {"faults.put": faults})


def deployment(
    tmp_path: Path, name: str, overrides: dict[str, str | None] | None = None
) -> tuple[Path, dict]:
    """DEST.ini of a deployment under tmp_path/name (base settings, then ``overrides``)."""
    base = tmp_path / name
    settings = base_settings(base)
    for key, value in (overrides or {}).items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    return write_ini(base / f"{name}.ini", settings), settings


def run(capsys, *argv) -> tuple[int, str, str]:
    code = migrate.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def served(app) -> dict[str, dict]:
    """Every file the app lists: filename -> its PEP 691 entry."""
    result = {}
    for project in ("demo", "other-lib"):
        page = app.get(
            f"/simple/{project}/", headers=auth_headers("admin", Accept=JSON_TYPE), expect_errors=True
        )
        if page.status_int == 200:
            result.update({f["filename"]: f for f in page.json["files"]})
    return result


def download(app, project: str, filename: str) -> bytes:
    response = app.get(f"/api/package/{project}/{filename}", headers=auth_headers("admin"))
    if response.status_int == 302:  # object storage: a signed URL on the loopback moto server
        with urllib.request.urlopen(response.headers["Location"], timeout=10) as fetched:
            return fetched.read()
    return response.body


def assert_same_index(source_app, dest_app) -> None:
    """The destination serves every source file with the same bytes, hashes and metadata."""
    expected, got = served(source_app), served(dest_app)
    assert set(got) == set(expected) == {f for f, _ in DISTS}
    for filename, entry in expected.items():
        mine = got[filename]
        for key in ("hashes", "requires-python", "yanked", "core-metadata", "size", "upload-time"):
            assert mine.get(key) == entry.get(key), (filename, key, mine.get(key), entry.get(key))
        project = "demo" if filename.startswith("demo") else "other-lib"
        data = download(dest_app, project, filename)
        assert hashlib.sha256(data).hexdigest() == entry["hashes"]["sha256"]
        if entry.get("core-metadata"):
            meta = dest_app.get(
                f"/api/package/{project}/{filename}.metadata", headers=auth_headers("admin")
            ).body
            assert hashlib.sha256(meta).hexdigest() == entry["core-metadata"]["sha256"]


def stored_names(root: Path) -> list[str]:
    return sorted(p.name for p in storage_files(root))


# ---------------------------------------------------------------------------
def test_file_to_file_copies_everything_and_reindexes(source, tmp_path, make_app, capsys):
    source_app, source_ini = source
    dest_ini, _ = deployment(tmp_path, "dest")
    # A server already running on the (empty) destination sees the files afterwards:
    # the tool rebuilt the index it shares.
    dest_app = make_app(base=tmp_path / "dest")
    assert served(dest_app) == {}

    code, out, err = run(capsys, source_ini, dest_ini)
    assert code == 0, err
    total = len(stored_names(tmp_path / "source" / "packages"))
    assert total == 2 * len(DISTS)  # every file has its PEP 658 .metadata companion
    assert f"ppc-migrate: {total} copied" in err
    assert "0 conflicts, 0 failed" in err
    assert f"destination index rebuilt: {len(DISTS)} files" in err
    assert out == ""  # no per-file lines without --verbose
    assert stored_names(tmp_path / "dest" / "packages") == stored_names(tmp_path / "source" / "packages")
    assert_same_index(source_app, dest_app)
    assert served(dest_app)[DISTS[2][0]]["yanked"] == "broken"

    # Run again: nothing to do, everything already present.
    code, out, err = run(capsys, "--verbose", source_ini, dest_ini)
    assert code == 0, err
    assert f"0 copied (0 bytes), 0 replaced, 0 metadata updated, {total} already present" in err
    assert out.count("present ") == total


def test_file_to_s3_to_s3_to_file(source, tmp_path, make_app, capsys, moto_server, s3_bucket, s3_client):
    source_app, source_ini = source
    s3_a = {**s3_settings(moto_server, s3_bucket, prefix="a/"), "storage.dir": None}
    s3_b = {**s3_settings(moto_server, s3_bucket, prefix="b/", prepend_hash="false"), "storage.dir": None}
    ini_a, _ = deployment(tmp_path, "s3a", s3_a)
    ini_b, _ = deployment(tmp_path, "s3b", s3_b)
    ini_file, _ = deployment(tmp_path, "back")

    code, _, err = run(capsys, source_ini, ini_a)  # file -> S3
    assert code == 0, err
    code, _, err = run(capsys, "--jobs", "2", ini_a, ini_b)  # S3 -> S3 (other prefix and layout)
    assert code == 0, err
    code, _, err = run(capsys, ini_b, ini_file)  # S3 -> file
    assert code == 0, err

    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert f"b/demo/{DISTS[0][0]}" in keys and f"b/demo/{DISTS[0][0]}.metadata" in keys
    for overrides, base in ((s3_a, tmp_path / "s3a"), (s3_b, tmp_path / "s3b"), ({}, tmp_path / "back")):
        dest_app = make_app(overrides, base=base)
        assert_same_index(source_app, dest_app)
    assert stored_names(tmp_path / "back" / "packages") == stored_names(tmp_path / "source" / "packages")


def test_resume_after_a_failure_midway(source, tmp_path, make_app, capsys):
    source_app, source_ini = source
    dest_ini, _ = deployment(tmp_path, "dest")
    # The same destination, its disk failing midway through the fourth file.
    flaky_ini = flaky_destination(tmp_path, "break-after:3")
    code, _, err = run(capsys, source_ini, flaky_ini)
    total = len(stored_names(tmp_path / "source" / "packages"))
    assert code == 1
    assert err.count("failed   ") == total - 3
    assert "disk on fire" in err
    assert "3 copied" in err and f"{total - 3} failed" in err
    assert "run the same command again" in err
    dest_root = tmp_path / "dest" / "packages"
    assert len(stored_names(dest_root)) == 3
    assert not leftover_temp_files(dest_root)  # nothing half-written
    source_root = tmp_path / "source" / "packages"
    for path in storage_files(dest_root):  # what is there is whole
        assert path.read_bytes() == (source_root / path.parent.name / path.name).read_bytes()

    code, _, err = run(capsys, source_ini, dest_ini)
    assert code == 0, err
    assert f"{total - 3} copied" in err and "3 already present" in err
    assert stored_names(dest_root) == stored_names(source_root)  # each file exactly once
    assert_same_index(source_app, make_app(base=tmp_path / "dest"))


def test_interrupt_then_resume(source, tmp_path, capsys):
    _, source_ini = source
    dest_ini, _ = deployment(tmp_path, "dest")
    # The same destination, Ctrl-C arriving during its second write.
    flaky_ini = flaky_destination(tmp_path, "interrupt-at:2")
    code, _, err = run(capsys, source_ini, flaky_ini)
    assert code == 1
    assert "interrupted" in err and "run the same command again" in err
    assert "index rebuilt" not in err
    code, _, err = run(capsys, source_ini, dest_ini)
    assert code == 0, err
    # The copy under way when Ctrl-C came (and at most the one started after it) finished.
    copied = int(re.search(r"(\d+) copied", err).group(1))
    present = int(re.search(r"(\d+) already present", err).group(1))
    assert present >= 1 and copied + present == 2 * len(DISTS)
    assert stored_names(tmp_path / "dest" / "packages") == stored_names(tmp_path / "source" / "packages")


def test_conflicting_destination_file_is_reported_and_kept(source, tmp_path, capsys):
    _, source_ini = source
    dest_ini, settings = deployment(tmp_path, "dest")
    filename = DISTS[0][0]
    dest = FileStorage(settings["storage.dir"])
    dest.put("demo", filename, io.BytesIO(b"someone else's bytes"), {"sha256": "0" * 64})
    conflicting = Path(settings["storage.dir"]) / "demo" / filename

    code, _, err = run(capsys, source_ini, dest_ini)
    assert code == 1
    assert f"conflict demo/{filename}: the destination holds other bytes" in err
    assert "1 conflicts" in err
    assert conflicting.read_bytes() == b"someone else's bytes"
    # Everything else was copied.
    names = stored_names(Path(settings["storage.dir"]))
    assert names == stored_names(tmp_path / "source" / "packages")

    code, out, err = run(capsys, "--dry-run", "--overwrite", source_ini, dest_ini)
    assert code == 0, err
    assert f"would replace demo/{filename}" in out
    assert conflicting.read_bytes() == b"someone else's bytes"

    code, _, err = run(capsys, "--overwrite", source_ini, dest_ini)
    assert code == 0, err
    assert "1 replaced" in err
    assert conflicting.read_bytes() == DISTS[0][1]


def test_dry_run_copies_nothing(source, tmp_path, capsys):
    _, source_ini = source
    dest_ini, settings = deployment(tmp_path, "dest")
    code, out, err = run(capsys, "--dry-run", source_ini, dest_ini)
    assert code == 0, err
    total = len(stored_names(tmp_path / "source" / "packages"))
    lines = out.splitlines()
    assert len(lines) == total
    assert all(line.startswith("would copy ") for line in lines)
    assert f"would copy    demo/{DISTS[0][0]} (" in out
    assert f"would copy    demo/{DISTS[0][0]}.metadata (" in out
    assert "nothing was changed" in err
    assert not (tmp_path / "dest").joinpath("packages").exists()
    assert not (tmp_path / "dest" / "index.sqlite").exists()


def test_no_reindex_leaves_the_index_alone(source, tmp_path, capsys):
    _, source_ini = source
    dest_ini, _ = deployment(tmp_path, "dest")
    code, _, err = run(capsys, "--no-reindex", source_ini, dest_ini)
    assert code == 0, err
    assert "not rebuilt (--no-reindex): run ppc-reindex" in err
    assert not (tmp_path / "dest" / "index.sqlite").exists()


def test_bad_configuration_exits_2(source, tmp_path, capsys):
    _, source_ini = source
    code, _, err = run(capsys, source_ini, tmp_path / "missing.ini")
    assert code == 2 and "no such file" in err
    bad = write_ini(tmp_path / "bad" / "bad.ini", {"pypi.storage": "nosuch"})
    code, _, err = run(capsys, source_ini, bad)
    assert code == 2 and "pypi.storage" in err
    code, _, err = run(capsys, source_ini, source_ini)
    assert code == 2 and "same storage" in err
    read_only, _ = deployment(tmp_path, "ro", {"storage.read_only": "true"})
    (tmp_path / "ro" / "packages").mkdir(parents=True)
    code, _, err = run(capsys, source_ini, read_only)
    assert code == 2 and "read-only" in err
    code, _, err = run(capsys, "--jobs", "0", source_ini, read_only)
    assert code == 2 and "--jobs" in err


def test_large_and_damaged_files_to_s3(tmp_path, capsys, moto_server, s3_bucket, s3_client):
    """Multipart uploads carry the stream; a file whose bytes do not match is not stored."""
    source_ini, settings = deployment(tmp_path, "big")
    storage = FileStorage(settings["storage.dir"])
    big = bytes(range(256)) * (40 * 1024 + 7)  # ~10 MB: above the 8 MB multipart threshold
    storage.put(
        "big",
        "big-1.0.tar.gz",
        io.BytesIO(big),
        {"sha256": hashlib.sha256(big).hexdigest(), "version": "1.0"},
    )
    storage.put(
        "big",
        "big-2.0.tar.gz",
        io.BytesIO(big[:1000]),
        {"sha256": hashlib.sha256(b"not these bytes").hexdigest(), "version": "2.0"},
    )
    dest_ini, _ = deployment(tmp_path, "s3", {**s3_settings(moto_server, s3_bucket), "storage.dir": None})
    code, _, err = run(capsys, "--no-reindex", source_ini, dest_ini)
    assert code == 1
    assert "failed   big/big-2.0.tar.gz: the bytes do not match the sha256" in err
    assert "1 copied" in err and "1 failed" in err
    keys = {o["Key"]: o["Size"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert [k for k in keys if k.endswith("/big-1.0.tar.gz")]
    assert keys[next(k for k in keys if k.endswith("/big-1.0.tar.gz"))] == len(big)
    assert not [k for k in keys if k.endswith("/big-2.0.tar.gz")]
    assert not s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")


SCRIPT = Path(sys.executable).parent / "ppc-migrate"


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed")
def test_installed_console_script(source, tmp_path):
    _, source_ini = source
    dest_ini, _ = deployment(tmp_path, "dest")
    result = subprocess.run(
        [str(SCRIPT), "--dry-run", str(source_ini), str(dest_ini)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("would copy ") == 2 * len(DISTS)


def test_gives_up_after_many_failures_in_a_row(source, tmp_path, capsys, monkeypatch):
    _, source_ini = source
    dest_ini, _ = deployment(tmp_path, "dest", FLAKY | {"faults.put": "fail"})
    monkeypatch.setattr(migrate, "MAX_FAILURES_IN_A_ROW", 3)
    code, _, err = run(capsys, source_ini, dest_ini)
    assert code == 1
    assert re.search(r"giving up after [34] failures in a row", err), err
    failed = int(re.search(r"(\d+) failed", err).group(1))
    not_tried = int(re.search(r"(\d+) not tried", err).group(1))
    assert failed >= 3 and failed + not_tried == 2 * len(DISTS)


def test_the_environment_cannot_make_the_source_writable(tmp_path, monkeypatch):
    """PPC_* variables win over an ini, but not over migrate's read-only source."""
    ini = write_ini(tmp_path / "src.ini", {"pypi.storage": "file", "storage.dir": str(tmp_path / "packages")})
    (tmp_path / "packages").mkdir()
    monkeypatch.setenv("PPC_STORAGE_READ_ONLY", "false")
    monkeypatch.setenv("PPC_STORAGE_CREATE_BUCKET", "true")
    assert migrate._open_source(str(ini)).read_only
    # Other PPC_* variables still apply to the source as to a server.
    monkeypatch.setenv("PPC_STORAGE_DIR", str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere").mkdir()
    assert Path(migrate._open_source(str(ini)).directory) == tmp_path / "elsewhere"
