"""``ppc-migrate SOURCE.ini DEST.ini``: copy every stored file from one storage to another.

Any storage backend to any other (file and S3 in every direction). Each object
the source storage lists is copied with its metadata: the package files and
their PEP 658 ``<file>.metadata`` companions alike. The source is opened
read-only and never changed.

Resume: the destination is listed first. A file already there with the same
size and sha256 is skipped (its metadata is brought up to date if it differs),
so re-running after an interruption copies only what is missing. A file there
with the same name but other bytes is a *conflict*: reported, left untouched
(unless ``--overwrite``), and the exit code is 1. Every write is the storage's
atomic put, so an interrupted copy leaves nothing half-written.

Bytes are streamed: from the source's reader through a sha256/size check into
the destination's put. A file whose bytes do not match the size and sha256 the
source lists for it is not stored (reported as failed).

Afterwards the destination's metadata index is rebuilt from the destination
storage (as ``ppc-reindex DEST.ini`` does), unless ``--no-reindex``.

Exit codes: 0 everything is at the destination; 1 conflicts, failed files, an
interruption or a failed reindex; 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .. import build_service
from ..errors import ConfigError, StorageConflict
from ..models import StoredObject
from ..storage import Storage, storage_from_settings
from ..storage.file import FileStorage
from ..storage.memory import MemoryStorage
from .common import Progress, load_settings

PROG = "ppc-migrate"
CHUNK = 1024 * 1024
MAX_JOBS = 32
#: Stop starting new copies after this many failures in a row (destination down?).
MAX_FAILURES_IN_A_ROW = 10
_SHA256 = frozenset("0123456789abcdef")


class BadSource(Exception):
    """The source's bytes do not match the size or sha256 it lists for them."""


class _VerifyingReader:
    """Passes a stream through, checking its size and sha256 when it ends.

    Raising at the end of the stream (before the destination's put returns)
    makes the put abort, so a file with unexpected bytes is never stored.
    """

    def __init__(self, stream, size: int, sha256: str | None):
        self._stream = stream
        self._size = size
        self._expected = sha256
        self._digest = hashlib.sha256()
        self.count = 0
        self.finished = False

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:  # "everything": still read (and check) in chunks
            parts = []
            while block := self.read(CHUNK):
                parts.append(block)
            return b"".join(parts)
        if size == 0:
            return b""
        data = self._stream.read(size)
        if not data:
            self._check()
            return data
        self.count += len(data)
        self._digest.update(data)
        if self.count > self._size:
            raise BadSource(
                f"the source holds more than the {self._size} bytes it lists (changed while copying?)"
            )
        return data

    def _check(self) -> None:
        if self.finished:
            return
        if self.count != self._size:
            raise BadSource(
                f"read {self.count} bytes, the source lists {self._size} (changed while copying?)"
            )
        if self._expected and self._digest.hexdigest() != self._expected:
            raise BadSource(
                "the bytes do not match the sha256 in the source's metadata (the source file is damaged)"
            )
        self.finished = True

    def drain(self) -> None:
        """Read what the consumer left and check it (raises BadSource on a mismatch)."""
        while self.read(CHUNK):
            pass
        self._check()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What happened to one source object."""

    kind: str  # copied | replaced | present | updated | conflict | failed (+ would-* in a dry run)
    obj: StoredObject
    detail: str = ""


def _listed_sha256(obj: StoredObject) -> str | None:
    value = (obj.metadata.get("sha256") or "").strip().lower()
    return value if len(value) == 64 and set(value) <= _SHA256 else None


def _hash_stored(storage: Storage, obj: StoredObject) -> str:
    digest = hashlib.sha256()
    with storage.open(obj.project, obj.filename) as stream:
        while True:
            block = stream.read(CHUNK)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def _size(count: int | float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} bytes"  # pragma: no cover


def _name(obj: StoredObject) -> str:
    return f"{obj.project}/{obj.filename}"


class Migration:
    """Copies objects from ``source`` to ``dest`` (both Storage backends)."""

    def __init__(
        self,
        source: Storage,
        dest: Storage,
        existing: dict[tuple[str, str], StoredObject],
        *,
        overwrite: bool = False,
        dry_run: bool = False,
    ):
        self.source = source
        self.dest = dest
        self.existing = existing
        self.overwrite = overwrite
        self.dry_run = dry_run
        self._lock = threading.Lock()

    def same_bytes(self, src: StoredObject, dst: StoredObject) -> bool:
        """Same size and sha256 (taken from metadata, or hashed when metadata has none)."""
        if src.size != dst.size:
            return False
        ours = _listed_sha256(src) or _hash_stored(self.source, src)
        theirs = _listed_sha256(dst) or _hash_stored(self.dest, dst)
        return ours == theirs

    def run_one(self, obj: StoredObject) -> Outcome:
        """Bring one object to the destination. Never raises (failures are outcomes)."""
        try:
            return self._run_one(obj)
        except Exception as exc:  # reported per file; the run goes on
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            return Outcome("failed", obj, message)

    def _run_one(self, obj: StoredObject, retry: bool = True) -> Outcome:
        there = self.existing.get((obj.project, obj.filename))
        if there is None:
            if self.dry_run:
                return Outcome("would-copy", obj)
            try:
                self._copy(obj, overwrite=False)
            except StorageConflict:
                # Written by someone else since we listed the destination: decide again.
                there = self.dest.stat(obj.project, obj.filename)
                if there is None or not retry:
                    raise
                with self._lock:
                    self.existing[(obj.project, obj.filename)] = there
                return self._run_one(obj, retry=False)
            return Outcome("copied", obj)
        if self.same_bytes(obj, there):
            if there.metadata == obj.metadata:
                return Outcome("present", obj)
            if self.dry_run:
                return Outcome("would-update", obj, "metadata differs")
            self.dest.update_metadata(obj.project, obj.filename, dict(obj.metadata))
            return Outcome("updated", obj, "metadata brought up to date")
        why = (
            f"the destination holds other bytes ({there.size} bytes, source {obj.size})"
            if there.size != obj.size
            else "the destination holds other bytes (sha256 differs)"
        )
        if not self.overwrite:
            return Outcome("conflict", obj, why)
        if self.dry_run:
            return Outcome("would-replace", obj, why)
        self._copy(obj, overwrite=True)
        return Outcome("replaced", obj, why)

    def _copy(self, obj: StoredObject, *, overwrite: bool) -> None:
        with self.source.open(obj.project, obj.filename) as stream:
            reader = _VerifyingReader(stream, obj.size, _listed_sha256(obj))
            self.dest.put(obj.project, obj.filename, reader, dict(obj.metadata), overwrite=overwrite)
            try:
                reader.drain()  # a backend that stopped reading early: check the rest too
            except BadSource:
                if not overwrite:
                    self.dest.delete(obj.project, obj.filename)
                raise


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Copy every package file (with its metadata and its PEP 658 .metadata "
        "file) from the storage of one pypicloud ini to the storage of another, then "
        "rebuild the destination's index. Re-running resumes: files already at the "
        "destination with the same size and sha256 are skipped.",
        epilog="Exit codes: 0 done, 1 conflicts, failed files, an interruption or a failed "
        "reindex, 2 bad usage or configuration.",
    )
    parser.add_argument(
        "source", metavar="SOURCE.ini", help="ini of the deployment to copy from (its storage is only read)"
    )
    parser.add_argument("dest", metavar="DEST.ini", help="ini of the deployment to copy to")
    parser.add_argument(
        "-n",
        "--dry-run",
        action="store_true",
        help="list what would be copied (and any conflicts); change nothing",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace destination files whose bytes differ from the source's "
        "(default: report them as conflicts and leave them)",
    )
    parser.add_argument(
        "--no-reindex",
        action="store_true",
        help="do not rebuild the destination's metadata index afterwards (run ppc-reindex DEST.ini later)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        help=f"files copied at the same time (1-{MAX_JOBS}; default 4 when S3 is involved, else 1)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print a line for every file, including those already present",
    )
    return parser


# Forced over the ini and PPC_* variables: what migrate reads from is never written,
# and a missing bucket is never created.
READ_ONLY = {"storage.read_only": "true", "storage.create_bucket": "false"}


def _open_source(path: str) -> Storage:
    # Read-only: the source is never written, and a missing bucket is not created.
    settings = load_settings(path, forced=READ_ONLY)
    return storage_from_settings(settings)


def _open_dest_for_dry_run(path: str) -> tuple[Storage, str | None]:
    """The destination storage, read-only; an empty stand-in if it does not exist yet."""
    settings = load_settings(path, forced=READ_ONLY)
    try:
        return storage_from_settings(settings), None
    except ConfigError as exc:
        missing_dir = (
            exc.key == "storage.dir"
            and settings.get_str("storage.dir")
            and not os.path.exists(settings.path(settings.get_str("storage.dir")))
        )
        missing_bucket = (
            exc.key in ("storage.bucket", "storage.storage_container_name")
            and "does not exist" in exc.message
        )
        if missing_dir or missing_bucket:
            # An empty read-only stand-in: nothing is there yet, and a dry run writes nothing.
            return MemoryStorage(read_only=True), "the destination storage does not exist yet"
        raise


def _identity(storage: Storage) -> tuple | None:
    """What makes two storages the same place (None when we cannot tell)."""
    return storage.location()


def _listing(storage: Storage, label: str) -> list[StoredObject]:
    progress = Progress(label)
    found = []
    for obj in storage.list():
        found.append(obj)
        progress.step()
    if progress.tty:
        progress.finish(f"{label}: {len(found)} files")  # replaces the counter
    # A file before its .metadata companion; a stable order for the output.
    found.sort(key=lambda o: (o.project, o.filename))
    return found


def _run(
    migration: Migration, objects: list[StoredObject], jobs: int, progress: Progress, on_outcome
) -> bool:
    """Run every object through ``migration``; False when it stopped early."""
    failures_in_a_row = 0
    todo: Iterable[StoredObject] = iter(objects)
    pending: set[Future] = set()
    stopped = False
    with ThreadPoolExecutor(jobs, thread_name_prefix="ppc-migrate") as pool:
        try:
            while True:
                while not stopped and len(pending) < jobs * 2:
                    obj = next(todo, None)  # type: ignore[call-overload]
                    if obj is None:
                        break
                    pending.add(pool.submit(migration.run_one, obj))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: _name(f.result().obj)):
                    outcome = future.result()
                    on_outcome(outcome)
                    if outcome.kind == "failed":
                        failures_in_a_row += 1
                    else:
                        failures_in_a_row = 0
                if failures_in_a_row >= MAX_FAILURES_IN_A_ROW and not stopped:
                    stopped = True
                    progress.note(
                        f"{PROG}: giving up after {failures_in_a_row} failures in a "
                        "row (is the destination reachable and writable?)"
                    )
        except KeyboardInterrupt:
            for future in pending:
                future.cancel()
            raise
    return not stopped


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.jobs is not None and not 1 <= args.jobs <= MAX_JOBS:
        print(f"{PROG}: --jobs must be between 1 and {MAX_JOBS}", file=sys.stderr)
        return 2
    for path in (args.source, args.dest):
        if not os.path.isfile(path):
            print(f"{PROG}: {path}: no such file", file=sys.stderr)
            return 2

    service = None
    try:
        source = _open_source(args.source)
    except Exception as exc:  # start-up errors already name the setting
        print(f"{PROG}: source {args.source}: {exc}", file=sys.stderr)
        return 2
    try:
        note = None
        if args.dry_run:
            dest, note = _open_dest_for_dry_run(args.dest)
        elif args.no_reindex:
            dest = storage_from_settings(load_settings(args.dest))
        else:
            service = build_service(load_settings(args.dest))
            dest = service.storage
    except Exception as exc:
        source.close()
        print(f"{PROG}: destination {args.dest}: {exc}", file=sys.stderr)
        return 2
    try:
        return _migrate(args, source, dest, service, note)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; run the same command again to resume", file=sys.stderr)
        return 1
    finally:
        source.close()
        dest.close()
        if service is not None:
            service.index.close()


def _migrate(args, source: Storage, dest: Storage, service, note: str | None) -> int:
    same = _identity(source)
    if same is not None and same == _identity(dest):
        print(f"{PROG}: {args.source} and {args.dest} use the same storage; nothing to do", file=sys.stderr)
        return 2
    if dest.read_only and not args.dry_run:
        print(
            f"{PROG}: the destination storage is read-only (storage.read_only = true in {args.dest})",
            file=sys.stderr,
        )
        return 2
    s3_involved = not (isinstance(source, FileStorage) and isinstance(dest, FileStorage))
    jobs = args.jobs or (4 if s3_involved else 1)

    try:
        objects = _listing(source, "listing source")
        existing = {(o.project, o.filename): o for o in _listing(dest, "listing destination")}
    except Exception as exc:
        print(f"{PROG}: cannot list storage: {exc}", file=sys.stderr)
        return 1
    if note:
        print(f"{PROG}: {note}: everything would be copied", file=sys.stderr)

    migration = Migration(source, dest, existing, overwrite=args.overwrite, dry_run=args.dry_run)
    counts: dict[str, int] = {}
    copied_bytes = [0]
    progress = Progress("copying" if not args.dry_run else "checking", len(objects))

    def on_outcome(outcome: Outcome) -> None:
        kind, obj = outcome.kind, outcome.obj
        counts[kind] = counts.get(kind, 0) + 1
        if kind in ("copied", "replaced"):
            copied_bytes[0] += obj.size
        line = None
        if kind == "conflict":
            line = f"conflict {_name(obj)}: {outcome.detail}; not overwritten (--overwrite replaces it)"
        elif kind == "failed":
            line = f"failed   {_name(obj)}: {outcome.detail}"
        if line is not None:
            progress.note(line)
        elif kind.startswith("would-"):
            what = kind[len("would-") :]
            extra = f" ({outcome.detail})" if outcome.detail else ""
            progress.note(f"would {what:<7} {_name(obj)} ({_size(obj.size)}){extra}", sys.stdout)
        elif args.verbose:
            label = {"present": "present"}.get(kind, kind)
            progress.note(f"{label:<8} {_name(obj)} ({_size(obj.size)})", sys.stdout)
        progress.step(detail=_size(copied_bytes[0]) if not args.dry_run else None)

    try:
        completed = _run(migration, objects, jobs, progress, on_outcome)
    except KeyboardInterrupt:
        progress.finish(
            f"{PROG}: interrupted after {counts.get('copied', 0)} copied files; "
            "run the same command again to copy the rest"
        )
        return 1

    conflicts, failed = counts.get("conflict", 0), counts.get("failed", 0)
    if args.dry_run:
        summary = (
            f"{PROG}: dry run: {counts.get('would-copy', 0)} to copy, "
            f"{counts.get('would-replace', 0)} to replace, "
            f"{counts.get('would-update', 0)} metadata updates, "
            f"{counts.get('present', 0)} already present, {conflicts} conflicts; "
            "nothing was changed"
        )
    else:
        summary = (
            f"{PROG}: {counts.get('copied', 0)} copied ({_size(copied_bytes[0])}), "
            f"{counts.get('replaced', 0)} replaced, "
            f"{counts.get('updated', 0)} metadata updated, "
            f"{counts.get('present', 0)} already present, "
            f"{conflicts} conflicts, {failed} failed"
        )
    if not completed:
        summary += f", {len(objects) - sum(counts.values())} not tried"
    progress.finish(summary)
    status = 0 if conflicts == 0 and failed == 0 and completed else 1

    if service is not None:
        reindex = Progress("indexing destination")
        try:
            count = service.rebuild(progress=reindex.step)
        except Exception as exc:
            reindex.finish(
                f"{PROG}: could not rebuild the destination index: {exc}; run ppc-reindex {args.dest}"
            )
            return 1
        reindex.finish(f"{PROG}: destination index rebuilt: {count} files")
    elif not args.dry_run:
        print(
            f"{PROG}: destination index not rebuilt (--no-reindex): run ppc-reindex {args.dest}",
            file=sys.stderr,
        )
    if status and not args.dry_run:
        print(
            f"{PROG}: not everything was copied; fix the problems above and run the same "
            "command again (files already copied are skipped)",
            file=sys.stderr,
        )
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
