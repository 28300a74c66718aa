"""Access data on the command line: ``ppc-access``, ``ppc-export`` and ``ppc-import``.

``ppc-access CONFIG.ini <command>`` changes users, groups and grants of a
database access backend (``pypi.auth = sql``) while servers run; they see the
change within a second. ``ppc-export`` writes any backend's data as JSON (the
ini backend included, which is how a team moves to the database), and
``ppc-import`` loads such a file into a database backend.

Exit codes: 0 done, 1 the change was refused (unknown or existing name, bad
value; the message says which), 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys

from ..access import access_from_settings
from ..access.editable import AccessData, EditableAccess, InvalidAccessData
from ..access.passwords import hash_password
from ..access_manager import AccessManager
from ..audit_actions import ACCESS_IMPORT
from ..errors import PypicloudError
from ..events import Event, EventBus
from ..timefmt import human_utc
from . import audit
from .access_parser import access_parser as _access_parser
from .common import load_settings
from .gen_password import read_password


def _backend(prog: str, config: str, *, editable: bool):
    try:
        backend = access_from_settings(load_settings(config))
    except Exception as exc:  # start-up errors already name the setting
        print(f"{prog}: {exc}", file=sys.stderr)
        return None
    if editable and not isinstance(backend, EditableAccess):
        print(
            f"{prog}: the access backend of {config} ({type(backend).__name__}) cannot be "
            "changed at run time; set pypi.auth = sql (or edit the ini)",
            file=sys.stderr,
        )
        return None
    return backend


# ppc-access -------------------------------------------------------------
def _new_password_hash(prog: str) -> str | None:
    password = read_password(prog)
    if password is None:
        return None
    if not password:
        print(f"{prog}: the password is empty", file=sys.stderr)
        return None
    return hash_password(password)


def _print_listing(data: AccessData) -> None:
    for name, user in sorted(data.users.items()):
        print(f"user  {name}{' (admin)' if user['admin'] else ''}")
    for name, group in sorted(data.groups.items()):
        members = " ".join(group["members"]) or "-"
        print(f"group {name}{' (admin)' if group['admin'] else ''}: {members}")
    for project, grants in sorted(data.packages.items()):
        for kind in ("users", "groups"):
            for name, perm in sorted(grants[kind].items()):
                print(f"grant {project} {kind[:-1]} {name} {perm}")


def _unknown_users(prog: str, backend, names: list[str]) -> bool:
    # Checked before the first change, so a typo changes nothing at all.
    unknown = [n for n in names if not backend.user_exists(n)]
    if unknown:
        print(f"{prog}: no such user: {', '.join(unknown)}", file=sys.stderr)
    return bool(unknown)


def _cmd_list(prog: str, backend, args) -> int:
    _print_listing(backend.export_data())
    return 0


def _cmd_add_user(prog: str, backend, args) -> int:
    hashed = _new_password_hash(prog)
    if hashed is None:
        return 1
    backend.create_user(args.username, hashed, admin=args.admin)
    return 0


def _cmd_set_password(prog: str, backend, args) -> int:
    hashed = _new_password_hash(prog)
    if hashed is None:
        return 1
    backend.set_password_hash(args.username, hashed)
    return 0


def _cmd_set_admin(prog: str, backend, args) -> int:
    backend.set_admin(args.username, not args.no)
    return 0


def _cmd_delete_user(prog: str, backend, args) -> int:
    backend.delete_user(args.username)
    return 0


def _cmd_add_group(prog: str, backend, args) -> int:
    if _unknown_users(prog, backend, args.members):
        return 1
    backend.create_group(args.group, admin=args.admin)
    for member in args.members:
        backend.set_membership(member, args.group, True)
    return 0


def _cmd_delete_group(prog: str, backend, args) -> int:
    backend.delete_group(args.group)
    return 0


def _cmd_membership(prog: str, backend, args) -> int:
    if _unknown_users(prog, backend, args.members):
        return 1
    for member in args.members:
        backend.set_membership(member, args.group, args.command == "add-member")
    return 0


def _cmd_add_token(prog: str, backend, args) -> int:
    try:
        made = AccessManager(backend, args.events, audit.operator()).create_token(
            None,
            args.username,
            projects=args.projects,
            upload=args.upload,
            expires_days=args.expires_days,
            description=args.description,
        )
    except InvalidAccessData as exc:
        print(f"{prog}: --expires-days: {exc}", file=sys.stderr)
        return 1
    secret, info = made.secret, made.info
    print(secret)
    print(
        f"{prog}: token {info.token_id} for {info.username}: "
        f"{'upload and read' if info.upload else 'read only'}, "
        f"{', '.join(info.projects) if info.projects else 'every project'}, "
        f"{'expires ' + human_utc(info.expires_at) if info.expires_at else 'never expires'}. "
        "Use it as the password of user __token__; it is not shown again.",
        file=sys.stderr,
    )
    return 0


def _cmd_list_tokens(prog: str, backend, args) -> int:
    for info in backend.tokens(args.username):
        print(
            f"{info.token_id}  {info.username}  "
            f"{'upload' if info.upload else 'read'}  "
            f"{','.join(info.projects) if info.projects else '*'}  "
            f"created {human_utc(info.created_at)}  "
            f"{'expires ' + human_utc(info.expires_at) if info.expires_at else 'no expiry'}"
            f"{'  ' + info.description if info.description else ''}"
        )
    return 0


def _cmd_delete_token(prog: str, backend, args) -> int:
    backend.delete_token(args.token_id)
    return 0


def _cmd_list_pending(prog: str, backend, args) -> int:
    for name in backend.pending_users():
        print(name)
    return 0


def _cmd_approve(prog: str, backend, args) -> int:
    for name in args.usernames:
        backend.approve_user(name)
    return 0


def _cmd_grant(prog: str, backend, args) -> int:
    permission = args.permission if args.command == "grant" else None
    AccessManager(backend, args.events, audit.operator()).set_grant(
        None, args.project, args.kind, args.name, permission
    )
    return 0


# Each sub-command of ppc-access: (prog, backend, parsed arguments) -> exit code.
_COMMANDS = {
    "list": _cmd_list,
    "add-user": _cmd_add_user,
    "set-password": _cmd_set_password,
    "set-admin": _cmd_set_admin,
    "delete-user": _cmd_delete_user,
    "add-group": _cmd_add_group,
    "delete-group": _cmd_delete_group,
    "add-member": _cmd_membership,
    "remove-member": _cmd_membership,
    "add-token": _cmd_add_token,
    "list-tokens": _cmd_list_tokens,
    "delete-token": _cmd_delete_token,
    "list-pending": _cmd_list_pending,
    "approve": _cmd_approve,
    "grant": _cmd_grant,
    "revoke": _cmd_grant,
}
# Commands whose output is the answer: no "<command> done" line after it.
_QUIET = frozenset({"list", "list-tokens", "add-token", "list-pending"})
# Commands that only read, so any access backend will do.
_READ_ONLY = frozenset({"list"})


def access_main(argv: list[str] | None = None) -> int:
    prog = "ppc-access"
    args = _access_parser().parse_args(argv)
    backend = _backend(prog, args.config, editable=args.command not in _READ_ONLY)
    if backend is None:
        return 2
    changes: list[Event] = []
    args.events = EventBus()  # the access manager's changes, recorded in the audit log below
    args.events.subscribe(changes.append)
    try:
        code = _COMMANDS[args.command](prog, backend, args)
    except PypicloudError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    if code == 0:
        changes += [Event(a, audit.operator(), detail=d) for a, d in audit.command_events(args)]
        audit.record(prog, args.config, changes)
    if code == 0 and args.command not in _QUIET:
        print(f"{prog}: {args.command} done", file=sys.stderr)
    return code


# ppc-export / ppc-import --------------------------------------------------
def export_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ppc-export",
        description="Write the users, groups and grants of a server's access backend as "
        "JSON (password hashes included, never passwords).",
    )
    parser.add_argument("config", help="the server's ini file")
    parser.add_argument("-o", "--output", help="write to this file (default: stdout)")
    args = parser.parse_args(argv)
    backend = _backend("ppc-export", args.config, editable=False)
    if backend is None:
        return 2
    try:
        doc = backend.export_data().to_json()
    except (NotImplementedError, PypicloudError) as exc:
        print(f"ppc-export: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(doc, indent=2) + "\n"
    if args.output:
        # It holds every password hash: readable by its owner only.
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file existed with wider rights
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    print(
        f"ppc-export: {len(doc['users'])} users, {len(doc['groups'])} groups, "
        f"{len(doc['packages'])} projects with grants",
        file=sys.stderr,
    )
    return 0


def import_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ppc-import",
        description="Load a ppc-export JSON file into a database access backend "
        "(pypi.auth = sql), in one transaction.",
    )
    parser.add_argument("config", help="the server's ini file")
    parser.add_argument(
        "file",
        nargs="?",
        help="the JSON file ('-' for stdin); a ppc-export file of pypicloud 1.x is read too, gzipped or not",
    )
    parser.add_argument(
        "-i", dest="input", metavar="FILE", help="the file, as pypicloud 1.x's ppc-import -i took it"
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="end with exactly the file's data (default: add and update only)",
    )
    args = parser.parse_args(argv)
    args.file = args.input or args.file or "-"
    try:
        if args.file == "-":
            doc = json.load(sys.stdin)
        else:
            with open(args.file, "rb") as handle:
                raw = handle.read()
            if raw[:2] == b"\x1f\x8b":  # 1.x's ppc-export -o wrote gzip
                raw = gzip.decompress(raw)
            doc = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as exc:
        print(f"ppc-import: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    backend = _backend("ppc-import", args.config, editable=True)
    if backend is None:
        return 2
    try:
        data = AccessData.from_json(doc)  # everything is checked before anything is written
        backend.load(data, replace=args.replace)
    except PypicloudError as exc:
        print(f"ppc-import: {exc}", file=sys.stderr)
        return 1
    counts = {"users": len(data.users), "groups": len(data.groups), "projects": len(data.packages)}
    change = Event(ACCESS_IMPORT, audit.operator(), detail={**counts, "replace": args.replace})
    audit.record("ppc-import", args.config, [change])
    print(
        f"ppc-import: {len(data.users)} users, {len(data.groups)} groups, "
        f"{len(data.packages)} projects with grants imported",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(access_main())
