"""``ppc-reindex CONFIG.ini``: rebuild the metadata index from storage."""

from __future__ import annotations

import argparse
import sys

from ..app import build_service
from .common import Progress, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ppc-reindex", description="Rebuild the metadata index so that it matches storage exactly."
    )
    parser.add_argument("config", help="the server's ini file (e.g. development.ini)")
    parser.add_argument(
        "--write-manifest",
        action="store_true",
        help="do not rebuild: write storage's manifest from the index as it is (for cron); "
        "a rebuild writes it anyway",
    )
    args = parser.parse_args(argv)
    try:
        service = build_service(load_settings(args.config))
    except Exception as exc:  # start-up errors already name the setting
        print(f"ppc-reindex: {exc}", file=sys.stderr)
        return 2
    if args.write_manifest:
        return _write_manifest(service)
    progress = Progress("scanning storage")
    count = service.rebuild(progress=progress.step)
    progress.finish(f"index rebuilt: {count} files")
    return 0


def _write_manifest(service) -> int:
    count = service.write_manifest()
    if count is None:
        print(
            "ppc-reindex: this storage keeps no manifest (or is read-only); nothing written", file=sys.stderr
        )
        return 1
    if count == 0:
        print("manifest not written: no index row knows its object's storage tag yet (run ppc-reindex)")
        return 0
    print(f"manifest written: {count} files")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
