"""One pass over many pages: each path asked once, in order, over keep-alive connections.

The spread project page is measured by wrk asking pages at random. Right after a
restart (every size of the comparison restarts its servers on the seeded data) most
of those requests would be the first for their page, so the figure would mostly
say what a first render costs, not what serving the index costs, and a random walk
needs about ``n ln n`` requests to reach every page once. This pass asks every page
exactly once first: its own row (information: the cost of a page nobody asked for
since the start) and the warm-up before the measured, steady-state wrk run. Every
target gets the same pass, the ceiling included.
"""

from __future__ import annotations

import http.client
import threading
import time


def run(
    port: int,
    paths: list[str],
    *,
    headers: dict[str, str] | None = None,
    connections: int = 16,
    budget_s: float = 120.0,
    timeout_s: float = 60.0,
) -> dict:
    """Ask every path once on ``127.0.0.1:port``; stop early after ``budget_s`` seconds.

    Returns ``rps`` (answered pages per second), ``asked`` / ``paths`` (how far the
    pass got within the budget) and ``errors`` (answers other than 200, failures).
    """
    lock = threading.Lock()
    position = 0
    answered = errors = 0
    deadline = time.monotonic() + budget_s

    def next_path() -> str | None:
        nonlocal position
        with lock:
            if position >= len(paths) or time.monotonic() >= deadline:
                return None
            position += 1
            return paths[position - 1]

    def worker() -> None:
        nonlocal answered, errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
        ok = bad = 0
        try:
            while (path := next_path()) is not None:
                try:
                    conn.request("GET", path, headers=headers or {})
                    response = conn.getresponse()
                    response.read()
                    if response.status == 200:
                        ok += 1
                    else:
                        bad += 1
                except (OSError, http.client.HTTPException):
                    bad += 1
                    conn.close()  # the next request opens a fresh connection
        finally:
            conn.close()
            with lock:
                answered += ok
                errors += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, connections))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(budget_s + timeout_s + 5)
    seconds = time.perf_counter() - started
    return {
        "rps": round(answered / seconds, 1) if seconds else 0.0,
        "asked": position,
        "paths": len(paths),
        "errors": errors,
        "seconds": round(seconds, 2),
        "connections": connections,
    }
