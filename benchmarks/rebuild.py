"""How long rebuilding the index from storage takes (``ppc-reindex``, or start-up with an empty index).

The files are stored with the backend's own ``put`` (see :mod:`benchmarks.load`),
then the service is built from settings as the server builds it and its rebuild is
timed in two parts: listing storage (``scan_storage``) and writing the index
(``replace_all``). Each wheel has a PEP 658 companion, so ``objects`` is about
twice ``files``.
"""

from __future__ import annotations

import collections
import os
import time

from pypicloud import build_service
from pypicloud.settings import Settings
from pypicloud.storage.file import FileStorage

from . import corpus, load, s3
from .server import ADMIN_USER, cpu_ticks


def rebuild_corpus(projects: int):
    """``projects`` projects: the probe (6 files) and one wheel for each other project."""
    return corpus.corpus(projects, 1, sdist=False)


def app_settings(storage: dict[str, str], db_path: str, admin_hash: str) -> dict[str, str]:
    return {
        **storage,
        "db.url": f"sqlite:///{db_path}",
        "auth.admins": ADMIN_USER,
        f"user.{ADMIN_USER}": admin_hash,
        "pypi.default_read": "everyone",
    }


def _count_s3_requests(storage) -> collections.Counter | None:
    """A counter of the S3 operations ``storage`` sends from now on (None for other backends)."""
    client = getattr(storage, "client", None)
    if client is None or getattr(client.meta, "service_model", None) is None:
        return None
    seen: collections.Counter = collections.Counter()
    client.meta.events.register("before-call.s3", lambda model, **kw: seen.update([model.name]))
    return seen


def timed_rebuild(
    settings: dict[str, str], here: str, storage_options: dict | None = None, server_pid: int | None = None
) -> dict:
    """Build the service and rebuild its index; the times of each part in seconds.

    As ``PackageIndex.rebuild`` does, the rebuild ends by writing storage's
    manifest (S3; nothing for the file storage), timed apart.
    ``storage_options`` are set on the storage object before the scan (e.g.
    ``list_workers``, the S3 HEAD pool's size). ``server_pid``: the storage
    server's process (the moto server), whose CPU seconds during the scan are
    reported beside this process's own (``server_cpu_s``, ``client_cpu_s``): on
    two shared cores they tell whose work the scan's time is.
    """
    started = time.perf_counter()
    service = build_service(Settings(settings, environ={}, here=here))
    for name, value in (storage_options or {}).items():
        setattr(service.storage, name, value)
    built = time.perf_counter()
    requests = _count_s3_requests(service.storage)
    server_ticks = cpu_ticks(server_pid) if server_pid else None
    client_cpu = time.process_time()
    records = service.scan_storage()
    scanned = time.perf_counter()
    cpu = {"client_cpu_s": round(time.process_time() - client_cpu, 2)}
    if server_ticks is not None and server_pid:
        cpu["server_cpu_s"] = round((cpu_ticks(server_pid) - server_ticks) / os.sysconf("SC_CLK_TCK"), 2)
    service.index.replace_all(records)
    written = time.perf_counter()
    manifest_files = service.write_manifest(records)
    manifest_written = time.perf_counter()
    if hasattr(service.storage, "close"):
        service.storage.close()
    service.index.close()
    return {
        "indexed_files": len(records),
        "setup_s": round(built - started, 2),
        "scan_s": round(scanned - built, 2),
        "index_write_s": round(written - scanned, 2),
        "rebuild_s": round(written - built, 2),
        **cpu,
        **(
            {"manifest_files": manifest_files, "manifest_write_s": round(manifest_written - written, 2)}
            if manifest_files is not None
            else {}
        ),
        # S3 only: a HEAD per package file not in the index or the manifest,
        # none for companions, never a GET of a package (issue 17).
        **({f"s3_{name}": n for name, n in sorted(requests.items())} if requests is not None else {}),
    }


def file_rebuild(workdir: str, projects: int, admin_hash: str, log=print) -> tuple[dict, dict]:
    """Rebuild from file storage; returns (figures, the app settings used, for serving)."""
    root = os.path.join(workdir, f"rebuild-file-{projects}")
    storage_dir, db_path = os.path.join(root, "packages"), os.path.join(root, "index.sqlite")
    os.makedirs(storage_dir, exist_ok=True)
    started = time.perf_counter()
    # No fsync while loading: this is set-up, not what is measured.
    stored, objects = load.bulk_put(FileStorage(storage_dir, fsync=False), rebuild_corpus(projects))
    load_s = time.perf_counter() - started
    log(f"  file storage: {stored} files ({objects} objects) written in {load_s:.1f} s")
    settings = app_settings({"pypi.storage": "file", "storage.dir": storage_dir}, db_path, admin_hash)
    result = {
        "backend": "file",
        "projects": projects,
        "files": stored,
        "objects": objects,
        "load_s": round(load_s, 1),
        **timed_rebuild(settings, root),
    }
    log(
        f"  file rebuild: {result['rebuild_s']} s (scan {result['scan_s']} s, "
        f"index write {result['index_write_s']} s)"
    )
    return result, settings


def s3_rebuild(
    workdir: str,
    projects: int,
    admin_hash: str,
    port: int,
    log=print,
    storage_options: dict | None = None,
    extra_settings: dict[str, str] | None = None,
) -> dict:
    """Rebuild from S3 storage on a moto server (in a child process) on 127.0.0.1.

    Three rebuilds of one bucket: the first into an empty index (no manifest
    yet: a HEAD per package file; it writes the manifest), the same again into
    another empty index (``manifest_*``: the manifest saves the HEADs), and a
    second rebuild of the first index (``again_*``: its rows' tags save them).
    """
    root = os.path.join(workdir, f"rebuild-s3-{projects}")
    os.makedirs(root, exist_ok=True)
    moto = s3.MotoServer(port, os.path.join(root, "moto.log")).start()
    try:
        bucket = "ppc-bench"
        store = s3.storage(moto.endpoint, bucket)
        started = time.perf_counter()
        stored, objects = load.bulk_put(store, rebuild_corpus(projects), workers=8)
        load_s = time.perf_counter() - started
        store.close()
        log(f"  S3 (moto): {stored} files ({objects} objects) written in {load_s:.1f} s")
        # S3 times have one-second precision: a HEAD within 2 s of an upload is not
        # remembered (nor put in the manifest); an index is rarely rebuilt that soon.
        time.sleep(2.2)
        storage_settings = {**s3.settings(moto.endpoint, bucket), **(extra_settings or {})}
        settings = app_settings(storage_settings, os.path.join(root, "index.sqlite"), admin_hash)
        result = {
            "backend": "s3 (moto server)",
            "projects": projects,
            "files": stored,
            "objects": objects,
            "load_s": round(load_s, 1),
            **timed_rebuild(settings, root, storage_options, server_pid=moto.pid),
        }
        # A new, empty index (a new server, a lost database) with the manifest
        # the first rebuild wrote: only objects it does not name are asked about.
        fresh = app_settings(storage_settings, os.path.join(root, "fresh.sqlite"), admin_hash)
        with_manifest = timed_rebuild(fresh, root, storage_options, server_pid=moto.pid)
        result.update({f"manifest_{k}": v for k, v in with_manifest.items() if _kept(k)})
        # Again in a new service on the first index (a restart, ppc-reindex): the
        # rows remember the storage tag they were read with, so only objects
        # written since (or within two seconds of their HEAD) are asked again.
        again = timed_rebuild(settings, root, storage_options, server_pid=moto.pid)
        result.update({f"again_{k}": v for k, v in again.items() if _kept(k)})
    finally:
        moto.stop()
    log(
        f"  S3 rebuild: {result['rebuild_s']} s (scan {result['scan_s']} s, "
        f"index write {result['index_write_s']} s, manifest {result.get('manifest_write_s')} s); "
        f"new index with the manifest: {result['manifest_rebuild_s']} s, "
        f"{result.get('manifest_s3_HeadObject', 0)} HEADs; "
        f"again: {result['again_rebuild_s']} s, {result.get('again_s3_HeadObject', 0)} HEADs"
    )
    return result


def _kept(name: str) -> bool:
    return name in (
        "rebuild_s",
        "scan_s",
        "indexed_files",
        "server_cpu_s",
        "client_cpu_s",
    ) or name.startswith("s3_")
