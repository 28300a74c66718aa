"""Crashes (SIGKILL) during and right after uploads (SPEC section 11).

"An upload lands whole with the sha256 the server reports, or not at all";
"nothing the server accepted is lost by a crash"; "every process can be
killed at any moment and restarted without repair steps".

A 200 MB wheel is streamed with http.client so the test knows how much of
the body the server has received, and watches the server's TMPDIR and
storage directory to kill it at a chosen stage of the upload. Polling is
bounded in count and time; nothing here asserts on durations.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import zipfile
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    Upload,
    api_files,
    assert_index_matches_storage,
    hidden_leftovers,
    simple_files,
    stored_packages,
    twine_form,
    upload_file,
)
from tests.fixtures.server import package_files, sha256_file

pytestmark = pytest.mark.e2e

PROJECT = "acme-widget"
NAME = "Acme.Widget"
BIG_VERSION = "2.0"
BIG_SIZE = 200 * 1024 * 1024
POLL_INTERVAL = 0.002
POLL_LIMIT = 60.0  # seconds; bounds every wait for a stage of the upload


def _b64_digest(digest) -> str:
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def write_big_wheel(dest: Path, size: int) -> Path:
    """A valid wheel with one STORED member of ``size`` bytes, written in 1 MB chunks."""
    dist_info = f"Acme_Widget-{BIG_VERSION}.dist-info"
    path = dest / f"Acme_Widget-{BIG_VERSION}-py3-none-any.whl"
    chunk = (b"acme-widget-payload-" * 52429)[: 1024 * 1024]  # no newlines, not all zeros
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        info = zipfile.ZipInfo("acme_widget/blob.bin", date_time=(2024, 5, 6, 7, 8, 10))
        info.compress_type = zipfile.ZIP_STORED
        info.file_size = size
        digest = hashlib.sha256()
        with zf.open(info, "w", force_zip64=True) as member:
            left = size
            for _ in range(size // len(chunk) + 1):
                if left <= 0:
                    break
                block = chunk[:left]
                member.write(block)
                digest.update(block)
                left -= len(block)
        record.append(f"acme_widget/blob.bin,sha256={_b64_digest(digest)},{size}")
        small = {
            "acme_widget/__init__.py": f'VERSION = "{BIG_VERSION}"\n'.encode(),
            f"{dist_info}/METADATA": (
                f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {BIG_VERSION}\nSummary: big\n\n"
            ).encode(),
            f"{dist_info}/WHEEL": (
                b"Wheel-Version: 1.0\nGenerator: pypicloud-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
            ),
        }
        for member_name, data in small.items():
            zf.writestr(member_name, data)
            record.append(f"{member_name},sha256={_b64_digest(hashlib.sha256(data))},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture(scope="module")
def big_wheel(tmp_path_factory) -> Path:
    return write_big_wheel(tmp_path_factory.mktemp("big"), BIG_SIZE)


def big_upload(server, wheel: Path) -> Upload:
    return Upload(server, "/", twine_form(NAME, BIG_VERSION, wheel.name, sha256_file(wheel)), wheel)


def poll(condition, what: str, limit: float = POLL_LIMIT):
    """Call ``condition`` until it returns something truthy; bounded in count and time."""
    deadline = time.monotonic() + limit
    for _ in range(int(limit / POLL_INTERVAL) + 1):
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            break
        time.sleep(POLL_INTERVAL)
    raise AssertionError(f"gave up waiting for {what} after {limit}s")


def assert_nothing_visible(server) -> None:
    """No package file of an interrupted upload is visible (hidden temp files may remain)."""
    visible = package_files(server.storage_dir)
    assert visible == [], f"visible files after a crash mid-upload: {visible}"


def report(server, label: str) -> None:
    leftovers = hidden_leftovers(server)
    print(f"[{label}] leftovers after the crash: {leftovers or 'none'}")


def check_after_restart(server, big_wheel: Path, *, may_exist: bool) -> None:
    """After a restart the index matches storage; the big file is whole or absent."""
    server.start()
    stored = assert_index_matches_storage(server, PROJECT, download=False)
    if big_wheel.name in stored:
        assert may_exist, "an upload killed before it finished is listed"
        assert stored[big_wheel.name] == sha256_file(big_wheel)
    else:
        assert simple_files(server, PROJECT) is None  # 404: nothing else was uploaded


def upload_big_successfully(server, big_wheel: Path) -> None:
    upload = big_upload(server, big_wheel)
    try:
        assert upload.send(), upload.error
        status, body = upload.response()
    finally:
        upload.close()
    assert status == 200, body
    stored = assert_index_matches_storage(server, PROJECT)  # downloads and re-hashes
    assert stored == {big_wheel.name: sha256_file(big_wheel)}
    record = api_files(server, PROJECT)[big_wheel.name]
    assert record["size"] == big_wheel.stat().st_size


def test_kill_mid_body_then_restart_and_upload(server, big_wheel):
    upload = big_upload(server, big_wheel)
    killed = {}

    def on_progress(sent, total):
        if sent > total // 2 and not killed:
            killed["at"] = sent
            server.kill()
            return True
        return False

    try:
        finished = upload.send(on_progress)
    finally:
        upload.close()
    assert killed and not finished, "the server was not killed mid-body"
    assert not server.alive
    print(f"killed after {killed['at']} of {upload.total} bytes")
    assert_nothing_visible(server)
    report(server, "mid-body")

    check_after_restart(server, big_wheel, may_exist=False)
    upload_big_successfully(server, big_wheel)

    # kill -9 right after the successful answer: the file survives, whole.
    server.kill()
    server.start()
    stored = assert_index_matches_storage(server, PROJECT)
    assert stored == {big_wheel.name: sha256_file(big_wheel)}


@pytest.mark.parametrize("stage", ["spool", "storage"])
def test_kill_while_the_server_processes_the_upload(server, big_wheel, stage):
    """Kill once the whole body is sent and the app is copying it (to its spool or storage)."""
    project_dir = server.storage_dir / PROJECT

    def stage_reached():
        if stage == "spool":
            return [p for p in server.tmpdir.iterdir() if p.name.startswith("ppc-upload-")]
        if project_dir.is_dir():
            return [p for p in project_dir.iterdir() if ".tmp-" in p.name]
        return []

    upload = big_upload(server, big_wheel)
    try:
        assert upload.send(), upload.error
        seen = poll(
            lambda: stage_reached() or (upload.response_ready() and ["answered"]),
            f"the {stage} stage of the upload",
        )
        server.kill()
    finally:
        upload.close()
    print(f"killed at stage {stage}: saw {seen}")
    answered = seen == ["answered"]
    assert not answered, f"the upload finished before the {stage} stage was seen"
    # A file killed before it was published must not be visible.
    assert_nothing_visible(server)
    report(server, stage)

    check_after_restart(server, big_wheel, may_exist=False)
    # The retry of the interrupted upload succeeds and lands whole.
    upload_big_successfully(server, big_wheel)


def test_kill_right_after_small_uploads(server, dists):
    """Files acknowledged with 200 are there after kill -9 and restart, byte for byte."""
    files = [*dists.build("1.0"), *dists.build("1.1")]
    for path in files:
        version = "1.0" if "-1.0" in path.name else "1.1"
        status, body = upload_file(server, path, NAME, version)
        assert status == 200, body
    server.kill()
    server.start()
    stored = assert_index_matches_storage(server, PROJECT)
    assert stored == {p.name: sha256_file(p) for p in files}
    # The PEP 658 metadata files survived too.
    for path in files:
        status, _, body = server.request("GET", f"/api/package/{PROJECT}/{path.name}.metadata", user="admin")
        assert status == 200, body
        assert b"Name: Acme.Widget" in body
    # And kill -9 while idle, twice in a row, changes nothing either.
    for _ in range(2):
        server.kill()
        server.start()
    assert stored_packages(server, PROJECT) == stored
    assert {n: r["sha256"] for n, r in api_files(server, PROJECT).items()} == stored


def test_index_rebuilt_from_storage_after_losing_it(server, dists):
    """Storage is the source of truth: with the index file gone, a restart rebuilds it."""
    files = [*dists.build("1.0")]
    for path in files:
        status, body = upload_file(server, path, NAME, "1.0")
        assert status == 200, body
    server.kill()
    db = Path(server.app_settings["db.url"].removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(str(db) + suffix)
        if candidate.exists():
            os.unlink(candidate)
    server.start()
    stored = assert_index_matches_storage(server, PROJECT)
    assert stored == {p.name: sha256_file(p) for p in files}
