"""The comparison's corpus sizes (benchmarks.compare.page_sizes): a target that could not
grow to a size is left out of that size and every larger one, each cell saying why.

Seeding and wrk are replaced by stand-ins; nothing is started or timed here.
"""

from __future__ import annotations

from types import SimpleNamespace

from benchmarks import compare, seeding
from benchmarks.peers import Target


def test_a_target_left_behind_is_not_measured_at_that_size_or_any_larger(monkeypatch):
    targets = [Target(key, key, server=None, ready_path="/") for key in ("ceiling", "ours", "devpi")]  # type: ignore[arg-type]
    asked: list[tuple[int, list[str]]] = []

    def grow(active, auth, admin_hash, start, stop, budget, log):
        return {
            t.key: ({"reason": "too slow"} if t.key == "devpi" else {"files": stop - start}) for t in active
        }

    def pages(measured, names, duration, log, first_pass_budget, rounds):
        asked.append((len(names), [t.key for t in measured]))
        return {"rps": {t.key: 100.0 for t in measured}, "errors": {}}

    monkeypatch.setattr(seeding, "grow", grow)
    monkeypatch.setattr(compare, "project_pages", pages)
    options = SimpleNamespace(
        peer_projects=10,
        peer_sizes=[100, 1000],
        api_growth_budget=1.0,
        duration=1,
        first_pass_budget=1.0,
        page_rounds=3,
    )
    got = compare.page_sizes(targets, "auth", "hash", options, log=lambda _: None)

    assert asked == [(100, ["ceiling", "ours"]), (1000, ["ceiling", "ours"])]
    first, second = got["project_page"]
    assert first["not_measured"] == {"devpi": "too slow"}
    assert second["not_measured"] == {"devpi": "not grown to 100 projects (see that row)"}
    assert second["rps"]["devpi"] is None
    assert [step["to"] for step in got["growth"]] == [100, 1000]
    assert "devpi" not in got["growth"][1]  # not asked to grow again
