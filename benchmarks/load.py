"""Put a corpus into pypicloud: through the upload API, or straight into storage.

* :func:`upload_all` posts twine-style multipart uploads with Basic auth (the path
  a user takes; the server parses, checks and indexes every file).
* :func:`bulk_put` writes files, their storage metadata and the PEP 658 companion
  with the storage backend's own ``put`` (exactly what an upload stores), for the
  large corpora; the server then rebuilds its index from storage.
* :func:`stream_upload` posts one file from disk in 1 MB chunks (the 1 GB file).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from pypicloud.models import FileRecord, utcnow
from pypicloud.service import METADATA_SUFFIX, record_to_metadata

from .corpus import Dist

CHUNK = 1024 * 1024


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _form_parts(dist: Dist, sha256: str, boundary: str) -> tuple[bytes, bytes]:
    """The multipart body around the file's bytes: (head, tail)."""
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": dist.name,
        "version": dist.version,
        "metadata_version": "2.1",
        "filetype": "bdist_wheel" if dist.kind == "wheel" else "sdist",
        "pyversion": "py3" if dist.kind == "wheel" else "source",
        "sha256_digest": sha256,
    }
    head = io.BytesIO()
    for key, value in fields.items():
        head.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        )
    head.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{dist.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
    )
    return head.getvalue(), f"\r\n--{boundary}--\r\n".encode()


class Uploader:
    """One keep-alive connection posting uploads to ``/simple/``."""

    def __init__(self, port: int, auth: str, path: str = "/simple/"):
        self.port, self.auth, self.path = port, auth, path
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def post(self, dist: Dist, body: Iterable[bytes] | bytes, length: int, boundary: str) -> None:
        headers = {
            "Authorization": self.auth,
            "Content-Length": str(length),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        }
        self.conn.request("POST", self.path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read()
        if response.status != 200:
            raise RuntimeError(f"upload of {dist.filename}: {response.status} {text[:300]!r}")

    def upload(self, dist: Dist) -> None:
        boundary = uuid.uuid4().hex
        head, tail = _form_parts(dist, hashlib.sha256(dist.data).hexdigest(), boundary)
        body = head + dist.data + tail
        self.post(dist, body, len(body), boundary)

    def close(self) -> None:
        self.conn.close()


def upload_all(port: int, auth: str, dists: Iterable[Dist], workers: int = 4, path: str = "/simple/") -> int:
    """Upload every dist through the API with ``workers`` connections; return the count.

    ``path`` is where the index takes uploads (``/simple/`` for pypicloud; peers differ).
    """
    local = threading.local()
    uploaders: list[Uploader] = []
    lock = threading.Lock()

    def one(dist: Dist) -> None:
        if not hasattr(local, "uploader"):
            local.uploader = Uploader(port, auth, path)
            with lock:
                uploaders.append(local.uploader)
        local.uploader.upload(dist)

    count = 0
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(one, dists):
            count += 1
    for uploader in uploaders:
        uploader.close()
    return count


def stream_upload(port: int, auth: str, dist: Dist, path: str, url_path: str = "/simple/") -> str:
    """Upload the file at ``path`` (``dist`` gives its name) in 1 MB chunks; return its sha256."""
    boundary = uuid.uuid4().hex
    sha256 = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            sha256.update(block)
    head, tail = _form_parts(dist, sha256.hexdigest(), boundary)
    size = os.path.getsize(path)

    def body() -> Iterator[bytes]:
        yield head
        with open(path, "rb") as handle:
            yield from iter(lambda: handle.read(CHUNK), b"")
        yield tail

    uploader = Uploader(port, auth, url_path)
    try:
        uploader.post(dist, body(), len(head) + size + len(tail), boundary)
    finally:
        uploader.close()
    return sha256.hexdigest()


def storage_record(dist: Dist) -> FileRecord:
    """The index row an upload of ``dist`` would make."""
    return FileRecord(
        project=dist.project,
        name=dist.name,
        version=dist.version,
        filename=dist.filename,
        size=len(dist.data),
        sha256=hashlib.sha256(dist.data).hexdigest(),
        md5=hashlib.md5(dist.data).hexdigest(),
        requires_python=">=3.8",
        summary=f"Benchmark package {dist.name} {dist.version}",
        upload_time=utcnow(),
        uploader="bulk",
        metadata_sha256=hashlib.sha256(dist.metadata).hexdigest() if dist.metadata_reliable else None,
    )


def put_dist(storage, dist: Dist) -> int:
    """Store one dist as an upload would; return the number of objects written."""
    record = storage_record(dist)
    storage.put(dist.project, dist.filename, io.BytesIO(dist.data), record_to_metadata(record))
    if record.metadata_sha256:
        storage.put(
            dist.project,
            dist.filename + METADATA_SUFFIX,
            io.BytesIO(dist.metadata),
            {"sha256": record.metadata_sha256},
            overwrite=True,
        )
        return 2
    return 1


def _batches(items: Iterable[Dist], size: int) -> Iterator[list[Dist]]:
    batch: list[Dist] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def bulk_put(
    storage, dists: Iterable[Dist], workers: int = 4, progress: Callable[[int], None] | None = None
) -> tuple[int, int]:
    """Store every dist with ``storage.put``; return (files, objects).

    Dists are made lazily and stored in batches, so memory stays flat at any size.
    """
    files = objects = 0
    with ThreadPoolExecutor(workers) as pool:
        for batch in _batches(dists, 1000):
            objects += sum(pool.map(lambda d: put_dist(storage, d), batch))
            files += len(batch)
            if progress is not None:
                progress(files)
    return files, objects
