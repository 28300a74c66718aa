"""``ppc-audit``: the audit log as JSON lines, and the audit records of the other CLIs.

``ppc-audit CONFIG.ini [--action A] [--actor U] [--project P] [--since T]
[--until T] [--limit N]`` prints the events the server recorded (newest first,
one JSON object a line, as ``/admin/audit.jsonl`` answers them).

``ppc-access`` and ``ppc-import`` record their changes here too, with the actor
``cli:<login name>``: :func:`command_events` says what each command changed and
:func:`record` writes it to the index of the same ini (a failure is reported on
stderr; the change itself is made either way).

Exit codes: 0 done, 1 a refused filter or an unreachable index, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterable
from typing import Any

from .. import audit_actions as act
from ..audit import AuditLog, AuditService
from ..errors import PypicloudError
from ..events import Event
from ..index import index_from_settings
from .common import load_settings

# The CLI's own index opens no change listener: it only writes a few events.
_QUIET_INDEX = {"db.listen": "false"}


def operator() -> str:
    """The actor of a change made at the command line: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (a container without a passwd entry)
        return "cli:unknown"


def command_events(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """(action, detail) of each change a ``ppc-access`` command made directly on the backend.

    ``add-token``, ``grant`` and ``revoke`` go through the access manager, which
    records them itself; reading commands change nothing.
    """
    command = args.command
    if command in ("add-member", "remove-member"):
        action = act.MEMBER_ADD if command == "add-member" else act.MEMBER_REMOVE
        return [(action, {"user": m, "group": args.group}) for m in args.members]
    if command == "add-group":
        made = [(act.GROUP_CREATE, {"group": args.group, "admin": args.admin})]
        return made + [(act.MEMBER_ADD, {"user": m, "group": args.group}) for m in args.members]
    if command == "approve":
        return [(act.USER_APPROVE, {"user": name}) for name in args.usernames]
    single = {
        "add-user": lambda: (act.USER_CREATE, {"user": args.username, "admin": args.admin}),
        "set-password": lambda: (act.USER_PASSWORD, {"user": args.username}),
        "set-admin": lambda: (act.USER_ADMIN, {"user": args.username, "admin": not args.no}),
        "delete-user": lambda: (act.USER_DELETE, {"user": args.username}),
        "delete-group": lambda: (act.GROUP_DELETE, {"group": args.group}),
        "delete-token": lambda: (act.TOKEN_REVOKE, {"token_id": args.token_id}),
    }.get(command)
    return [single()] if single is not None else []


def record(prog: str, config: str, events: Iterable[Event]) -> None:
    """Write ``events`` to the audit log of ``config``'s index (when ``audit.enabled``)."""
    events = list(events)
    if not events:
        return
    try:
        settings = load_settings(config, _QUIET_INDEX)
        if not settings.get_bool("audit.enabled", True):
            return
        index = index_from_settings(settings)
    except Exception as exc:
        print(f"{prog}: done, but not recorded in the audit log: {exc}", file=sys.stderr)
        return
    try:
        writer = AuditLog(index)
        for event in events:
            writer(event)
    finally:
        index.close()


# ppc-audit ------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ppc-audit",
        description="Print the audit log of a server (every upload, delete, yank, access change, "
        "token and trusted-publishing mint) as JSON lines, newest first.",
    )
    parser.add_argument("config", help="the server's ini file")
    parser.add_argument("--action", help="an action (file.upload) or a family ending in a dot (access.)")
    parser.add_argument("--actor", help="who made the change (a user name, cli:<login>, ...)")
    parser.add_argument("--project", help="a project name")
    parser.add_argument("--since", help="from this date or UTC time on (2025-03-01 or 2025-03-01T09:30Z)")
    parser.add_argument("--until", help="up to this date (included) or before this UTC time")
    parser.add_argument("--limit", type=int, help="print at most this many events (default: all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    params = {
        "action": args.action,
        "actor": args.actor,
        "project": args.project,
        "from": args.since,
        "to": args.until,
        "limit": str(args.limit) if args.limit is not None else None,
    }
    try:
        settings = load_settings(args.config, _QUIET_INDEX)
        index = index_from_settings(settings)
    except Exception as exc:  # start-up errors already name the setting
        print(f"ppc-audit: {exc}", file=sys.stderr)
        return 2
    try:
        lines = AuditService(index).export(None, {k: v for k, v in params.items() if v is not None})
        for line in lines:
            sys.stdout.write(line)
    except PypicloudError as exc:
        print(f"ppc-audit: {exc}", file=sys.stderr)
        return 1
    finally:
        index.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
