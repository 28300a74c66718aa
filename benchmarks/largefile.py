"""Server memory while a 1 GB file is uploaded and downloaded.

The upload is streamed from disk in 1 MB chunks (http.client); the download is read
in 1 MB chunks and hashed. A thread samples the server's VmRSS every 20 ms; the
figure is the highest sample minus the RSS just before the transfer.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import time

from . import corpus, load
from .server import get, rss_kb


class RssSampler:
    """Highest VmRSS of ``pid`` while the ``with`` block runs (bounded by ``limit_s``)."""

    def __init__(self, pid: int, interval: float = 0.02, limit_s: float = 1800):
        self.pid, self.interval, self.limit_s = pid, interval, limit_s
        self.baseline = self.peak = rss_kb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.peak = max(self.peak, rss_kb(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kb(self.pid))

    @property
    def growth_mb(self) -> float:
        return round((self.peak - self.baseline) / 1024, 1)


def download(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"download answered {response.status}")
        digest, size = hashlib.sha256(), 0
        for block in iter(lambda: response.read(load.CHUNK), b""):
            digest.update(block)
            size += len(block)
        return size, digest.hexdigest()
    finally:
        conn.close()


def measure(port: int, pid: int, auth: str, directory: str, size: int, log=print) -> dict:
    os.makedirs(directory, exist_ok=True)
    started = time.perf_counter()
    path = corpus.write_large_wheel(directory, size)
    log(
        f"  large wheel ready ({os.path.getsize(path) / 1e9:.2f} GB) in {time.perf_counter() - started:.1f} s"
    )
    filename = os.path.basename(path)
    dist = corpus.Dist(corpus.LARGE_NAME, corpus.LARGE_VERSION, "wheel", filename, b"", b"", True)
    file_size = os.path.getsize(path)

    # One authenticated request first: verifying an argon2id password allocates its
    # memory cost (64 MiB for the usual parameters) for a moment; that is a login
    # cost, not a transfer cost, and later requests hit the credential cache.
    get(port, "/simple/", {"Authorization": auth})
    with RssSampler(pid) as upload_rss:
        started = time.perf_counter()
        expected = load.stream_upload(port, auth, dist, path)
        upload_s = time.perf_counter() - started
    with RssSampler(pid) as download_rss:
        started = time.perf_counter()
        got, sha = download(port, f"/api/package/{dist.project}/{filename}")
        download_s = time.perf_counter() - started
    if got != file_size or sha != expected:
        raise RuntimeError(f"downloaded {got} bytes of {file_size}, or other bytes")
    return {
        "bytes": file_size,
        "upload_s": round(upload_s, 1),
        "upload_rss_growth_mb": upload_rss.growth_mb,
        "download_s": round(download_s, 1),
        "download_rss_growth_mb": download_rss.growth_mb,
        "rss_before_mb": round(upload_rss.baseline / 1024, 1),
    }
