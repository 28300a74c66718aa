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
import os
import sys
from dataclasses import dataclass, field

from .. import build_service
from ..errors import BadSource, ConfigError
from ..hashing import CHUNK
from ..migration import Migration, Outcome, _name, _VerifyingReader, run_concurrently, same_place
from ..models import StoredObject
from ..storage import Storage, storage_from_settings
from ..storage.file import FileStorage
from ..storage.memory import MemoryStorage
from .common import Progress, load_settings

PROG = "ppc-migrate"
MAX_JOBS = 32
#: Stop starting new copies after this many failures in a row (destination down?).
MAX_FAILURES_IN_A_ROW = 10

# Kept importable from here (the migration rules moved to pypicloud.migration).
__all__ = ["CHUNK", "BadSource", "Migration", "Outcome", "_VerifyingReader", "build_parser", "main"]


def _size(count: int | float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} bytes"  # pragma: no cover


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
            and not os.path.exists(settings.path(settings.get_str("storage.dir") or ""))
        )
        missing_bucket = (
            exc.key in ("storage.bucket", "storage.storage_container_name")
            and "does not exist" in exc.message
        )
        if missing_dir or missing_bucket:
            # An empty read-only stand-in: nothing is there yet, and a dry run writes nothing.
            return MemoryStorage(read_only=True), "the destination storage does not exist yet"
        raise


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


def _refusal(args, source: Storage, dest: Storage) -> str | None:
    """Why this run must not start (exit code 2), or None."""
    if same_place(source, dest):
        return f"{args.source} and {args.dest} use the same storage; nothing to do"
    if dest.read_only and not args.dry_run:
        return f"the destination storage is read-only (storage.read_only = true in {args.dest})"
    return None


def _migrate(args, source: Storage, dest: Storage, service, note: str | None) -> int:
    refusal = _refusal(args, source, dest)
    if refusal is not None:
        print(f"{PROG}: {refusal}", file=sys.stderr)
        return 2
    try:
        objects = _listing(source, "listing source")
        existing = {(o.project, o.filename): o for o in _listing(dest, "listing destination")}
    except Exception as exc:
        print(f"{PROG}: cannot list storage: {exc}", file=sys.stderr)
        return 1
    if note:
        print(f"{PROG}: {note}: everything would be copied", file=sys.stderr)
    migration = Migration(source, dest, existing, overwrite=args.overwrite, dry_run=args.dry_run)
    report = Report(args, Progress("copying" if not args.dry_run else "checking", len(objects)))
    try:
        completed = _copy_all(args, migration, objects, source, dest, report)
    except KeyboardInterrupt:
        report.progress.finish(
            f"{PROG}: interrupted after {report.count('copied')} copied files; "
            "run the same command again to copy the rest"
        )
        return 1
    report.progress.finish(report.summary(len(objects), completed))
    status = 0 if report.count("conflict") == 0 and report.count("failed") == 0 and completed else 1
    if not _reindex(args, service):
        return 1
    if status and not args.dry_run:
        print(
            f"{PROG}: not everything was copied; fix the problems above and run the same "
            "command again (files already copied are skipped)",
            file=sys.stderr,
        )
    return status


def _copy_all(args, migration: Migration, objects, source: Storage, dest: Storage, report: Report) -> bool:
    s3_involved = not (isinstance(source, FileStorage) and isinstance(dest, FileStorage))
    jobs = args.jobs or (4 if s3_involved else 1)

    def give_up(failures: int) -> None:
        report.progress.note(
            f"{PROG}: giving up after {failures} failures in a row (is the destination reachable and writable?)"
        )

    return run_concurrently(
        migration, objects, jobs, report.add, max_failures=MAX_FAILURES_IN_A_ROW, on_give_up=give_up
    )


def _reindex(args, service) -> bool:
    """Rebuild the destination's index (unless told not to); False when that failed."""
    if service is not None:
        reindex = Progress("indexing destination")
        try:
            count = service.rebuild(progress=reindex.step)
        except Exception as exc:
            reindex.finish(
                f"{PROG}: could not rebuild the destination index: {exc}; run ppc-reindex {args.dest}"
            )
            return False
        reindex.finish(f"{PROG}: destination index rebuilt: {count} files")
    elif not args.dry_run:
        print(
            f"{PROG}: destination index not rebuilt (--no-reindex): run ppc-reindex {args.dest}",
            file=sys.stderr,
        )
    return True


@dataclass
class Report:
    """Counts the outcomes of a run and prints a line for each one worth a line."""

    args: argparse.Namespace
    progress: Progress
    counts: dict[str, int] = field(default_factory=dict)
    copied_bytes: int = 0

    def count(self, kind: str) -> int:
        return self.counts.get(kind, 0)

    def add(self, outcome: Outcome) -> None:
        kind, obj = outcome.kind, outcome.obj
        self.counts[kind] = self.count(kind) + 1
        if kind in ("copied", "replaced"):
            self.copied_bytes += obj.size
        line = self._line(outcome)
        if line is not None:
            self.progress.note(*line)
        self.progress.step(detail=_size(self.copied_bytes) if not self.args.dry_run else None)

    def _line(self, outcome: Outcome) -> tuple | None:
        """(text,) for stderr, (text, sys.stdout) for stdout, None for no line."""
        kind, obj = outcome.kind, outcome.obj
        if kind == "conflict":
            return (f"conflict {_name(obj)}: {outcome.detail}; not overwritten (--overwrite replaces it)",)
        if kind == "failed":
            return (f"failed   {_name(obj)}: {outcome.detail}",)
        if kind.startswith("would-"):
            what = kind[len("would-") :]
            extra = f" ({outcome.detail})" if outcome.detail else ""
            return (f"would {what:<7} {_name(obj)} ({_size(obj.size)}){extra}", sys.stdout)
        if self.args.verbose:
            return (f"{kind:<8} {_name(obj)} ({_size(obj.size)})", sys.stdout)
        return None

    def summary(self, total: int, completed: bool) -> str:
        conflicts, failed = self.count("conflict"), self.count("failed")
        if self.args.dry_run:
            summary = (
                f"{PROG}: dry run: {self.count('would-copy')} to copy, "
                f"{self.count('would-replace')} to replace, "
                f"{self.count('would-update')} metadata updates, "
                f"{self.count('present')} already present, {conflicts} conflicts; "
                "nothing was changed"
            )
        else:
            summary = (
                f"{PROG}: {self.count('copied')} copied ({_size(self.copied_bytes)}), "
                f"{self.count('replaced')} replaced, "
                f"{self.count('updated')} metadata updated, "
                f"{self.count('present')} already present, "
                f"{conflicts} conflicts, {failed} failed"
            )
        if not completed:
            summary += f", {total - sum(self.counts.values())} not tried"
        return summary


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
