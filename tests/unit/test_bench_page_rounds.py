"""The spread project page's rounds (benchmarks.compare.project_pages): the ceiling and
pypicloud alternate and keep their median run, the ceiling also runs with an index's
headers, and the peers run once.

wrk, the first pass and the servers are replaced by stand-ins; nothing is started or timed.
"""

from __future__ import annotations

from benchmarks import compare, page_pass, wrk
from benchmarks.peers import Target


class _Server:
    def __init__(self, port: int):
        self.port, self.pid = port, port


def test_rounds_alternate_and_each_target_keeps_its_median(monkeypatch):
    targets = [
        Target(key, key, server=_Server(port), ready_path="/")
        for key, port in (("ceiling", 1), ("ours", 2), ("devpi", 3))
    ]  # type: ignore[arg-type]
    rates = {1: [1000.0, 1200.0, 900.0], 2: [700.0, 800.0, 2000.0], 3: [100.0]}
    with_headers = iter([850.0, 800.0, 820.0])
    order: list[tuple[int, bool]] = []

    def run(port, path, *, headers, connections, duration, paths):
        indexed = "X-Ceiling-Headers" in headers
        order.append((port, indexed))
        rps = next(with_headers) if indexed else rates[port].pop(0)
        return {"rps": rps, "errors": 1 if port == 3 else 0, "p50_ms": 1.0}

    monkeypatch.setattr(compare, "get", lambda *a, **k: (200, {}, b""))
    monkeypatch.setattr(page_pass, "run", lambda *a, **k: {"rps": 5.0, "asked": 3, "errors": 0})
    monkeypatch.setattr(wrk, "run", run)
    monkeypatch.setattr(compare, "settle", lambda target: None)
    got = compare.project_pages(targets, ["a", "b", "c"], 1, log=lambda _: None, rounds=3)

    assert got["rps"] == {"ceiling": 1000.0, "ours": 800.0, "devpi": 100.0}
    assert got["rounds"] == {
        "ceiling": [1000.0, 1200.0, 900.0],
        "ours": [700.0, 800.0, 2000.0],
        "devpi": [100.0],
    }
    assert got["index_headers_ceiling_rps"] == 820.0
    assert got["errors"] == {"ceiling": 0, "ours": 0, "devpi": 1}
    # ceiling and ours turn their order each round; the peer only once, after the first round
    assert order == [
        (1, False),
        (2, False),
        (1, True),
        (3, False),
        (2, False),
        (1, False),
        (1, True),
        (1, False),
        (2, False),
        (1, True),
    ]
