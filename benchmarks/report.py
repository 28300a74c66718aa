"""The SPEC section 12 verdicts and a Markdown report of one run's results."""

from __future__ import annotations

import math

from . import peer_report
from .peer_report import S3_REBUILD_LIMIT_S

PROJECT_PAGES = ("project_html", "project_json")


def _rows(
    results: dict, case: str | None = None, auth: str | None = None, connections: int | None = None
) -> list[dict]:
    return [
        r
        for r in results.get("matrix", [])
        if (case is None or r["case"] == case)
        and (auth is None or r["auth"] == auth)
        and (connections is None or r["connections"] == connections)
    ]


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "not met")


def _project_page(results: dict) -> tuple[bool | None, str]:
    rows = [r for c in PROJECT_PAGES for r in _rows(results, c, "anonymous", 16)]
    if not rows:
        return None, "no run"
    worst = min(rows, key=lambda r: r["ratio"])
    text = ", ".join(f"{r['case']} {r['ratio']:.2f}" for r in rows)
    return worst["ratio"] >= 0.5, f"{text} x hello-world (c=16, anonymous)"


def _flat(results: dict) -> tuple[bool | None, str]:
    scaling = results.get("scaling")
    if not scaling:
        return None, "needs --large (10,000 and 100,000 projects)"
    base = {
        r["case"]: r["ratio"]
        for r in _rows(results, auth="anonymous", connections=16)
        if r["case"] in PROJECT_PAGES
    }
    parts, ok = [], True
    for row in scaling:
        if row["case"] in base and base[row["case"]]:
            relative = row["ratio"] / base[row["case"]]
            ok = ok and relative >= 0.8
            parts.append(f"{row['case']} @ {row['projects']:,}: {relative:.2f}")
    return ok, "ratio to hello-world relative to 100 projects: " + ", ".join(parts)


def _simple_index(results: dict) -> tuple[bool | None, str]:
    info = results.get("simple_index_large")
    if not info:
        return None, "no run"
    ok = info["revalidation_status"] == [304] and info["etag"] and info["cached_ms"] < info["first_ms"]
    return ok, (
        f"{info['projects']:,} projects: first {info['first_ms']} ms, cached "
        f"{info['cached_ms']} ms, revalidation {info['revalidated_ms']} ms "
        f"-> {info['revalidation_status']}"
    )


def _basic_auth(results: dict) -> tuple[bool | None, str]:
    """Geometric mean of Basic/anonymous req/s over every path and concurrency.

    One pair alone swings by +-20% on a busy machine; the mean of ten does not.
    """
    pairs = []
    for anon in _rows(results, auth="anonymous"):
        basic = next((r for r in _rows(results, anon["case"], "basic", anon["connections"])), None)
        if basic and anon["rps"]:
            pairs.append((basic["rps"] / anon["rps"], anon["case"], anon["connections"]))
    if not pairs:
        return None, "no run"
    mean = math.prod(p[0] for p in pairs) ** (1 / len(pairs))
    worst = min(pairs)
    text = (
        f"Basic/anonymous req/s: geometric mean {mean:.2f} over {len(pairs)} pairs "
        f"(lowest {worst[0]:.2f}, {worst[1]} c={worst[2]})"
    )
    costs = {(r["case"], r["auth"]): r["us_per_request"] for r in results.get("inprocess", [])}
    extra = [
        costs[(c, "basic")] - costs[(c, "anonymous")]
        for c, a in costs
        if a == "anonymous" and (c, "basic") in costs
    ]
    if extra:
        text += f"; in-process Basic adds {min(extra):.0f}-{max(extra):.0f} us per request"
    return mean >= 0.8, text


def _large_file(results: dict) -> tuple[bool | None, str]:
    info = results.get("large_file")
    if not info:
        return None, "needs --large"
    up, down = info["upload_rss_growth_mb"], info["download_rss_growth_mb"]
    return max(up, down) < 64, f"upload +{up} MB, download +{down} MB ({info['bytes']:,} bytes)"


def _s3_rebuild(results: dict) -> tuple[bool | None, str]:
    s3 = next((r for r in results.get("rebuild", []) if r["backend"].startswith("s3")), None)
    if s3 is None or "skipped" in s3:
        return None, "TODO: S3 not measurable here" + (f" ({s3['skipped']})" if s3 else "")
    text = (
        f"{s3['files']:,} files / {s3['objects']:,} objects in {s3['rebuild_s']} s "
        f"({s3['objects'] / max(s3['rebuild_s'], 0.01):.0f} objects/s)"
    )
    if "again_rebuild_s" in s3:
        text += (
            f"; again in a new process {s3['again_rebuild_s']} s, {s3.get('again_s3_HeadObject', 0)} HEADs"
        )
    if s3["files"] < 10_000:
        estimate = s3["rebuild_s"] * 10_000 / s3["files"]
        return None, text + f"; 10,000 files estimated {estimate:.0f} s (run --large to measure)"
    return s3["rebuild_s"] < S3_REBUILD_LIMIT_S, text


def _ceiling_uploads(results: dict) -> tuple[bool | None, str]:
    row = next((r for r in results.get("writes", []) if r["path"] == "upload, 1 connection"), None)
    if row is None:
        return None, "no run"
    return row["ratio"] >= 0.6, (
        f"{row['ours']} files/s, ceiling {row['ceiling']} files/s: {row['ratio']:.2f} x ceiling"
    )


def _ceiling_downloads(results: dict) -> tuple[bool | None, str]:
    rows = [
        r
        for c in ("metadata", "download")
        for r in _rows(results, c, "anonymous", 16)
        if r.get("ceiling_ratio") is not None
    ]
    if not rows:
        return None, "no run"
    worst = min(r["ceiling_ratio"] for r in rows)
    text = ", ".join(f"{r['case']} {r['ceiling_ratio']:.2f}" for r in rows)
    return worst >= 0.5, f"{text} x ceiling (c=16, anonymous)"


TARGETS = (
    ("Project page >= 0.5 x hello-world req/s at c=16", _project_page),
    ("Project page flat from 100 to 100,000 projects", _flat),
    ("/simple/ with 10,000 projects from cache, 304 on revalidation", _simple_index),
    ("Basic auth >= 0.8 x anonymous", _basic_auth),
    ("1 GB upload/download: < 64 MB RSS growth", _large_file),
    (f"S3 rebuild of 10,000 files < {S3_REBUILD_LIMIT_S:.0f} s", _s3_rebuild),
    ("Upload, 1 connection >= 0.6 x in-memory ceiling (issue 17)", _ceiling_uploads),
    (".metadata and download >= 0.5 x in-memory ceiling at c=16 (issue 17)", _ceiling_downloads),
)


def targets(results: dict) -> list[dict]:
    out = []
    for name, check in TARGETS:
        ok, figure = check(results)
        out.append({"target": name, "status": _verdict(ok), "figure": figure})
    return out


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _matrix_rows(rows: list[dict], with_projects: bool = False, with_ceiling: bool = False) -> list[list]:
    out = []
    for r in rows:
        cells = [
            r["case"],
            r["auth"],
            r["connections"],
            f"{r['rps']:.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['hello_rps']:.0f}",
            f"{r['ratio']:.2f}",
        ]
        if with_ceiling:
            ceiling = r.get("ceiling_rps")
            cells += [f"{ceiling:.0f}", f"{r['ceiling_ratio']:.2f}"] if ceiling else ["", ""]
        out.append(([f"{r['projects']:,}"] if with_projects else []) + cells + [r["errors"]])
    return out


MATRIX_HEADER = ["path", "auth", "conns", "req/s", "p50 ms", "p99 ms", "hello req/s", "ratio", "errors"]
CEILING_HEADER = MATRIX_HEADER[:-1] + ["ceiling req/s", "x ceiling", "errors"]


def write_table(rows: list[dict]) -> list[str]:
    """Write paths and large transfers beside the in-memory ceiling."""
    return _table(
        ["path", "pypicloud", "ceiling", "unit", "x ceiling"],
        [[r["path"], r["ours"], r["ceiling"], r["unit"], f"{r['ratio']:.2f}"] for r in rows],
    )


def _peers_section(results: dict) -> list[str]:
    """Issue 17's table of pypicloud, the in-memory ceiling and the peers (``--peers``)."""
    if not results.get("peers"):
        return []
    return [
        "",
        "**Issue 17: the in-memory ceiling, pypicloud and its peers in one run** (each figure "
        "with its ratio to the ceiling's, as speeds; targets measured alternately)",
        "",
        peer_report.markdown(results["peers"]),
    ]


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Run {results['date']} on {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, "
        f"Python {m['python']}; waitress threads {results['settings']['waitress_threads']}, "
        f"wrk {results['settings']['wrk_duration_s']:g} s per run; total "
        f"{results.get('wall_s', '?')} s.",
        "",
    ]
    if not results["settings"].get("peers_only"):
        lines += ["**Targets** (SPEC section 12; issue 17's ratios to the in-memory ceiling)", ""]
        lines += _table(
            ["target", "status", "measured"],
            [[t["target"], t["status"], t["figure"]] for t in results.get("targets", [])],
        )
    lines += _peers_section(results)
    if results["settings"].get("peers_only"):
        return "\n".join(lines)
    load = results.get("load", {})
    lines += [
        "",
        f"**Read paths** ({load.get('projects')} projects, {load.get('files')} files "
        "uploaded through the API; ratio = req/s / mean of the hello-world req/s just before and just after; "
        "x ceiling = req/s / the in-memory ceiling's on the same path, run right beside it)",
        "",
    ]
    with_ceiling = any("ceiling_rps" in r for r in results.get("matrix", []))
    header = CEILING_HEADER if with_ceiling else MATRIX_HEADER
    lines += _table(header, _matrix_rows(results.get("matrix", []), with_ceiling=with_ceiling))
    if results.get("writes"):
        lines += [
            "",
            "**Write paths and large transfers against the in-memory ceiling** (same run; uploads: "
            "ceiling, pypicloud, ceiling, and the ceiling's mean)",
            "",
        ]
        lines += write_table(results["writes"])
    if results.get("inprocess"):
        costs = {(r["case"], r["auth"]): r["us_per_request"] for r in results["inprocess"]}
        cases = list(dict.fromkeys(c for c, _ in costs))
        lines += [
            "",
            "**In-process cost per request** (the app alone, no server: best of 3 x 1,000 calls)",
            "",
        ]
        lines += _table(
            ["path", "anonymous us", "Basic auth us"],
            [[c, costs.get((c, "anonymous")), costs.get((c, "basic"))] for c in cases],
        )
    big = results.get("simple_index_large")
    if big:
        lines += ["", f"**/simple/ with {big['projects']:,} projects** (page {big['bytes']:,} bytes)", ""]
        lines += _table(MATRIX_HEADER, _matrix_rows(big.get("matrix", [])))
    if results.get("scaling"):
        lines += ["", "**Scaling** (c=16, anonymous)", ""]
        lines += _table(["projects"] + MATRIX_HEADER, _matrix_rows(results["scaling"], True))
    lines += ["", "**Other figures**", ""]
    other = [
        [
            "uploads through the API",
            f"{load.get('files')} files in {load.get('upload_s')} s "
            f"({load.get('uploads_per_s')}/s, 4 connections; the in-memory ceiling "
            f"{load.get('ceiling_uploads_per_s')}/s)",
        ],
        [
            "server RSS after loading",
            f"{load.get('rss_after_load_mb')} MB "
            f"(after the read matrix {results.get('rss_after_matrix_mb')} MB)",
        ],
    ]
    cold = results.get("cold_start")
    if cold:
        other.append(
            [
                "cold start to first project page",
                f"{cold['cold_start_s']} s ({cold['projects']} projects, index present)",
            ]
        )
    if big:
        other.append(
            [
                f"cold start, {big['projects']:,} projects",
                f"{big['cold_start_s']} s (to /health), RSS {big['rss_mb']} MB",
            ]
        )
    for r in results.get("rebuild", []):
        if "skipped" in r:
            other.append([f"rebuild, {r['backend']}", f"not measured: {r['skipped']}"])
        else:
            other.append(
                [
                    f"rebuild, {r['backend']}",
                    f"{r['files']:,} files ({r['objects']:,} objects): {r['rebuild_s']} s "
                    f"(list {r['scan_s']} s + index write {r['index_write_s']} s)",
                ]
            )
    c = results.get("clients")
    if c:
        other.append([f"pip download {c['requirement']} (200 versions)", f"{c['pip_download_s']} s"])
        other.append([f"uv pip compile {c['requirement']}", f"{c['uv_pip_compile_s']} s"])
    s = results.get("scale_100k")
    if s:
        other.append(
            [
                "100,000 projects: start-up with rebuild",
                f"{s['cold_start_with_rebuild_s']} s for {s['files']:,} files; RSS "
                f"{s['rss_after_start_mb']} MB, after load {s['rss_after_matrix_mb']} MB",
            ]
        )
    f = results.get("large_file")
    if f:
        other.append(["1 GB upload", f"{f['upload_s']} s, RSS +{f['upload_rss_growth_mb']} MB"])
        other.append(["1 GB download", f"{f['download_s']} s, RSS +{f['download_rss_growth_mb']} MB"])
    lines += _table(["figure", "value"], other)
    return "\n".join(lines)
