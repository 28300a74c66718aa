"""Issue 17's one table: every target as a ratio to the in-memory ceiling, verdicts per row.

Input: the dict :func:`benchmarks.compare.measure` returns (the ``peers`` entry of a
run's JSON). Columns: the ceiling's own figure, then every target as ``figure (ratio
to the ceiling)``, then pypicloud against the fastest peer (> 1: pypicloud is faster),
the target and whether it is met. Ratios are always of speeds: for a rate, the rate
over the ceiling's; for seconds, the ceiling's seconds over the target's.
"""

from __future__ import annotations

CEILING, OURS = "ceiling", "ours"
RSS_LIMIT_MB = 64.0


def _speed_ratio(value: float | None, base: float | None, higher_better: bool) -> float | None:
    if not value or not base:
        return None
    return value / base if higher_better else base / value


def _fastest_peer(values: dict, peers: list[str], higher_better: bool) -> tuple[str | None, float | None]:
    measured = [(values[k], k) for k in peers if values.get(k)]
    if not measured:
        return None, None
    value, key = max(measured) if higher_better else min(measured)
    return key, value


def _row(measure: str, unit: str, values: dict, peers: list[str], higher_better: bool = True) -> dict:
    ceiling = values.get(CEILING)
    fastest, fastest_value = _fastest_peer(values, peers, higher_better)
    return {
        "measure": measure,
        "unit": unit,
        "values": values,
        "higher_better": higher_better,
        "x_ceiling": {k: _speed_ratio(v, ceiling, higher_better) for k, v in values.items() if k != CEILING},
        "fastest_peer": fastest,
        "ours_vs_fastest_peer": _speed_ratio(values.get(OURS), fastest_value, higher_better),
    }


def _ceiling_target(row: dict, share: float) -> dict:
    ratio = row["x_ceiling"].get(OURS)
    row["target"] = f">= {share} x ceiling"
    row["met"] = None if ratio is None else ratio >= share
    return row


def _peer_target(row: dict) -> dict:
    ratio = row["ours_vs_fastest_peer"]
    row["target"] = "as fast as the fastest peer"
    row["met"] = None if ratio is None else ratio >= 1.0
    return row


def _limit_target(row: dict, limit: float, text: str) -> dict:
    value = row["values"].get(OURS)
    row["target"] = text
    row["met"] = None if value is None else value < limit
    return row


def _big_rows(big: dict, peers: list[str]) -> list[dict]:
    mb = f"{big['bytes'] / 2**20:.0f} MiB"
    keys = [k for k in big if k not in ("bytes", "rounds")]
    rows = []
    for way in ("upload", "download"):
        seconds = {k: big[k][f"{way}_s"] for k in keys}
        rows.append(_peer_target(_row(f"{mb} {way}", "s", seconds, peers, higher_better=False)))
        growth = {k: big[k][f"{way}_rss_growth_mb"] for k in keys}
        row = _row(f"{mb} {way}: server RSS growth", "MB", growth, peers, higher_better=False)
        row["x_ceiling"] = {}  # memory, not speed: no ratio
        rows.append(_limit_target(row, RSS_LIMIT_MB, f"< {RSS_LIMIT_MB:.0f} MB"))
    return rows


def rows(peers_result: dict) -> list[dict]:
    """The table's rows, each with ``met`` (None when pypicloud's figure is missing)."""
    keys = list(peers_result["targets"])
    peers = [k for k in keys if k not in (CEILING, OURS)]
    out = [
        _ceiling_target(
            _row("twine upload, 1 process", "files/s", peers_result["upload_files_per_s"], peers), 0.6
        )
    ]
    for page in peers_result.get("project_page", []):
        measure = f"project page, c=16, spread over {page['projects']:,} projects"
        out.append(_ceiling_target(_row(measure, "req/s", page["rps"], peers), 0.8))
    for case in ("metadata", "download"):
        info = peers_result.get(case)
        if info:
            name = ".metadata of a wheel, c=16" if case == "metadata" else "download of a small wheel, c=16"
            out.append(_ceiling_target(_row(name, "req/s", info["rps"], peers), 0.5))
    if peers_result.get("big_file"):
        out += _big_rows(peers_result["big_file"], peers)
    after, fresh = peers_result.get("rss_after_load_mb", {}), peers_result.get("rss_fresh_start_mb", {})
    growth = {k: round(after[k] / fresh[k], 2) for k in fresh if after.get(k) and fresh[k]}
    if growth:
        row = _row("RSS after the bulk load / after a fresh start", "x", growth, peers, higher_better=False)
        row["x_ceiling"] = {}
        row["values"][CEILING] = None
        out.append(_limit_target(row, 1.5 + 1e-9, "<= 1.5 x"))
    return out


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if unit != "s" else f"{value:.2f}"


def _cell(row: dict, key: str, not_served: list[str]) -> str:
    if key in not_served:
        return "not served"
    value = row["values"].get(key)
    text = _number(value, row["unit"])
    ratio = row["x_ceiling"].get(key)
    if ratio is None:
        return text
    return f"{text} ({ratio:.2f} x)" if ratio >= 0.1 else f"{text} ({ratio:.3f} x)"


def markdown(peers_result: dict) -> str:
    labels = peers_result["targets"]
    header = ["measure", "unit"] + [labels[k] for k in labels] + ["ours / fastest peer", "target", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows(peers_result):
        case = "metadata" if row["measure"].startswith(".metadata") else None
        not_served = peers_result.get(case, {}).get("not_served", []) if case else []
        cells = [row["measure"], row["unit"]] + [_cell(row, k, not_served) for k in labels]
        vs = row["ours_vs_fastest_peer"]
        peer = labels.get(row["fastest_peer"] or "", "")
        cells.append(f"{vs:.2f} ({peer})" if vs is not None and row["x_ceiling"] else "-")
        status = "not measured" if row["met"] is None else ("met" if row["met"] else "missed")
        cells += [row["target"], status]
        lines.append("| " + " | ".join(cells) + " |")
    skipped = peers_result.get("skipped") or {}
    for label, why in skipped.items():
        lines.append(f"\n{label} not measured: {why}")
    return "\n".join(lines)
