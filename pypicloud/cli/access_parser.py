"""The command line of ``ppc-access``: its sub-commands and their arguments (:mod:`pypicloud.cli.access` runs them)."""

from __future__ import annotations

import argparse


def access_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ppc-access",
        description="Change users, groups and grants of a database access backend "
        "(pypi.auth = sql). Passwords are prompted for in a terminal, else read from stdin.",
    )
    parser.add_argument("config", help="the server's ini file")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    for add_commands in (
        _user_commands,
        _group_commands,
        _grant_commands,
        _token_commands,
        _listing_commands,
    ):
        add_commands(sub)
    return parser


def _user_commands(sub) -> None:
    """add-user, set-password, set-admin, delete-user."""
    add = sub.add_parser("add-user", help="create a user (password prompted or from stdin)")
    add.add_argument("username")
    add.add_argument("--admin", action="store_true", help="the user is an admin")
    passwd = sub.add_parser("set-password", help="change a user's password")
    passwd.add_argument("username")
    admin = sub.add_parser("set-admin", help="make a user an admin (or not, with --no)")
    admin.add_argument("username")
    admin.add_argument("--no", action="store_true", help="take admin rights away")
    delete = sub.add_parser("delete-user", help="delete a user, their memberships and grants")
    delete.add_argument("username")


def _group_commands(sub) -> None:
    """add-group, delete-group, add-member, remove-member."""
    group = sub.add_parser("add-group", help="create a group, optionally with members")
    group.add_argument("group")
    group.add_argument("members", nargs="*", help="existing user names")
    group.add_argument("--admin", action="store_true", help="members of the group are admins")
    dgroup = sub.add_parser("delete-group", help="delete a group, its memberships and grants")
    dgroup.add_argument("group")
    join = sub.add_parser("add-member", help="add users to a group")
    join.add_argument("group")
    join.add_argument("members", nargs="+")
    leave = sub.add_parser("remove-member", help="take users out of a group")
    leave.add_argument("group")
    leave.add_argument("members", nargs="+")


def _grant_commands(sub) -> None:
    """grant, revoke."""
    grant = sub.add_parser(
        "grant", help="grant r, rw or w (write only, as 1.x allowed) on a project to a user or group"
    )
    grant.add_argument("project")
    grant.add_argument("kind", choices=("user", "group"))
    grant.add_argument("name", help="user or group name (groups: also everyone, authenticated)")
    grant.add_argument("permission", choices=("r", "rw", "w"))
    revoke = sub.add_parser("revoke", help="remove a user's or group's grant on a project")
    revoke.add_argument("project")
    revoke.add_argument("kind", choices=("user", "group"))
    revoke.add_argument("name")


def _token_commands(sub) -> None:
    """add-token, list-tokens, delete-token."""
    token = sub.add_parser("add-token", help="make an API token for a user; prints it once")
    token.add_argument("username")
    token.add_argument(
        "--project",
        action="append",
        dest="projects",
        metavar="PROJECT",
        help="limit the token to this project (repeat for more; default: all projects the user may use)",
    )
    token.add_argument("--upload", action="store_true", help="the token may upload (default: read only)")
    token.add_argument(
        "--expires-days",
        type=int,
        default=90,
        metavar="DAYS",
        help="valid for this many days (default: 90; 0: never expires)",
    )
    token.add_argument("--description", help="a note shown by list-tokens (e.g. the CI job)")
    listed = sub.add_parser("list-tokens", help="print tokens (never their secrets)")
    listed.add_argument("username", nargs="?")
    revoke_token = sub.add_parser("delete-token", help="revoke a token by its id")
    revoke_token.add_argument("token_id")


def _listing_commands(sub) -> None:
    """list, list-pending, approve."""
    sub.add_parser("list", help="print users, groups and grants")
    sub.add_parser("list-pending", help="print sign-ups left pending on pypicloud 1.x")
    approve = sub.add_parser("approve", help="make a pending 1.x sign-up a user")
    approve.add_argument("usernames", nargs="+")
