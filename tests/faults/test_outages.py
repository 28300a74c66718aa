"""Repros C and G of the reliability review (§3.4, §3.5, §3.6) and the crash
leftovers of issue 11 item 5 (dead temp files, unfinished multipart uploads).

F (concurrent first downloads on PostgreSQL) is in the index contract suite:
``tests/contract/test_index.py::test_concurrent_first_signed_url_writes_never_fail``.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

import pytest

from pypicloud.storage.s3 import key_hash
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.s3 import s3_settings
from tests.fixtures.services import POSTGRES_URL, REDIS_URL

MB = 1024 * 1024


def _proxied_index(kind: str, request, proxy: TcpProxy) -> dict[str, str]:
    if kind == "postgres":
        _, schema = request.getfixturevalue("postgres_schema")
        url = POSTGRES_URL.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        return {"pypi.db": "sql", "db.url": url, "db.schema": schema}
    _, prefix = request.getfixturevalue("redis_prefix")
    url = REDIS_URL.replace("127.0.0.1:6379", f"127.0.0.1:{proxy.port}")
    return {"pypi.db": "redis", "db.url": url, "db.prefix": prefix}


KINDS = [pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("redis", marks=pytest.mark.redis)]


@pytest.mark.parametrize("kind", KINDS)
def test_c_no_503_after_the_index_is_back(kind, request, server_factory):
    """C: a thread idle during a whole index outage answers its next request
    (its kept connection died under it)."""
    port = 5432 if kind == "postgres" else 6379
    proxy = TcpProxy(port)
    try:
        srv = server_factory(_proxied_index(kind, request, proxy), server={"threads": "1"})
        assert srv.request("GET", "/simple/", user="admin")[0] == 200
        proxy.cut()
        proxy.restore()
        answers = [srv.request("GET", "/simple/", user="admin")[0] for _ in range(5)]
        assert answers == [200] * 5
    finally:
        proxy.close()


@pytest.mark.parametrize("kind", KINDS)
def test_outage_503s_name_the_index(kind, request, server_factory):
    """§3.5: during an index outage the 503 says which backend is down."""
    port = 5432 if kind == "postgres" else 6379
    proxy = TcpProxy(port)
    try:
        srv = server_factory(_proxied_index(kind, request, proxy), server={"threads": "2"})
        label = b"PostgreSQL" if kind == "postgres" else b"Redis"
        assert srv.request("GET", "/simple/", user="admin")[0] == 200
        proxy.cut()
        srv.until_status("GET", "/simple/", 503, user="admin")  # the warm page: once the cut is noticed
        for path in ("/simple/", "/api/package/", "/health"):
            status, _, body = srv.request("GET", path, user="admin")
            assert status == 503, (path, body)
            assert label in body, (path, body)
        proxy.restore()
        assert srv.request("GET", "/simple/", user="admin")[0] == 200
    finally:
        proxy.close()


def test_g_multipart_uploads_share_one_bounded_pool(s3_storage_factory):
    """G: the parts of successive multipart uploads are sent by one pool of
    threads, not by new threads for every upload."""
    storage = s3_storage_factory(max_concurrency=2, multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    senders: set[threading.Thread] = set()
    storage.client.meta.events.register(
        "before-call.s3.UploadPart", lambda **_: senders.add(threading.current_thread())
    )
    body = os.urandom(11 * MB)  # three parts each
    for n in range(4):
        import io

        storage.put("demo", f"demo-{n}.tar.gz", io.BytesIO(body), {"sha256": "x"})
    assert len(senders) <= 2 * storage.max_concurrency, senders
    assert all(storage.stat("demo", f"demo-{n}.tar.gz").size == len(body) for n in range(4))


def test_dead_temp_files_are_swept_at_start_up_and_live_ones_kept(server_factory):
    """Issue 11 item 5: a partial temp file of a killed writer goes at start-up;
    one a live writer holds locked stays."""
    srv = server_factory(start=False)
    folder = srv.storage_dir / "demo"
    folder.mkdir(parents=True)
    dead = folder / ".demo-1.0.tar.gz.tmp-0123456789abcdef"
    dead.write_bytes(b"x" * 4096)
    live = folder / ".demo-1.1.tar.gz.tmp-fedcba9876543210"
    live.write_bytes(b"y" * 4096)
    old = time.time() - 600
    for path in (dead, live):
        os.utime(path, (old, old))
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a writer still at work
        srv.start()
        assert not dead.exists()
        assert live.exists()
    finally:
        os.close(fd)


def test_stale_multipart_uploads_are_aborted_at_start_up(server_factory, moto_server, s3_bucket, s3_client):
    """Issue 11 item 5: the unfinished multipart upload of a killed server is
    aborted at the next start-up; an upload outside our prefix is not touched."""
    ours = f"packages/{key_hash('demo-1.0.tar.gz')}/demo/demo-1.0.tar.gz"
    foreign = "elsewhere/backup.tar"
    for key in (ours, foreign):
        s3_client.create_multipart_upload(Bucket=s3_bucket, Key=key)
    time.sleep(1.1)  # older than the grace period below
    server_factory(s3_settings(moto_server, s3_bucket, prefix="packages/", multipart_grace="1"))
    left = [u["Key"] for u in s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", ())]
    assert left == [foreign]


def test_a_bucket_the_server_creates_aborts_incomplete_uploads(
    server_factory, moto_server, s3_bucket_name, s3_client
):
    server_factory(s3_settings(moto_server, s3_bucket_name, prefix="packages/"))
    rules = s3_client.get_bucket_lifecycle_configuration(Bucket=s3_bucket_name)["Rules"]
    assert any(
        r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1
        and r["Status"] == "Enabled"
        for r in rules
    ), rules


def test_spool_files_of_a_killed_server_are_swept_at_start_up(tmp_path, server_factory, plan):
    """The private temp copy of an upload killed before it was stored goes at the
    next start-up (not only when a later upload happens to sweep)."""
    from tests.e2e.helpers import upload_file
    from tests.faults.helpers import REPO
    from tests.fixtures.server import write_wheel

    srv = server_factory(
        {
            "pypi.storage": "tests.faults.wrappers.FaultyStorage",
            "faults.storage": "file",
            "faults.plan": str(plan.path),
        },
        env={"PYTHONPATH": str(REPO)},
    )
    path = write_wheel(tmp_path, "spool_demo", "1.0", normalized=True)
    plan.set([{"id": "s", "step": "storage.put", "filename": path.name, "action": "kill"}])
    try:
        upload_file(srv, path, "spool-demo", "1.0")
    except Exception:
        pass  # no answer: the server died
    assert plan.reached("s")
    srv.kill()
    spooled = [p for p in srv.tmpdir.iterdir() if p.name.startswith("ppc-upload-")]
    assert spooled, "the killed upload left no spool file (nothing to test)"
    old = time.time() - 600
    for leftover in spooled:
        os.utime(leftover, (old, old))
    plan.set([])
    srv.start()
    assert not [p for p in srv.tmpdir.iterdir() if p.name.startswith("ppc-upload-")]
