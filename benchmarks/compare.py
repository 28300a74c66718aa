"""Issue 17 side by side: pypicloud, the in-memory ceiling and the peers in one run.

Every target is a running server (:class:`benchmarks.peers.Target`): the in-memory
ceiling (``ceiling.py``), pypicloud from this checkout, and whichever of devpi-server
6.20, pypiserver 2.4 and pypicloud 1.3.12 could be installed and started
(``peers.py``). Each measurement goes round every target before the next one starts,
so a machine that slows down during the run slows every target alike:

1. **uploads** (:mod:`benchmarks.twine_upload`): the real ``twine upload``, one process
   per target with the whole file set (ceiling first and last); then, for
   information, the raw multipart client over one connection, chunks of 20 files,
   the order of the targets turning by one every chunk.
2. **project page at 16 connections** at every size in ``--peer-sizes``: wrk, each
   request to the page of a project drawn at random from all of them (not one hot
   project). Between sizes every target grows by one wheel per new project, seeded
   straight into its storage (:mod:`benchmarks.seeding`), devpi through its upload
   API within ``--api-growth-budget`` (else its cells say "not measured" and why).
   The ceiling is run before and after the others; its figure is the mean.
3. **RSS after the load** (kept for step 6).
4. **``.metadata`` and download of a small wheel** at 16 connections (wrk; the URL is
   the one the target's own project page links to); ceiling before and after.
5. **a large wheel** (200 MiB) streamed up and read back, checked by sha256, each
   server's RSS sampled every 20 ms (growth = peak minus the RSS before); two rounds,
   the second in reverse order; the best time and the highest growth count.
6. **fresh start**: each server but the ceiling (it keeps everything in memory) is
   restarted on the same data and its RSS read after its first project page.
7. **S3 rebuild** of pypicloud alone (the peers have none), every variant of
   :data:`S3_REBUILDS` on a moto server of its own, after the servers are idle.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

from packaging.utils import canonicalize_name

from . import corpus, load, page_pass, peer_report, peers, rebuild, s3, seeding, twine_upload, wrk
from .peer_files import HTML, SLOW_GET_S, big_file, file_url
from .peers import Target
from .server import ADMIN_PASSWORD, ADMIN_USER, Server, ceiling_ini, cpu_ticks, free_port, get, pypicloud_ini


def settle(target: Target, quiet_s: float = 0.3, limit_s: float = 60.0) -> None:
    """Wait until ``target`` has used no CPU for ``quiet_s`` (at most ``limit_s``): a slow
    server (pypiserver at 100,000 files) is still answering requests wrk gave up on,
    which would slow the next target's run."""
    deadline = time.monotonic() + limit_s
    ticks = cpu_ticks(target.server.pid)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = cpu_ticks(target.server.pid)
        if now == ticks:
            return
        ticks = now


def _bracketed(targets: list[Target], run) -> tuple[dict[str, dict], dict]:
    """``run(target)`` for every target, the ceiling (``targets[0]``) before and after;
    each target idle again before the next one starts."""

    def settled(target: Target) -> dict:
        figures = run(target)
        settle(target)
        return figures

    ceiling, others = targets[0], targets[1:]
    before = settled(ceiling)
    figures = {t.key: settled(t) for t in others}
    after = settled(ceiling)
    mean = dict(before, rps=round((before["rps"] + after["rps"]) / 2, 1))
    figures[ceiling.key] = dict(mean, ceiling_runs=[before["rps"], after["rps"]])
    return figures, figures[ceiling.key]


def _wrk_row(figures: dict[str, dict]) -> dict[str, float | None]:
    """req/s of each target (its errors, e.g. timeouts of a slow peer, are kept beside it)."""
    return {key: f["rps"] for key, f in figures.items()}


# The header the ceiling answers with an index's full page headers (benchmarks.ceiling).
INDEX_HEADERS = {**HTML, "X-Ceiling-Headers": "index"}


def project_pages(
    targets: list[Target],
    names: list[str],
    duration: int,
    log=print,
    first_pass_budget: float = 120.0,
    rounds: int = 3,
) -> dict:
    """req/s of project pages at 16 connections, spread over every project in ``names``,
    after a first pass that asks each page once (within ``first_pass_budget`` seconds
    per target).

    The ceiling (``targets[0]``), the ceiling sending an index's page headers and
    pypicloud (``targets[1]``) run ``rounds`` times each, alternating, and each keeps
    its median: one wrk run of a few seconds on two shared cores moves by 10-15%
    between runs. The peers, far from either, run once, after the first round."""
    projects = [canonicalize_name(n) for n in names]
    for target in targets:  # each target must answer the pages it will be asked for
        for project in (projects[0], projects[-1]):
            # A slow peer (pypiserver lists its whole folder per page) gets a minute.
            status = get(target.port, target.page_path(project), HTML, timeout=SLOW_GET_S)[0]
            if status != 200:
                raise RuntimeError(f"{target.label}: {target.page_path(project)} answered {status}")

    # First every page once, in order (benchmarks.page_pass): its own row, and the
    # warm-up before the measured run, which asks pages at random.
    first: dict[str, dict] = {}
    for target in targets:
        paths = [target.page_path(p) for p in projects]
        first[target.key] = page_pass.run(target.port, paths, headers=HTML, budget_s=first_pass_budget)
        settle(target)
    log(
        f"  first pass, c=16, each of {len(projects)} pages once: { {k: f['rps'] for k, f in first.items()} }"
    )

    def run(target: Target, headers: dict[str, str] = HTML) -> dict:
        paths = [target.page_path(p) for p in projects]
        figures = wrk.run(
            target.port, paths[0], headers=headers, connections=16, duration=duration, paths=paths
        )
        settle(target)
        return figures

    ceiling, ours, others = targets[0], targets[1], targets[2:]
    runs: dict[str, list[dict]] = {t.key: [] for t in targets}
    with_headers: list[float] = []
    for turn in range(max(1, rounds)):
        order = [ceiling, ours] if turn % 2 == 0 else [ours, ceiling]
        for target in order:
            runs[target.key].append(run(target))
        with_headers.append(run(ceiling, INDEX_HEADERS)["rps"])
        if turn == 0:
            for target in others:
                runs[target.key].append(run(target))
    figures = {key: _median_run(key_runs) for key, key_runs in runs.items()}
    rates = _wrk_row(figures)
    log(
        f"  project page, c=16, over {len(projects)} projects: {rates}; "
        f"the ceiling with an index's headers: {statistics.median(with_headers)}"
    )
    return {
        "rps": rates,
        "rounds": {key: [f["rps"] for f in key_runs] for key, key_runs in runs.items()},
        "index_headers_ceiling_rps": statistics.median(with_headers),
        "index_headers_ceiling_rounds": with_headers,
        "errors": {k: f["errors"] for k, f in figures.items()},
        "first_pass": {
            k: {"rps": f["rps"], "asked": f["asked"], "errors": f["errors"]} for k, f in first.items()
        },
    }


def _median_run(runs: list[dict]) -> dict:
    """The run with the median req/s (the lower middle one of an even count), errors summed."""
    ordered = sorted(runs, key=lambda f: f["rps"])
    middle = dict(ordered[(len(ordered) - 1) // 2])
    middle["errors"] = sum(f["errors"] for f in runs)
    return middle


def small_file(targets: list[Target], dist: corpus.Dist, duration: int, log=print) -> dict[str, dict]:
    """req/s of the wheel's ``.metadata`` and of the wheel itself at 16 connections."""
    urls = {t.key: file_url(t, dist.name, dist.filename) for t in targets}
    served = {}
    for target in targets:
        status = get(target.port, urls[target.key] + ".metadata", timeout=SLOW_GET_S)[0]
        served[target.key] = status == 200
    out = {}
    for case, suffix in (("metadata", ".metadata"), ("download", "")):
        active = [t for t in targets if served[t.key] or not suffix]

        def run(target: Target, suffix=suffix) -> dict:
            url = urls[target.key] + suffix
            return wrk.run(target.port, url, connections=16, duration=duration)

        figures, _ = _bracketed(active, run)
        rates = _wrk_row(figures)
        for target in targets:
            rates.setdefault(target.key, None)
        out[case] = {
            "rps": rates,
            "errors": {k: f["errors"] for k, f in figures.items()},
            "not_served": [t.key for t in targets if t not in active],
        }
        log(f"  {case}, c=16: {rates}")
    return out


def rss_mb(targets: list[Target]) -> dict[str, float]:
    return {t.key: round(t.server.rss_kb() / 1024, 1) for t in targets}


def fresh_start(targets: list[Target], names: list[str], budget_s: float, log=print) -> dict[str, float]:
    """RSS of each server restarted on its data, after the same first pass over every
    project page that preceded the page runs (:mod:`benchmarks.page_pass`): a server's
    bounded page cache then holds as much after the restart as after the load, so the
    ratio shows what the load itself left behind."""
    out = {}
    projects = [canonicalize_name(n) for n in names]
    for target in targets:
        target.server.stop()
        target.start()
        get(target.port, target.page_path(projects[0]), HTML, timeout=SLOW_GET_S)
        paths = [target.page_path(p) for p in projects]
        page_pass.run(target.port, paths, headers=HTML, budget_s=budget_s)
        out[target.key] = round(target.server.rss_kb() / 1024, 1)
    log(f"  RSS after a fresh start and one pass over {len(projects):,} pages: {out}")
    return out


def project_names(count: int) -> list[str]:
    """The corpus's projects: the probe and ``count - 1`` fillers."""
    return [corpus.PROBE] + [corpus.project_name(i) for i in range(count - 1)]


def upload_rows(
    targets: list[Target], auth: str, workdir: str, projects: int, versions: int, log=print
) -> dict:
    """The real ``twine upload`` (ceiling first and last), then the raw multipart client
    with other versions of the same projects (the order of the targets turning)."""
    dists = twine_upload.upload_set(projects, versions)
    log(f"twine upload of {len(dists)} files, one process per target")
    twine = twine_upload.twine(targets, auth, dists, os.path.join(workdir, "twine-files"), log=log)
    raw = twine_upload.raw_client(
        targets, auth, twine_upload.upload_set(projects, versions, versions), log=log
    )
    for target in targets:  # the API's rate, to tell whether growing through it fits the budget
        target.info["api_files_per_s"] = raw.get(target.key)
    return {
        "corpus_files": len(dists),
        "twine": twine,
        "upload_files_per_s": twine["files_per_s"],
        "raw_upload_files_per_s": raw,
    }


def page_sizes(targets: list[Target], auth: str, admin_hash: str, options, log=print) -> dict:
    """The spread project page at every size; between sizes each target is seeded
    (:mod:`benchmarks.seeding`), or grown through its API within the budget, or left
    behind (its cells at this and larger sizes say why)."""
    current = options.peer_projects
    sizes = sorted(s for s in options.peer_sizes if s >= current) or [current]
    behind: dict[str, str] = {}  # targets left behind: a pointer to the size they missed
    pages, grown = [], []
    for size in sizes:
        reasons: dict[str, str] = {}  # why, in the row of the size they could not reach
        if size > current:
            log(f"  growing every target from {current:,} to {size:,} projects (one wheel each)")
            active = [t for t in targets if t.key not in behind]
            step = seeding.grow(active, auth, admin_hash, current, size, options.api_growth_budget, log=log)
            grown.append({"from": current, "to": size, **step})
            for key, figures in step.items():
                if "reason" in figures:
                    reasons[key] = figures["reason"]
                    behind[key] = f"not grown to {size:,} projects (see that row)"
            current = size
        measured = [t for t in targets if t.key not in behind]
        row = project_pages(
            measured,
            project_names(size),
            options.duration,
            log=log,
            first_pass_budget=options.first_pass_budget,
            rounds=options.page_rounds,
        )
        row["rps"].update(dict.fromkeys(behind))
        pages.append({"projects": size, **row, "not_measured": {**behind, **reasons}})
    return {"project_page": pages, "growth": grown}


def measure(targets: list[Target], auth: str, admin_hash: str, workdir: str, options, log=print) -> dict:
    """Every figure of the comparison; ``targets[0]`` is the ceiling, ``targets[1]`` pypicloud.

    ``options``: ``peer_projects``, ``versions``, ``peer_sizes``, ``duration``,
    ``big_upload_mb``, ``api_growth_budget`` (see :func:`add_arguments`).
    """
    out: dict = {"targets": {t.key: t.label for t in targets}, "duration_s": options.duration}
    out.update(upload_rows(targets, auth, workdir, options.peer_projects, options.versions, log=log))
    # Before seeding restarts the servers: the memory the API uploads left behind.
    out["rss_after_uploads_mb"] = rss_mb(targets)
    out.update(page_sizes(targets, auth, admin_hash, options, log=log))
    out["rss_after_load_mb"] = rss_mb(targets)
    log(f"  RSS after loading: {out['rss_after_load_mb']}")
    out.update(small_file(targets, corpus.probe_dists()[0], options.duration, log=log))
    if options.big_upload_mb > 0:
        folder = os.path.join(workdir, "big-peers")
        out["big_file"] = big_file(targets, auth, folder, options.big_upload_mb, log=log)
    largest = out["project_page"][-1]["projects"] if out["project_page"] else 1
    out["rss_fresh_start_mb"] = fresh_start(
        targets[1:], project_names(largest), options.first_pass_budget, log=log
    )
    return out


def local_targets(workdir: str, threads: int, admin_hash: str, stack) -> list[Target]:
    """A fresh in-memory ceiling and a fresh pypicloud of this checkout (file storage, SQLite)."""
    folder = os.path.join(workdir, "compare")
    os.makedirs(os.path.join(folder, "ours", "packages"), exist_ok=True)
    port = free_port()
    ini = ceiling_ini(
        os.path.join(folder, "ceiling.ini"),
        port=port,
        threads=threads,
        folder=os.path.join(folder, "ceiling"),
    )
    ceiling = stack.enter_context(Server(ini, port, os.path.join(folder, "ceiling.log")))
    port, ours_db = free_port(), os.path.join(folder, "ours", "index.sqlite")
    ini = pypicloud_ini(
        os.path.join(folder, "ours.ini"),
        storage_dir=os.path.join(folder, "ours", "packages"),
        db_path=ours_db,
        port=port,
        threads=threads,
        admin_hash=admin_hash,
    )
    ours = stack.enter_context(Server(ini, port, os.path.join(folder, "ours.log")))
    targets = [
        Target("ceiling", "in-memory ceiling", ceiling, "/simple/"),
        Target("ours", "pypicloud (this checkout)", ours, "/simple/"),
    ]
    # Where seeding puts files (benchmarks.seeding): the ceiling reads its folder at
    # start-up; pypicloud's index is rebuilt from its storage.
    targets[0].info["packages"] = os.path.join(folder, "ceiling")
    targets[1].info.update(packages=os.path.join(folder, "ours", "packages"), db=ours_db)
    return [target.start() for target in targets]


# The S3 rebuild rows (issue 17: 10,000 files in < 20 s on the moto server), one row
# each: (key, the row's name, a function called as benchmarks.rebuild.s3_rebuild is,
# returning its figures with "rebuild_s" and "files"). The peers have no S3 rebuild.
# Another way of rebuilding (e.g. a manifest-based first rebuild) is one more line here.
S3_REBUILDS: list[tuple[str, str, Callable[..., dict]]] = [
    ("s3_first", "S3 rebuild, empty index (first rebuild)", rebuild.s3_rebuild),
]


def s3_rebuilds(workdir: str, projects: int, admin_hash: str, log=print) -> dict:
    """Every variant of :data:`S3_REBUILDS` from ``projects`` projects, each on a fresh moto server."""
    if projects <= 0:
        return {"projects": 0, "skipped": "--s3-rebuild-projects 0"}
    missing = s3.available()
    if missing:
        return {"projects": projects, "skipped": missing}
    variants = []
    for key, label, measure_one in S3_REBUILDS:
        log(f"{label}: {projects:,} projects on a moto server")
        folder = os.path.join(workdir, key)  # its own index: a variant must not find another's
        os.makedirs(folder, exist_ok=True)
        try:
            figures = measure_one(folder, projects, admin_hash, free_port(), log=log)
        except Exception as exc:  # a broken variant is a row saying why, not a lost run
            figures = {"failed": f"{type(exc).__name__}: {exc}"[:300]}
            log(f"  {label} failed: {figures['failed']}")
        variants.append({"key": key, "label": label, **figures})
        if "manifest_rebuild_s" in figures:
            # The same run's rebuild into another empty index that finds the
            # manifest the first rebuild wrote (docs/storage.md): its own row.
            variants.append(
                {
                    "key": f"{key}_manifest",
                    "label": "S3 rebuild, empty index with the bucket's manifest",
                    "files": figures.get("files"),
                    "rebuild_s": figures["manifest_rebuild_s"],
                    **{
                        name: figures[f"manifest_{name}"]
                        for name in ("server_cpu_s", "client_cpu_s", "s3_HeadObject", "s3_ListObjectsV2")
                        if f"manifest_{name}" in figures
                    },
                }
            )
    return {"projects": projects, "variants": variants}


def run(args, workdir: str, admin_hash: str, stack, log=print) -> dict:
    """Start the ceiling, pypicloud and the peers, measure, stop the peers (``stack`` the rest)."""
    log("comparison targets: the in-memory ceiling, pypicloud, and the peers")
    targets = local_targets(workdir, args.threads, admin_hash, stack)
    started, skipped = peers.start_all(
        os.path.join(workdir, "peers"), args.threads, args.peers_cache, log=log
    )
    for target in started:
        stack.callback(target.server.stop)
    auth = load.basic_auth(ADMIN_USER, ADMIN_PASSWORD)
    result = measure(targets + started, auth, admin_hash, workdir, args, log=log)
    result["skipped"] = skipped
    # Every server stops first: the S3 rows measure the moto server's CPU, and a peer
    # can still be working through requests of a pass that was cut short by its budget
    # (pypiserver lists its whole folder per page), which took CPU from moto.
    for target in targets + started:
        target.server.stop()
    result["s3_rebuild"] = s3_rebuilds(workdir, args.s3_rebuild_projects, admin_hash, log=log)
    result["table"] = peer_report.rows(result)
    return result


def add_arguments(parser) -> None:
    """The comparison's options (shared by ``benchmarks.run --peers`` and this module)."""
    parser.add_argument(
        "--peer-projects",
        type=int,
        default=25,
        help="projects of the twine upload, 2 releases x wheel + sdist each (25: 102 files)",
    )
    parser.add_argument(
        "--peer-sizes",
        type=lambda text: [int(s) for s in text.split(",") if s],
        default=[100, 1000, 10_000],
        help="corpus sizes of the spread project page, comma-separated (100,1000,10000; add 100000)",
    )
    parser.add_argument(
        "--api-growth-budget",
        type=float,
        default=240.0,
        help="seconds a target that cannot be seeded (devpi) may take to grow to a size (240)",
    )
    parser.add_argument(
        "--s3-rebuild-projects",
        type=int,
        default=10_000,
        help="projects of the S3 rebuild row, one wheel each (10,000; 0 skips)",
    )
    parser.add_argument(
        "--first-pass-budget",
        type=float,
        default=60.0,
        help="seconds each target may take to answer every project page once before the "
        "measured spread run (60; a target that lists its folder per page may not finish)",
    )
    parser.add_argument(
        "--page-rounds",
        type=int,
        default=3,
        help="runs of the spread project page for the ceiling and pypicloud, alternating, "
        "median kept (3; the peers run once)",
    )
    parser.add_argument("--peers-cache", default=peers.CACHE, help="where the peers' venvs live")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import contextlib
    import json
    import tempfile

    from pypicloud.access.passwords import hash_password

    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    add_arguments(parser)
    parser.add_argument("--versions", type=int, default=2, help="releases per project (2)")
    parser.add_argument("--duration", type=int, default=5, help="whole seconds per wrk run (5)")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (8)")
    parser.add_argument("--big-upload-mb", type=float, default=200.0, help="large wheel (200 MB; 0 skips)")
    parser.add_argument("--output", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    wrk.ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="ppc-bench-compare-") as workdir, contextlib.ExitStack() as stack:
        result = run(args, workdir, hash_password(ADMIN_PASSWORD), stack)
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(result, handle, indent=2)
            handle.write("\n")
    print()
    print(peer_report.markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
