"""Issue 17's one table: every target as a ratio to the in-memory ceiling, verdicts per row.

Input: the dict :func:`benchmarks.compare.run` returns (the ``peers`` entry of a
run's JSON). One row per measure: the twine upload (the raw client beside it, for
information), the spread project page at each size (a target that could not be grown
to it says why), ``.metadata``, download, the large file, RSS, and one row per S3
rebuild variant (pypicloud alone). Columns: the ceiling's own figure, then every target as ``figure (ratio
to the ceiling)``, then pypicloud against the fastest peer (> 1: pypicloud is faster),
the target and whether it is met. Ratios are always of speeds: for a rate, the rate
over the ceiling's; for seconds, the ceiling's seconds over the target's.
"""

from __future__ import annotations

CEILING, OURS = "ceiling", "ours"
RSS_LIMIT_MB = 64.0
S3_REBUILD_LIMIT_S = 20.0


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
    keys = [k for k, figures in big.items() if isinstance(figures, dict)]  # not bytes, rounds, downloads
    rows = []
    for way in ("upload", "download"):
        seconds = {k: big[k][f"{way}_s"] for k in keys}
        rows.append(_peer_target(_row(f"{mb} {way}", "s", seconds, peers, higher_better=False)))
        growth = {k: big[k][f"{way}_rss_growth_mb"] for k in keys}
        row = _row(f"{mb} {way}: server RSS growth", "MB", growth, peers, higher_better=False)
        row["x_ceiling"] = {}  # memory, not speed: no ratio
        rows.append(_limit_target(row, RSS_LIMIT_MB, f"< {RSS_LIMIT_MB:.0f} MB"))
    return rows


def _info(row: dict, text: str) -> dict:
    row["target"], row["met"], row["info"] = text, None, True
    return row


def _upload_rows(result: dict, peers: list[str]) -> list[dict]:
    twine = result.get("twine", {})
    name = "twine upload, 1 process"
    row = _ceiling_target(_row(name, "files/s", result["upload_files_per_s"], peers), 0.6)
    row["files"] = twine.get("files", result.get("corpus_files"))
    row["failed"] = twine.get("failed", {})
    out = [row]
    raw = result.get("raw_upload_files_per_s")
    if raw:
        raw_row = _row("raw multipart client, 1 connection", "files/s", raw, peers)
        out.append(_info(raw_row, "- (twine's form without twine)"))
    return out


def _page_rows(result: dict, peers: list[str]) -> list[dict]:
    out = []
    for page in result.get("project_page", []):
        measure = f"project page, c=16, spread over {page['projects']:,} projects"
        row = _ceiling_target(_row(measure, "req/s", page["rps"], peers), 0.8)
        row["errors"] = page.get("errors", {})
        row["not_measured"] = page.get("not_measured", {})
        out.append(row)
        with_headers = page.get("index_headers_ceiling_rps")
        if with_headers:
            # The ceiling's pages with the headers an index sends (benchmarks.ceiling):
            # what of the gap is waitress handling those headers, not our work.
            values = {CEILING: with_headers, OURS: page["rps"].get(OURS)}
            headers_row = _row(f"{measure}: the ceiling sending an index's headers", "req/s", values, [])
            out.append(_info(headers_row, "- (the ceiling's pages with pypicloud's headers)"))
        first = page.get("first_pass")
        if first:
            # The pass that warms every page before the measured run: a page's first
            # request since the start (a render), where the target has a cache.
            rates = {k: f["rps"] if f["asked"] == page["projects"] else None for k, f in first.items()}
            first_row = _row(
                f"first request of each page, {page['projects']:,} projects", "req/s", rates, peers
            )
            first_row["not_measured"] = {
                k: f"asked {f['asked']:,} of {page['projects']:,} pages within the time budget"
                for k, f in first.items()
                if f["asked"] != page["projects"]
            }
            out.append(_info(first_row, "- (each page once after a restart)"))
    return out


def _rss_row(result: dict, peers: list[str]) -> list[dict]:
    # The higher of: after the API uploads (before seeding restarts the servers), and
    # after the seeding and the page runs.
    uploads, load = result.get("rss_after_uploads_mb", {}), result.get("rss_after_load_mb", {})
    after = {k: max(v for v in (uploads.get(k), load.get(k)) if v) for k in {*uploads, *load}}
    fresh = result.get("rss_fresh_start_mb", {})
    growth = {k: round(after[k] / fresh[k], 2) for k in fresh if after.get(k) and fresh[k]}
    if not growth:
        return []
    row = _row("RSS after the bulk load / after a fresh start", "x", growth, peers, higher_better=False)
    row["x_ceiling"] = {}
    row["values"][CEILING] = None
    return [_limit_target(row, 1.5 + 1e-9, "<= 1.5 x")]


def _s3_rows(result: dict, keys: list[str]) -> list[dict]:
    """One row per S3 rebuild variant: pypicloud's seconds; no other target has one."""
    s3 = result.get("s3_rebuild") or {}
    out = []
    for variant in s3.get("variants", []):
        files = variant.get("files")
        where = f"{files:,} files" if files else f"{s3['projects']:,} projects"
        values = dict.fromkeys(keys) | {OURS: variant.get("rebuild_s")}
        row = _row(f"{variant['label']}, {where} on the moto server", "s", values, [], higher_better=False)
        row["x_ceiling"] = {}
        row["failed"] = {OURS: variant["failed"]} if "failed" in variant else {}
        out.append(_limit_target(row, S3_REBUILD_LIMIT_S, f"< {S3_REBUILD_LIMIT_S:.0f} s"))
        if variant.get("server_cpu_s") is not None:
            # Where the time goes: the moto server (one Python process) and this one
            # share the two cores; HEADs and listing pages are what the server works on.
            heads, pages = variant.get("s3_HeadObject", 0), variant.get("s3_ListObjectsV2", 0)
            cpu = dict.fromkeys(keys) | {OURS: variant["server_cpu_s"]}
            measure = f"{variant['label']}: the moto server's CPU ({heads:,} HEADs, {pages:,} listing pages)"
            cpu_row = _row(measure, "s", cpu, [], higher_better=False)
            cpu_row["x_ceiling"] = {}
            out.append(_info(cpu_row, f"- (the client's own CPU: {variant.get('client_cpu_s', '-')} s)"))
    if s3.get("skipped"):
        row = _row("S3 rebuild on the moto server", "s", dict.fromkeys(keys), [], higher_better=False)
        row["x_ceiling"], row["failed"] = {}, {OURS: s3["skipped"]}
        out.append(_limit_target(row, S3_REBUILD_LIMIT_S, f"< {S3_REBUILD_LIMIT_S:.0f} s"))
    return out


def rows(peers_result: dict) -> list[dict]:
    """The table's rows, each with ``met`` (None when pypicloud's figure is missing)."""
    keys = list(peers_result["targets"])
    peers = [k for k in keys if k not in (CEILING, OURS)]
    out = _upload_rows(peers_result, peers) + _page_rows(peers_result, peers)
    for case in ("metadata", "download"):
        info = peers_result.get(case)
        if info:
            name = ".metadata of a wheel, c=16" if case == "metadata" else "download of a small wheel, c=16"
            row = _ceiling_target(_row(name, "req/s", info["rps"], peers), 0.5)
            row["errors"] = info.get("errors", {})
            row["not_served"] = info.get("not_served", [])
            out.append(row)
    if peers_result.get("big_file"):
        out += _big_rows(peers_result["big_file"], peers)
    return out + _rss_row(peers_result, peers) + _s3_rows(peers_result, keys)


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if unit != "s" else f"{value:.2f}"


def _cell(row: dict, key: str) -> str:
    if key in row.get("not_served", ()):
        return "not served"
    if key in row.get("not_measured", {}):
        return f"not measured: {row['not_measured'][key]}"
    if key in row.get("failed", {}):
        return f"not measured: {row['failed'][key]}"
    value = row["values"].get(key)
    text = _number(value, row["unit"])
    ratio = row["x_ceiling"].get(key)
    if ratio is not None:
        text = f"{text} ({ratio:.2f} x)" if ratio >= 0.1 else f"{text} ({ratio:.2g} x)"
    errors = row.get("errors", {}).get(key)
    return f"{text}, {errors:,} errors" if errors else text


def _status(row: dict) -> str:
    if row.get("info"):
        return "-"
    return "not measured" if row["met"] is None else ("met" if row["met"] else "missed")


def markdown(peers_result: dict) -> str:
    labels = peers_result["targets"]
    header = ["measure", "unit"] + [labels[k] for k in labels] + ["ours / fastest peer", "target", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows(peers_result):
        cells = [row["measure"], row["unit"]] + [_cell(row, k) for k in labels]
        vs = row["ours_vs_fastest_peer"]
        peer = labels.get(row["fastest_peer"] or "", "")
        cells.append(f"{vs:.2f} ({peer})" if vs is not None and row["x_ceiling"] else "-")
        cells += [row["target"], _status(row)]
        lines.append("| " + " | ".join(cells) + " |")
    skipped = peers_result.get("skipped") or {}
    for label, why in skipped.items():
        lines.append(f"\n{label} not measured: {why}")
    return "\n".join(lines)
