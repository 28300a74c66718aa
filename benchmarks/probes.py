"""Single-request probes: cold start, and ``/simple/`` rendered once then served from cache."""

from __future__ import annotations

import statistics
import time

from .server import Server, get

HTML = {"Accept": "text/html"}


def _timed_get(port: int, path: str, headers: dict) -> tuple[float, int, dict, bytes]:
    started = time.perf_counter()
    status, response_headers, body = get(port, path, headers, timeout=120)
    return (time.perf_counter() - started) * 1000, status, response_headers, body


def cold_start(server: Server, path: str) -> dict:
    """Seconds from launching ``pserve`` to the first 200 on ``path``, and RSS then."""
    server.start()
    seconds = server.wait_ready(path, timeout=1800)
    return {"cold_start_s": round(seconds, 2), "rss_mb": round(server.rss_kb() / 1024, 1)}


def index_cache(port: int, repeat: int = 20) -> dict:
    """``/simple/``: first render, cached answer, and revalidation with the ETag.

    Call right after start-up, before anything else asked for ``/simple/``.
    """
    first_ms, status, headers, body = _timed_get(port, "/simple/", HTML)
    if status != 200:
        raise RuntimeError(f"/simple/ answered {status}")
    etag = headers.get("ETag")
    cached = [_timed_get(port, "/simple/", HTML) for _ in range(repeat)]
    revalidate = {**HTML, "If-None-Match": etag or '"none"'}
    revalidated = [_timed_get(port, "/simple/", revalidate) for _ in range(repeat)]
    return {
        "projects_listed": body.count(b"<a "),
        "bytes": len(body),
        "etag": bool(etag),
        "first_ms": round(first_ms, 2),
        "cached_ms": round(statistics.median(t for t, *_ in cached), 2),
        "revalidated_ms": round(statistics.median(t for t, *_ in revalidated), 2),
        "revalidation_status": sorted({s for _, s, *_ in revalidated}),
        "cache_control": headers.get("Cache-Control"),
    }
