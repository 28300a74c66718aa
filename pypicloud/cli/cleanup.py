"""``ppc-cleanup CONFIG.ini [--dry-run] [--yes] [--policy NAME]``: apply the retention
policies of the ini (docs/retention.md) once, now.

``--dry-run`` lists every file that would go, with its policy and reason, the
count and the bytes, and deletes nothing. Without it the same list is shown
and, after a confirmation (or ``--yes``), each file is deleted through the
service as the server's ``retention`` identity. The list goes to stdout; the
progress bar to stderr (redrawn on a terminal, otherwise only the summary).
Exit status: 0 done, 1 some files could not be deleted, 2 bad settings or
arguments, 3 not confirmed.
"""

from __future__ import annotations

import argparse
import sys

from ..app import build_services
from ..models import utcnow
from ..retention.plan import Deletion
from ..retention.run import plan_run, run
from .common import Progress, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ppc-cleanup", description="Delete the files the ini's retention policies no longer keep."
    )
    parser.add_argument("config", help="the server's ini file (e.g. production.ini)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--policy", action="append", metavar="NAME", help="only this policy (repeatable; default: all)"
    )
    return parser


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover


def _list(planned: list[Deletion], progress: Progress) -> None:
    for deletion in planned:
        record = deletion.record
        line = f"{record.project} {record.version} {record.filename} ({_size(record.size)}): {deletion.policy}: {deletion.reason}"
        progress.note(line, stream=sys.stdout)
        progress.step()


def _confirm(count: int) -> bool:
    if not sys.stdin.isatty():
        print("ppc-cleanup: not a terminal; pass --yes to delete without confirmation", file=sys.stderr)
        return False
    answer = input(f"Delete these {count} files? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        services = build_services(load_settings(args.config))
        config = services.retention
        config.selected(args.policy)  # an unknown --policy before anything is read
        if not config.policies:
            print("ppc-cleanup: no retention policies in this ini (retention.<name>.*)", file=sys.stderr)
            return 2
    except Exception as exc:  # start-up errors already name the setting
        print(f"ppc-cleanup: {exc}", file=sys.stderr)
        return 2
    try:
        return _cleanup(services.service, config, args)
    finally:
        services.service.index.close()


def _cleanup(service, config, args) -> int:
    if args.dry_run:  # a dry run is a run: its retention.run event says dry_run
        planned = run(service, config, dry_run=True, names=args.policy).planned
    else:
        planned = plan_run(service, config.selected(args.policy), config, utcnow())
    progress = Progress("listing", total=len(planned))
    _list(planned, progress)
    summary = f"{len(planned)} files, {_size(sum(d.record.size for d in planned))}"
    if args.dry_run or not planned:
        progress.finish(f"would delete {summary}" if planned else "nothing to delete")
        return 0
    progress.finish(f"to delete: {summary}")
    if not args.yes and not _confirm(len(planned)):
        print("ppc-cleanup: nothing deleted", file=sys.stderr)
        return 3
    return _apply(service, config, args, planned)


def _apply(service, config, args, planned: list[Deletion]) -> int:
    progress = Progress("deleting", total=len(planned))

    def step(deletion: Deletion, error: str | None) -> None:
        if error is not None:
            progress.note(f"failed: {deletion.record.filename}: {error}")
        progress.step()

    report = run(service, config, names=args.policy, step=step, planned=planned)
    progress.finish(
        f"deleted {len(report.deleted)} files, {_size(report.deleted_bytes)}"
        + (f"; {len(report.gone)} already gone" if report.gone else "")
        + (f"; {len(report.failed)} failed" if report.failed else "")
    )
    return 1 if report.failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
