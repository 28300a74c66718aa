"""A short multi-process soak of the write protocol (not run by CI).

Two or three waitress processes share one moto S3 bucket and one index
(PostgreSQL in a schema of its own, or Redis under a prefix of its own). For
``--seconds`` (bounded) uploader threads send distinct and colliding uploads and
a mutator deletes and yanks acknowledged files, while a killer SIGKILLs a random
process every few seconds (the server is started again at once). Then every
process is restarted and the end state is checked:

- every acknowledged (2xx) upload that was not deleted is listed by every
  process with the right sha256, and downloads with it;
- every acknowledged delete is absent from every listing and from the bucket;
- no temp spool files are left, no unfinished multipart uploads.

Run: ``.venv/bin/python -m benchmarks.soak_writes --index postgres --seconds 60``.
Exit status 0 when the end state is right. Everything binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

MB = 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", choices=("postgres", "redis"), default="postgres")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    if not 1 <= args.processes <= 3 or not 0 < args.seconds <= 600:
        parser.error("1-3 processes, at most 600 seconds")

    import boto3
    from moto.server import ThreadedMotoServer

    from tests.fixtures.server import ServerProcess, write_wheel

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[name] = value
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per S3 request otherwise
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    tag = uuid.uuid4().hex[:10]
    bucket = f"soak-{tag}"
    s3.create_bucket(Bucket=bucket)
    work = Path(tempfile.mkdtemp(prefix="ppc-soak-"))
    settings = {
        "pypi.storage": "s3",
        "storage.bucket": bucket,
        "storage.endpoint_url": endpoint,
        "storage.region_name": "us-east-1",
        "storage.prefix": "packages/",
        "storage.dir": None,
        "pypi.repair_grace": "5",
        "pypi.repair_interval": "5",
        "pypi.allow_overwrite": "false",
    }
    if args.index == "postgres":
        settings.update({"pypi.db": "sql", "db.url": args.postgres_url, "db.schema": f"soak_{tag}"})
    else:
        settings.update({"pypi.db": "redis", "db.url": args.redis_url, "db.prefix": f"soak{tag}:"})
    servers = [
        ServerProcess(work / f"s{n}", settings, server={"threads": "4"}) for n in range(args.processes)
    ]
    servers[0].start()  # first alone: it creates the schema
    for srv in servers[1:]:
        srv.start()

    ledger: dict[str, dict] = {}  # filename -> {"sha", "state": acked|deleted|unknown}
    lock = threading.Lock()
    stop = time.monotonic() + args.seconds
    files_dir = work / "files"
    files_dir.mkdir()
    rng = random.Random(tag)

    def upload(srv, path: Path, version: str) -> int | None:
        from tests.e2e.helpers import upload_file

        try:
            return upload_file(srv, path, "soak-demo", version)[0]
        except Exception:
            return None

    def uploader(n: int) -> None:
        for i in range(10_000):
            if time.monotonic() > stop:
                return
            version = f"{n}.{i}"
            size = MB * 9 if i % 25 == 7 else 0  # now and then a multipart upload
            path = write_wheel(
                files_dir, "soak_demo", version, normalized=True, payload=os.urandom(size) if size else None
            )
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            with lock:
                ledger[path.name] = {"sha": sha, "state": "unknown", "version": version}
            for _ in range(3):
                status = upload(rng.choice(servers), path, version)
                if status in (200, 201):
                    with lock:
                        ledger[path.name]["state"] = "acked"
                    break
                time.sleep(0.5)

    def mutator() -> None:
        for _ in range(10_000):
            if time.monotonic() > stop:
                return
            time.sleep(rng.uniform(0.5, 1.5))
            with lock:
                acked = [f for f, e in ledger.items() if e["state"] == "acked"]
            if not acked:
                continue
            name = rng.choice(acked)
            srv = rng.choice(servers)
            try:
                if rng.random() < 0.5:
                    with lock:
                        ledger[name]["state"] = "deleting"
                    status = srv.request("DELETE", f"/api/package/soak-demo/{name}", user="admin")[0]
                    with lock:
                        ledger[name]["state"] = "deleted" if status == 200 else "unknown"
                else:
                    srv.request("POST", f"/api/package/soak-demo/{name}/yank", user="admin")
            except Exception:
                with lock:
                    if ledger[name]["state"] == "deleting":
                        ledger[name]["state"] = "unknown"

    def killer() -> None:
        for _ in range(1000):
            if time.monotonic() > stop - 5:
                return
            time.sleep(rng.uniform(3, 6))
            srv = rng.choice(servers)
            srv.kill()
            srv.start()

    threads = [threading.Thread(target=uploader, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=mutator), threading.Thread(target=killer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.seconds + 120)

    time.sleep(6)  # older than the repair grace
    for srv in servers:
        srv.stop()
        srv.start()
    problems = []
    for srv in servers:
        status, _, body = srv.request(
            "GET",
            "/simple/soak-demo/",
            user="admin",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        )
        listed = (
            {f["filename"]: f["hashes"]["sha256"] for f in json.loads(body)["files"]} if status == 200 else {}
        )
        for name, entry in ledger.items():
            if entry["state"] == "acked":
                if listed.get(name) != entry["sha"]:
                    problems.append(f"{srv.url}: acknowledged {name} not listed right")
                    continue
                status, headers, data = srv.request("GET", f"/api/package/soak-demo/{name}", user="admin")
                if status == 302:
                    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                        headers["Location"], timeout=60
                    ) as resp:
                        data = resp.read()
                if hashlib.sha256(data).hexdigest() != entry["sha"]:
                    problems.append(f"{srv.url}: {name} downloads with another sha256")
            elif entry["state"] == "deleted" and name in listed:
                problems.append(f"{srv.url}: deleted {name} is listed")
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", ())
    ]
    for name, entry in ledger.items():
        if entry["state"] == "deleted" and any(k.endswith("/" + name) for k in keys):
            problems.append(f"deleted {name} is still in the bucket")
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", ())
    # A kill in the middle of a multipart upload leaves one until the grace period.
    leftovers = [p for srv in servers for p in srv.tmpdir.iterdir()]
    counts = {s: sum(1 for e in ledger.values() if e["state"] == s) for s in ("acked", "deleted", "unknown")}
    print(
        json.dumps(
            {
                "files": counts,
                "problems": problems,
                "unfinished_multipart": len(uploads),
                "spool_leftovers": [str(p) for p in leftovers],
            },
            indent=2,
        )
    )
    for srv in servers:
        srv.stop()
    moto.stop()
    _drop_index(args, tag)
    shutil.rmtree(work, ignore_errors=True)
    return 1 if problems or leftovers else 0


def _drop_index(args, tag: str) -> None:
    """Remove the schema or the keys this run made in the shared services."""
    if args.index == "postgres":
        import sqlalchemy as sa

        engine = sa.create_engine(args.postgres_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "soak_{tag}" CASCADE'))
        engine.dispose()
    else:
        import redis

        client = redis.Redis.from_url(args.redis_url)
        keys = list(client.scan_iter(match=f"soak{tag}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


if __name__ == "__main__":
    sys.exit(main())
