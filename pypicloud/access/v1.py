"""pypicloud 1.x's access data: its SQL tables and its ``ppc-export`` document.

A 1.x server with ``pypi.auth = sql`` kept users, groups and grants in six
tables (``pypicloud_users``, ``pypicloud_groups``, ``pypicloud_user_groups``,
``pypicloud_user_permissions``, ``pypicloud_group_permissions``,
``pypicloud_keyvals``). When the database access backend starts on a database
that holds them, it copies them once into its own tables (the 1.x tables are
only read, never changed), so a 1.x site keeps every user, password hash, admin
flag, group, grant and pending sign-up. A marker row makes the copy happen
exactly once, even when several processes start together; users, groups and
grants deleted afterwards do not come back.

1.x's ``ppc-export`` document (``{"version": "1.3.12", "users": [...],
"groups": {...}, "packages": {"users": ..., "groups": ...}}``) is converted to
this server's access document by :func:`document_from_1x`.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from packaging.utils import canonicalize_name
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from .base import PSEUDO_GROUPS, READ, WRITE
from .schema import (
    access_counters,
    groups,
    memberships,
    pending_users,
    put_grant,
    users,
)

LOG = logging.getLogger(__name__)

# The marker row in ppc_access_counters: present once 1.x's tables were copied.
IMPORTED_MARKER = "imported_pypicloud_1x"

# 1.3.12's tables, as its pypicloud/access/sql.py declares them (read only).
_v1 = sa.MetaData()
V1_USERS = sa.Table(
    "pypicloud_users",
    _v1,
    sa.Column("username", sa.String(255)),
    sa.Column("password", sa.Text),
    sa.Column("admin", sa.Boolean),
    sa.Column("pending", sa.Boolean),
)
V1_GROUPS = sa.Table("pypicloud_groups", _v1, sa.Column("name", sa.String(255)))
V1_USER_GROUPS = sa.Table(
    "pypicloud_user_groups", _v1, sa.Column("username", sa.String(255)), sa.Column("group", sa.String(255))
)
V1_USER_PERMISSIONS = sa.Table(
    "pypicloud_user_permissions",
    _v1,
    sa.Column("package", sa.String(255)),
    sa.Column("username", sa.String(255)),
    sa.Column("read", sa.Boolean),
    sa.Column("write", sa.Boolean),
)
V1_GROUP_PERMISSIONS = sa.Table(
    "pypicloud_group_permissions",
    _v1,
    sa.Column("package", sa.String(255)),
    sa.Column("groupname", sa.String(255)),
    sa.Column("read", sa.Boolean),
    sa.Column("write", sa.Boolean),
)


def permission(read, write) -> str:
    """1.x's two flags as one grant value (``""`` when neither is set)."""
    return (READ if read else "") + (WRITE if write else "")


def _union(a: str | None, b: str) -> str:
    both = (a or "") + b
    return permission(READ in both, WRITE in both)


def has_1x_tables(engine: Engine, schema: str | None) -> bool:
    with engine.connect() as conn:
        return sa.inspect(conn).has_table(V1_USERS.name, schema=schema)


def import_1x_tables(engine: Engine, schema: str | None) -> bool:
    """Copy 1.x's access tables into ours, once. True when this call copied them."""
    if not has_1x_tables(engine, schema):
        return False
    try:
        with engine.begin() as conn:
            marker = conn.execute(
                sa.select(access_counters.c.value).where(access_counters.c.name == IMPORTED_MARKER)
            ).first()
            if marker is not None:
                return False
            # Claim the copy first: a second process starting at the same time
            # blocks here and then fails on the primary key, copying nothing.
            conn.execute(access_counters.insert().values(name=IMPORTED_MARKER, value=1))
            counts = _copy(conn)
            conn.execute(
                access_counters.update()
                .where(access_counters.c.name == "generation")
                .values(value=access_counters.c.value + 1)
            )
    except IntegrityError:
        return False
    LOG.warning(
        "Copied pypicloud 1.x's access data from its pypicloud_* tables: %d users "
        "(%d admins), %d pending sign-ups, %d groups, %d grants on %d projects. The "
        "1.x tables were left unchanged; changes from now on go to the ppc_* tables.",
        *counts,
    )
    return True


def _copy(conn: Connection) -> tuple[int, ...]:
    existing_users = set(conn.execute(sa.select(users.c.username)).scalars())
    existing_groups = set(conn.execute(sa.select(groups.c.name)).scalars())
    active, pending = _v1_users(conn)
    for name, (password_hash, admin) in active.items():
        if name not in existing_users:  # never overwrite a user made here already
            conn.execute(users.insert().values(username=name, password_hash=password_hash, admin=admin))
    for name, password_hash in pending.items():
        if name not in existing_users:
            conn.execute(pending_users.insert().values(username=name, password_hash=password_hash))
    # 1.x on a database with foreign keys needed real groups named everyone /
    # authenticated before it could grant to them; here they are built in.
    group_names = [r.name for r in conn.execute(sa.select(V1_GROUPS)) if r.name not in PSEUDO_GROUPS]
    for name in group_names:
        if name not in existing_groups:
            conn.execute(groups.insert().values(name=name, admin=False))
    known_users = existing_users | set(active)
    _copy_memberships(conn, known_users, existing_groups | set(group_names))
    grants = _v1_grants(conn, known_users)
    projects = set()
    for (kind, project, name), perm in grants.items():
        if perm:
            put_grant(conn, project, kind, name, perm)
            projects.add(project)
    admins = sum(1 for _, admin in active.values() if admin)
    granted = sum(1 for p in grants.values() if p)
    return len(active), admins, len(pending), len(group_names), granted, len(projects)


def _v1_users(conn: Connection) -> tuple[dict[str, tuple[str, bool]], dict[str, str]]:
    """1.x's users: ``({name: (hash, admin)}, {pending name: hash})``."""
    active, pending = {}, {}
    for row in conn.execute(sa.select(V1_USERS)):
        if row.pending:
            pending[row.username] = row.password
        else:
            active[row.username] = (row.password, bool(row.admin))
    return active, pending


def _copy_memberships(conn: Connection, known_users: set[str], known_groups: set[str]) -> None:
    pairs = {
        (r.username, r.group)
        for r in conn.execute(sa.select(V1_USER_GROUPS))
        if r.username in known_users and r.group in known_groups
    }
    present = {(r.username, r.group_name) for r in conn.execute(sa.select(memberships))}
    for username, group in sorted(pairs - present):
        conn.execute(memberships.insert().values(username=username, group_name=group))


def _v1_grants(conn: Connection, known_users: set[str]) -> dict[tuple[str, str, str], str]:
    """1.x's grants as ``{(user|group, project, name): permission}`` ("" for none).

    Names canonicalised (1.x stored them as typed); two spellings of one project
    merge, read and write together. Users first, then groups, as 1.x listed them.
    """
    grants: dict[tuple[str, str, str], str] = {}
    for row in conn.execute(sa.select(V1_USER_PERMISSIONS)):
        if row.username not in known_users:
            LOG.warning(
                "pypicloud 1.x grant of %r on %r not copied: %r is not an approved user",
                row.username,
                row.package,
                row.username,
            )
            continue
        key = ("user", canonicalize_name(row.package), row.username)
        grants[key] = _union(grants.get(key), permission(row.read, row.write))
    for row in conn.execute(sa.select(V1_GROUP_PERMISSIONS)):
        key = ("group", canonicalize_name(row.package), row.groupname)
        grants[key] = _union(grants.get(key), permission(row.read, row.write))
    return grants


def is_1x_document(doc) -> bool:
    """True for the JSON 1.x's ``ppc-export`` wrote (its version a string such as
    "1.3.12", users as a list)."""
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("version"), str)
        and isinstance(doc.get("users"), list)
        and isinstance(doc.get("packages", {}), dict)
    )


def document_from_1x(doc: dict) -> dict:
    """1.x's ``ppc-export`` document as this server's access document (version 1).

    1.x exported approved users only (never pending ones) and no admin groups;
    its ``allow_register`` flag has no counterpart here.
    """
    out: dict = {"version": 1, "users": {}, "groups": {}, "packages": {}}
    for user in doc.get("users", []):
        if not isinstance(user, dict):
            continue  # from_json reports what is left malformed
        out["users"][user.get("username")] = {
            "password_hash": user.get("password"),
            "admin": bool(user.get("admin", False)),
        }
    for name, members in (doc.get("groups") or {}).items():
        if name in PSEUDO_GROUPS:
            continue  # built in here; 1.x needed rows for them on some databases
        out["groups"][name] = {"members": list(members or []), "admin": False}
    packages = doc.get("packages") or {}
    for kind in ("users", "groups"):
        for package, grants in (packages.get(kind) or {}).items():
            entry = out["packages"].setdefault(package, {"users": {}, "groups": {}})
            for name, perms in (grants or {}).items():
                perms = perms or []
                value = permission("read" in perms, "write" in perms)
                if value:
                    entry[kind][name] = value
    return out
