"""Repros A, B, D and E of the reliability review (§3.1, §3.2): every upload,
delete and yank is all-or-nothing across storage and index.

Each test runs a real waitress process whose S3 storage (moto server) and
index (PostgreSQL or Redis) are wrapped by ``tests.faults.wrappers``: the plan
file makes a named step fail, block or SIGKILL the process.
"""

from __future__ import annotations

import threading
import time

from tests.e2e.helpers import simple_files, upload_file
from tests.faults.helpers import fetch_sha256
from tests.fixtures.server import sha256_file, write_wheel

PROJECT = "fault-demo"


def wheel(tmp_path, version: str):
    return write_wheel(
        tmp_path,
        "fault_demo",
        version,
        normalized=True,
        payload=f"VERSION = {version!r}  # {tmp_path.name}\n".encode(),
    )


def s3_key(s3_client, bucket: str, filename: str) -> dict | None:
    """The object of ``filename`` in the bucket (any key ending in it), or None."""
    listing = s3_client.list_objects_v2(Bucket=bucket, Prefix="packages/")
    for item in listing.get("Contents", ()):
        if item["Key"].endswith("/" + filename):
            return s3_client.head_object(Bucket=bucket, Key=item["Key"])
    return None


def created(answer) -> bool:
    """A legacy upload answers 200 either way; the body tells a new file."""
    status, body = answer
    return status in (200, 201) and "Already uploaded" not in body


def assert_served(srv, path) -> None:
    """Listed on the project page with its sha256, and downloads with it."""
    sha = sha256_file(path)
    files = simple_files(srv, PROJECT) or {}
    assert path.name in files, f"{path.name} is not listed: {sorted(files)}"
    assert files[path.name]["hashes"]["sha256"] == sha
    assert fetch_sha256(srv, PROJECT, path.name) == sha


def assert_absent(srv, s3_client, bucket, path) -> None:
    assert path.name not in (simple_files(srv, PROJECT) or {})
    assert s3_key(s3_client, bucket, path.name) is None


def test_e_identical_upload_acknowledged_while_the_first_index_write_fails(
    tmp_path, faulty_server, plan, s3_client, s3_bucket
):
    """E: B is told 200 while A (same bytes) is stuck before its index write;
    A's index write then fails. The file B was told about stays, listed."""
    srv = faulty_server(server={"threads": "4"})
    path = wheel(tmp_path, "1.0")
    plan.set([{"id": "e", "step": "index.add", "filename": path.name, "action": "block_fail"}])
    first: dict = {}
    thread = threading.Thread(target=lambda: first.update(answer=upload_file(srv, path, PROJECT, "1.0")))
    thread.start()
    try:
        plan.wait_reached("e")
        status, body = upload_file(srv, path, PROJECT, "1.0")
        assert status == 200 and "Already uploaded" in body, body
    finally:
        plan.release("e")
        thread.join(60)
    assert first["answer"][0] == 503, first
    assert_served(srv, path)
    assert s3_key(s3_client, s3_bucket, path.name) is not None


def test_b_killed_between_storage_and_index_write_then_retried(
    tmp_path, faulty_server, plan, s3_client, s3_bucket
):
    """B: SIGKILL after the bytes are in S3 and before the index row: the
    restart's repair lists the file, and the client's retry answers 200 with
    the file listed."""
    srv = faulty_server()
    seed = wheel(tmp_path, "0.9")
    assert created(upload_file(srv, seed, PROJECT, "0.9"))
    path = wheel(tmp_path, "1.0")
    plan.set([{"id": "b", "step": "storage.put.after", "filename": path.name, "action": "kill"}])
    try:
        status, _ = upload_file(srv, path, PROJECT, "1.0")
    except (OSError, AssertionError, Exception):
        status = None
    assert status is None, "the server should have died before answering"
    assert plan.reached("b")
    srv.kill()
    plan.set([])
    srv.start()
    assert s3_key(s3_client, s3_bucket, path.name) is not None
    assert_served(srv, path)  # repaired at start-up, no retry and no rebuild needed
    status, body = upload_file(srv, path, PROJECT, "1.0")
    assert status == 200 and "Already uploaded" in body, body
    assert_served(srv, path)
    assert_served(srv, seed)


def test_a_delete_failing_in_storage_changes_nothing_and_a_retry_finishes(
    tmp_path, faulty_server, plan, s3_client, s3_bucket
):
    """A: a DELETE while S3 fails answers 503 and leaves the file listed and
    downloadable; the retried DELETE succeeds; the name is free again."""
    srv = faulty_server()
    path = wheel(tmp_path, "1.0")
    assert created(upload_file(srv, path, PROJECT, "1.0"))
    plan.set([{"id": "a", "step": "storage.delete", "filename": path.name, "action": "fail"}])
    url = f"/api/package/{PROJECT}/{path.name}"
    status, _, body = srv.request("DELETE", url, user="admin")
    assert status == 503, body
    assert_served(srv, path)
    status, _, body = srv.request("DELETE", url, user="admin")
    assert status == 200, body
    assert_absent(srv, s3_client, s3_bucket, path)
    answer = upload_file(srv, path, PROJECT, "1.0")
    assert created(answer), answer
    assert_served(srv, path)


def test_a_delete_failing_in_the_index_is_finished_by_a_retry(
    tmp_path, faulty_server, plan, s3_client, s3_bucket
):
    """A, other half: the bytes are gone but the index write fails (503); a
    retried DELETE answers 200, and an identical re-upload is stored again."""
    srv = faulty_server()
    path = wheel(tmp_path, "1.0")
    assert created(upload_file(srv, path, PROJECT, "1.0"))
    plan.set([{"id": "a2", "step": "index.remove", "filename": path.name, "action": "fail"}])
    url = f"/api/package/{PROJECT}/{path.name}"
    status, _, body = srv.request("DELETE", url, user="admin")
    assert status == 503, body
    status, _, body = srv.request("DELETE", url, user="admin")
    assert status == 200, body
    assert_absent(srv, s3_client, s3_bucket, path)
    answer = upload_file(srv, path, PROJECT, "1.0")
    assert created(answer), answer
    assert_served(srv, path)


def test_d_yank_failing_in_the_index_leaves_storage_unchanged(
    tmp_path, faulty_server, plan, s3_client, s3_bucket
):
    """D: a yank whose index write fails answers 503 and storage does not carry
    it (a rebuild does not apply it); the retry yanks in both."""
    srv = faulty_server()
    path = wheel(tmp_path, "1.0")
    assert created(upload_file(srv, path, PROJECT, "1.0"))
    plan.set([{"id": "d", "step": "index.set_yanked", "filename": path.name, "action": "fail"}])
    url = f"/api/package/{PROJECT}/{path.name}/yank"
    status, _, body = srv.request(
        "POST", url, user="admin", body=b'{"reason": "bad"}', headers={"Content-Type": "application/json"}
    )
    assert status == 503, body
    assert "yanked" not in s3_key(s3_client, s3_bucket, path.name)["Metadata"]
    assert simple_files(srv, PROJECT)[path.name].get("yanked", False) is False
    status, _, body = srv.request("POST", "/admin/rebuild", user="admin")
    assert status == 200, body
    assert simple_files(srv, PROJECT)[path.name].get("yanked", False) is False
    status, _, body = srv.request(
        "POST", url, user="admin", body=b'{"reason": "bad"}', headers={"Content-Type": "application/json"}
    )
    assert status == 200, body
    assert s3_key(s3_client, s3_bucket, path.name)["Metadata"].get("yanked") == "bad"
    assert simple_files(srv, PROJECT)[path.name]["yanked"] == "bad"


def test_a_5xx_upload_left_half_done_is_finished_by_the_periodic_repair(tmp_path, faulty_server, plan):
    """The index write fails after the bytes are stored (503) and nobody
    retries: the periodic repair lists the file (whole), with no restart."""
    srv = faulty_server(**{"pypi.repair_interval": "1"})
    path = wheel(tmp_path, "1.0")
    # Only the request's own index write fails, not one of the repair loop.
    plan.set(
        [{"id": "p", "step": "index.add", "filename": path.name, "action": "fail", "thread": "waitress"}]
    )
    status, body = upload_file(srv, path, PROJECT, "1.0")
    assert status == 503, body
    for _ in range(300):  # bounded: a repair round runs every second
        if path.name in (simple_files(srv, PROJECT) or {}):
            break
        time.sleep(0.05)
    assert_served(srv, path)
