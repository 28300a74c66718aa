"""Run the benchmarks of SPEC section 12 and write ``benchmarks/results/latest.json``.

    .venv/bin/python -m benchmarks.run            # small corpus, under 5 minutes
    .venv/bin/python -m benchmarks.run --large    # + 10,000 / 100,000 projects and a 1 GB file

Phases (each server is a ``pserve`` child bound to 127.0.0.1, stopped by its PID):

1. pypicloud on file storage; the corpus is uploaded through the upload API.
   The same corpus goes to the in-memory ceiling (:mod:`benchmarks.ceiling`).
2. In-process cost per request of each read path (no server; steady on a busy machine).
   The read matrix: five paths x anonymous / Basic auth x 1 / 16 connections, each
   measured with wrk right after the hello-world ceiling and beside the in-memory
   ceiling (:mod:`benchmarks.matrix`).
   Write paths against the in-memory ceiling: uploads at 1 and 4 connections, a large
   wheel up and down (:mod:`benchmarks.writes`).
3. ``pip download`` and ``uv pip compile`` of a project with 200 versions.
4. Cold start of the same server (index present).
5. Index rebuild from 10,000 files on file storage, and from S3 on a moto server.
6. ``/simple/`` with 10,000 projects: first render, cached, 304 revalidation, wrk.
7. With ``--large``: project pages at 10,000 and 100,000 projects; 1 GB upload/download RSS.
8. With ``--peers`` (issue 17): the in-memory ceiling, a fresh pypicloud and devpi-server
   6.20, pypiserver 2.4 and pypicloud 1.3.12 (installed once into their own venvs under
   ``.bench-peers/``) measured alternately, in one table of ratios to the ceiling
   (:mod:`benchmarks.compare`, :mod:`benchmarks.peers`). ``--peers-only`` runs just that.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time

from pypicloud.access.passwords import hash_password

from . import (
    clients,
    compare,
    corpus,
    inprocess,
    largefile,
    load,
    matrix,
    probes,
    rebuild,
    report,
    s3,
    writes,
    wrk,
)
from .server import ADMIN_PASSWORD, ADMIN_USER, REPO, Server, ceiling_ini, free_port, hello_ini, pypicloud_ini

RESULTS = os.path.join(REPO, "benchmarks", "results", "latest.json")
GiB = 1024**3


def log(message: str) -> None:
    print(message, flush=True)


def machine() -> dict:
    with open("/proc/meminfo") as meminfo:
        mem_kb = int(meminfo.readline().split()[1])
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        model = next((l.split(":", 1)[1].strip() for l in cpuinfo if l.startswith("model name")), "")
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(mem_kb / 1024**2, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--large", action="store_true", help="add 10,000 and 100,000 projects and the 1 GB file"
    )
    parser.add_argument("--projects", type=int, default=100, help="projects uploaded (100)")
    parser.add_argument("--versions", type=int, default=2, help="releases per project (2)")
    parser.add_argument("--duration", type=int, default=5, help="whole seconds per wrk run (5)")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (8)")
    parser.add_argument("--rebuild-projects", type=int, default=10_000)
    parser.add_argument(
        "--s3-projects",
        type=int,
        default=None,
        help="projects for the S3 rebuild (2,000; 10,000 with --large; 0 skips)",
    )
    parser.add_argument("--large-file-gb", type=float, default=1.0)
    parser.add_argument("--upload-files", type=int, default=100, help="files per upload run (100)")
    parser.add_argument(
        "--big-upload-mb", type=float, default=200.0, help="wheel for the large transfer (200 MB; 0 skips)"
    )
    parser.add_argument(
        "--peers", action="store_true", help="add issue 17's comparison with devpi, pypiserver, pypicloud 1.x"
    )
    parser.add_argument("--peers-only", action="store_true", help="run only that comparison")
    compare.add_arguments(parser)
    parser.add_argument("--workdir", help="keep data here (default: a temp dir, removed after)")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    if args.s3_projects is None:
        args.s3_projects = 10_000 if args.large else 2_000
    args.peers = args.peers or args.peers_only
    return args


class Bench:
    """State shared by the phases: work dir, admin credentials, the two ceiling servers."""

    def __init__(self, args: argparse.Namespace, workdir: str, stack: contextlib.ExitStack):
        self.args, self.workdir, self.stack = args, workdir, stack
        self.admin_hash = hash_password(ADMIN_PASSWORD)
        self.auth = load.basic_auth(ADMIN_USER, ADMIN_PASSWORD)
        port = free_port()
        ini = hello_ini(self.path("hello.ini"), port=port, threads=args.threads)
        self.hello = stack.enter_context(Server(ini, port, self.path("hello.log")))
        self.hello.start().wait_ready("/")
        port = free_port()
        ini = ceiling_ini(
            self.path("ceiling.ini"), port=port, threads=args.threads, folder=self.path("ceiling")
        )
        self.ceiling = stack.enter_context(Server(ini, port, self.path("ceiling.log")))
        self.ceiling.start().wait_ready("/simple/")

    def path(self, *parts: str) -> str:
        return os.path.join(self.workdir, *parts)

    def pypicloud(self, name: str, storage_dir: str | None = None, db_path: str | None = None) -> Server:
        """A pypicloud server on file storage (not started)."""
        storage_dir = storage_dir or self.path(name, "packages")
        os.makedirs(storage_dir, exist_ok=True)
        port = free_port()
        ini = pypicloud_ini(
            self.path(f"{name}.ini"),
            storage_dir=storage_dir,
            db_path=db_path or self.path(name, "index.sqlite"),
            port=port,
            threads=self.args.threads,
            admin_hash=self.admin_hash,
        )
        return self.stack.enter_context(Server(ini, port, self.path(f"{name}.log")))

    def matrix(self, port: int, cases, **kwargs) -> list[dict]:
        """The read matrix; ``ceiling_port=bench.ceiling.port`` adds the in-memory ceiling."""
        return matrix.measure(
            self.hello.port, port, cases, auth=self.auth, duration=self.args.duration, log=log, **kwargs
        )


def small_corpus_phase(bench: Bench, results: dict) -> Server:
    args = bench.args
    server = bench.pypicloud("main")
    server.start().wait_ready("/simple/")
    log(
        f"loading {args.projects} projects x {args.versions} versions and "
        f"{corpus.MANY} ({corpus.MANY_VERSIONS} versions) through the upload API"
    )
    started = time.perf_counter()
    files = load.upload_all(server.port, bench.auth, corpus.corpus(args.projects, args.versions))
    files += load.upload_all(server.port, bench.auth, corpus.many_versions_dists())
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    load.upload_all(bench.ceiling.port, bench.auth, corpus.corpus(args.projects, args.versions))
    load.upload_all(bench.ceiling.port, bench.auth, corpus.many_versions_dists())
    ceiling_seconds = time.perf_counter() - started
    results["load"] = {
        "projects": args.projects + 1,
        "files": files,
        "upload_s": round(seconds, 1),
        "uploads_per_s": round(files / seconds, 1),
        "ceiling_uploads_per_s": round(files / ceiling_seconds, 1),
        "rss_after_load_mb": round(server.rss_kb() / 1024, 1),
    }
    log(f"  {files} files in {seconds:.1f} s; server RSS {results['load']['rss_after_load_mb']} MB")

    log("in-process cost per request (no server)")
    results["inprocess"] = inprocess.measure()
    for row in results["inprocess"]:
        log(f"  {row['case']:<14} {row['auth']:<9} {row['us_per_request']:>7.1f} us")

    log("read matrix (hello-world, anonymous, Basic auth; alternately)")
    results["matrix"] = bench.matrix(server.port, matrix.read_cases(), ceiling_port=bench.ceiling.port)
    results["rss_after_matrix_mb"] = round(server.rss_kb() / 1024, 1)

    log("write paths against the in-memory ceiling")
    results["writes"] = writes.measure(
        server.port,
        bench.ceiling.port,
        bench.auth,
        bench.workdir,
        files=args.upload_files,
        big_mb=args.big_upload_mb,
        log=log,
    )

    log("installers")
    results["clients"] = clients.installer_times(server.port, corpus.MANY, bench.workdir)
    log(f"  {results['clients']}")
    return server


def cold_start_phase(bench: Bench, server: Server, results: dict) -> None:
    server.stop()
    probe = matrix.read_cases()[1].path
    results["cold_start"] = {"projects": bench.args.projects + 1, **probes.cold_start(server, probe)}
    log(f"cold start: {results['cold_start']}")


def rebuild_phase(bench: Bench, results: dict) -> tuple[dict, str]:
    args = bench.args
    log(f"rebuild from file storage ({args.rebuild_projects} projects)")
    figures, settings = rebuild.file_rebuild(bench.workdir, args.rebuild_projects, bench.admin_hash, log=log)
    results["rebuild"] = [figures]
    missing = s3.available()
    if args.s3_projects <= 0:
        results["rebuild"].append({"backend": "s3 (moto server)", "skipped": "--s3-projects 0"})
    elif missing:
        results["rebuild"].append({"backend": "s3 (moto server)", "skipped": missing})
        log(f"  S3 rebuild not measured: {missing}")
    else:
        log(f"rebuild from S3 on a moto server ({args.s3_projects} projects)")
        try:
            results["rebuild"].append(
                rebuild.s3_rebuild(bench.workdir, args.s3_projects, bench.admin_hash, free_port(), log=log)
            )
        except Exception as exc:  # S3Storage is still being written: report, go on
            results["rebuild"].append(
                {"backend": "s3 (moto server)", "skipped": f"{type(exc).__name__}: {exc}"}
            )
            log(f"  S3 rebuild failed: {exc}")
    return settings, os.path.dirname(settings["storage.dir"])


def index_10k_phase(bench: Bench, settings: dict, root: str, results: dict) -> Server:
    """Serve the rebuilt 10,000-project index: cold start, /simple/ cache and 304."""
    projects = bench.args.rebuild_projects
    server = bench.pypicloud(
        f"served-{projects}", settings["storage.dir"], os.path.join(root, "index.sqlite")
    )
    started = probes.cold_start(server, "/health")
    index = probes.index_cache(server.port)
    results["simple_index_large"] = {"projects": projects, **started, **index}
    log(f"/simple/ with {projects} projects: {results['simple_index_large']}")
    etag = probes.get(server.port, "/simple/", probes.HTML)[1]["ETag"]
    cases = [
        matrix.Case("simple_index", "/simple/", (("Accept", "text/html"),)),
        matrix.Case(
            "simple_index_304", "/simple/", (("Accept", "text/html"), ("If-None-Match", etag)), expect=304
        ),
    ]
    rows = bench.matrix(server.port, cases, connections=(16,), auth_modes=("anonymous",))
    for row in rows:
        row["projects"] = projects
    results["simple_index_large"]["matrix"] = rows
    return server


def scaling_phase(bench: Bench, served_10k: Server, results: dict) -> None:
    """Project pages and /simple/ at 10,000 and 100,000 projects (``--large``)."""
    cases = matrix.read_cases()[:3]
    scaling = []
    log(f"scaling: {bench.args.rebuild_projects} projects")
    for row in bench.matrix(served_10k.port, cases, connections=(16,), auth_modes=("anonymous",)):
        scaling.append({"projects": bench.args.rebuild_projects, **row})
    served_10k.stop()

    projects = 100_000
    log(f"scaling: {projects} projects (bulk load into file storage)")
    storage_dir = bench.path(f"scale-{projects}", "packages")
    os.makedirs(storage_dir, exist_ok=True)
    from pypicloud.storage.file import FileStorage

    started = time.perf_counter()
    files, objects = load.bulk_put(
        FileStorage(storage_dir, fsync=False),
        corpus.corpus(projects, 1, sdist=False),
        progress=lambda n: n % 20000 == 0 and log(f"  {n} files"),
    )
    bulk_s = time.perf_counter() - started
    server = bench.pypicloud(f"scale-{projects}", storage_dir)
    # Empty index: the server rebuilds from storage before it answers.
    started_info = probes.cold_start(server, matrix.read_cases()[1].path)
    results["scale_100k"] = {
        "projects": projects,
        "files": files,
        "objects": objects,
        "bulk_load_s": round(bulk_s, 1),
        "cold_start_with_rebuild_s": started_info["cold_start_s"],
        "rss_after_start_mb": started_info["rss_mb"],
    }
    log(f"  {results['scale_100k']}")
    for row in bench.matrix(server.port, cases, connections=(16,), auth_modes=("anonymous",)):
        scaling.append({"projects": projects, **row})
    results["scale_100k"]["rss_after_matrix_mb"] = round(server.rss_kb() / 1024, 1)
    server.stop()
    results["scaling"] = scaling


def large_file_phase(bench: Bench, server: Server, results: dict) -> None:
    size = int(bench.args.large_file_gb * GiB)
    log(f"large file: {size} bytes up and down, sampling server RSS")
    results["large_file"] = largefile.measure(
        server.port, server.pid, bench.auth, bench.path("large"), size, log=log
    )
    log(f"  {results['large_file']}")


def peers_phase(bench: Bench, results: dict) -> None:
    log("issue 17: the in-memory ceiling, pypicloud and the peers, alternately")
    results["peers"] = compare.run(bench.args, bench.workdir, bench.admin_hash, bench.stack, log=log)


def phases(bench: Bench, results: dict) -> None:
    args = bench.args
    if not args.peers_only:
        main_server = small_corpus_phase(bench, results)
        cold_start_phase(bench, main_server, results)
        settings, root = rebuild_phase(bench, results)
        served = index_10k_phase(bench, settings, root, results)
        if args.large:
            scaling_phase(bench, served, results)
            large_file_phase(bench, main_server, results)
        for server in (main_server, served):
            server.stop()  # idle, but not in the way of the comparison
    if args.peers:
        peers_phase(bench, results)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A SIGTERM (e.g. from timeout) unwinds normally, so every server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wrk.ensure_wrk()
    workdir = args.workdir or tempfile.mkdtemp(prefix="ppc-bench-")
    os.makedirs(workdir, exist_ok=True)
    started = time.perf_counter()
    results: dict = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "large": args.large,
        "settings": {
            "waitress_threads": args.threads,
            "wrk_duration_s": args.duration,
            "wrk_threads": 1,
            "projects": args.projects,
            "versions": args.versions,
            "peers": args.peers,
            "peers_only": args.peers_only,
        },
    }
    log(f"work dir {workdir}")
    try:
        with contextlib.ExitStack() as stack:
            phases(Bench(args, workdir, stack), results)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["targets"] = report.targets(results)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(results, handle, indent=2)
        handle.write("\n")
    print()
    print(report.markdown(results))
    log(f"\nresults written to {os.path.relpath(args.output)} ({results['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
