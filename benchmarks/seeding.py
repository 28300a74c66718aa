"""Grow every comparison target to N projects without its upload API, where it can be.

The spread project page is measured at 100 to 100,000 projects; growing a corpus
through the upload API takes hours on the slowest peer (devpi-server, about 5
files/s). So each target whose storage can be filled directly is stopped, given the
new files where it looks for them, and started again (it reads them at start-up):

* the in-memory ceiling: ``<dir>/<project>/<file>``, read by ``ceiling.py`` at start-up;
* pypicloud (this checkout): the storage backend's own ``put`` (file, metadata,
  PEP 658 companion, as an upload stores them), then the index rebuilt from storage
  as ``ppc-reindex`` does (``benchmarks.rebuild.timed_rebuild``) before the restart;
* pypiserver 2.4: the files into its packages folder (it lists the folder per request);
* pypicloud 1.3.12: its file layout ``<dir>/<project>/<version>/<file>`` and the JSON
  sidecar ``<file>.meta``; its SQLite cache is removed so that 1.x reloads it from
  storage at start-up (``reload_if_needed``).

devpi-server keeps its files and index in its own transactional store, which only
its API (or ``devpi-import``) fills: it grows through the upload API, one connection,
within a time budget; the sizes it cannot reach in that budget are "not measured".
The corpus added is lean: one wheel per project (``1.0.0``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable

from pypicloud.storage.file import FileStorage

from . import corpus, load, rebuild
from .peers import Target

API_CHUNK = 50  # files between two looks at the clock while growing through an API
START_TIMEOUT = 1800  # a restart on 100,000 projects rebuilds first


def lean_dists(start: int, stop: int) -> list[corpus.Dist]:
    """Projects ``start`` .. ``stop - 1`` of the corpus (see :func:`compare.project_names`)."""
    return [corpus.build_wheel(corpus.project_name(i - 1), "1.0.0") for i in range(start, stop)]


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def _ceiling(target: Target, dists: list[corpus.Dist], admin_hash: str) -> dict:
    for dist in dists:
        _write(os.path.join(target.info["packages"], dist.project, dist.filename), dist.data)
    return {}


def _ours(target: Target, dists: list[corpus.Dist], admin_hash: str) -> dict:
    storage_dir, db_path = target.info["packages"], target.info["db"]
    load.bulk_put(FileStorage(storage_dir, fsync=False), dists)  # set-up, not measured: no fsync
    settings = rebuild.app_settings({"pypi.storage": "file", "storage.dir": storage_dir}, db_path, admin_hash)
    figures = rebuild.timed_rebuild(settings, os.path.dirname(db_path))
    return {"reindex_s": figures["rebuild_s"]}


def _pypiserver(target: Target, dists: list[corpus.Dist], admin_hash: str) -> dict:
    for dist in dists:
        _write(os.path.join(target.info["packages"], dist.filename), dist.data)
    return {}


def _pypicloud1(target: Target, dists: list[corpus.Dist], admin_hash: str) -> dict:
    for dist in dists:
        path = os.path.join(target.info["packages"], dist.project, dist.version, dist.filename)
        _write(path, dist.data)
        meta = {
            "hash_sha256": hashlib.sha256(dist.data).hexdigest(),
            "hash_md5": hashlib.md5(dist.data).hexdigest(),
            "summary": f"Benchmark package {dist.name} {dist.version}",
            "uploader": "bulk",
        }
        with open(path + ".meta", "w", encoding="utf-8") as handle:
            json.dump(meta, handle)
    os.unlink(target.info["db"])  # an empty cache: 1.x reloads it from storage at start-up
    return {}


SEEDERS: dict[str, Callable[[Target, list[corpus.Dist], str], dict]] = {
    "ceiling": _ceiling,
    "ours": _ours,
    "pypiserver": _pypiserver,
    "pypicloud1": _pypicloud1,
}


def seed(target: Target, dists: list[corpus.Dist], admin_hash: str) -> dict:
    """Stop ``target``, put ``dists`` into its storage, start it; seconds of each part."""
    target.server.stop()
    started = time.perf_counter()
    figures = SEEDERS[target.key](target, dists, admin_hash)
    written = time.perf_counter()
    target.start(timeout=START_TIMEOUT)
    ready = time.perf_counter()
    return {
        "files": len(dists),
        "write_s": round(written - started, 1),
        "start_s": round(ready - written, 1),
        **figures,
    }


def api_grow(target: Target, auth: str, dists: list[corpus.Dist], budget_s: float) -> dict:
    """Upload ``dists`` over one connection within ``budget_s``: not started when the
    rate measured so far says they will not fit, stopped when the budget runs out;
    ``reason`` says why. (One connection: devpi writes one transaction at a time
    anyway, and answered 500 to concurrent uploads.)"""
    rate = target.info.get("api_files_per_s")
    if rate and len(dists) / rate > budget_s:
        return {"reason": _too_slow(len(dists), rate, budget_s)}
    started, done = time.perf_counter(), 0
    try:
        for at in range(0, len(dists), API_CHUNK):
            if time.perf_counter() - started > budget_s:
                rate = done / (time.perf_counter() - started)
                return {
                    "reason": f"its upload API took {done:,} of {len(dists):,} files in the budget "
                    f"({budget_s:.0f} s, {rate:.1f} files/s); it cannot be seeded directly"
                }
            chunk = dists[at : at + API_CHUNK]
            done += load.upload_all(target.port, auth, chunk, workers=1, path=target.upload_path)
    except (RuntimeError, OSError) as exc:
        return {"reason": f"its upload API failed while growing: {str(exc)[:200]}"}
    seconds = time.perf_counter() - started
    target.info["api_files_per_s"] = len(dists) / seconds if seconds else None
    return {"files": len(dists), "upload_s": round(seconds, 1)}


def _too_slow(files: int, rate: float, budget_s: float) -> str:
    return (
        f"{files:,} more files through its upload API at {rate:.1f} files/s "
        f"(~{files / rate / 60:.1f} min, budget {budget_s:.0f} s); it cannot be seeded directly"
    )


def grow(
    targets: list[Target], auth: str, admin_hash: str, start: int, stop: int, budget_s: float, log=print
) -> dict:
    """Every target from ``start`` to ``stop`` projects; per target what it took, or ``reason``."""
    dists = lean_dists(start, stop)
    out = {}
    for target in targets:
        if target.key in SEEDERS:
            out[target.key] = seed(target, dists, admin_hash)
        else:
            out[target.key] = api_grow(target, auth, dists, budget_s)
        log(f"  {target.label}: {out[target.key]}")
    return out
