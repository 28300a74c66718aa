"""The writes of the SQL access backend: users, groups, grants, tokens, imports.

Each write is one transaction that also moves the access change counter
(:meth:`SQLAccessBase._write`), so every process replaces its snapshot within a
second and this one at once. Mixed into :class:`pypicloud.access.sql.SQLAccess`.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from types import SimpleNamespace

import sqlalchemy as sa
from packaging.utils import canonicalize_name
from sqlalchemy.engine import Connection

from ..models import utcnow
from .base import PSEUDO_GROUPS
from .editable import (
    AccessConflict,
    AccessData,
    InvalidAccessData,
    TokenInfo,
    check_hash,
    check_name,
    check_permission,
)
from .schema import (
    group_grants,
    groups,
    memberships,
    pending_users,
    put_grant,
    tokens,
    user_grants,
    users,
)
from .sql_base import SQLAccessBase
from .sql_snapshot import sha256_hex, token_info

TOKEN_PREFIX = "ppc"


class SQLAccessWrites(SQLAccessBase):
    """Changes to users, groups, grants and API tokens, and whole-document imports."""

    def create_user(self, username: str, password_hash: str, *, admin: bool = False) -> None:
        check_name("user", username)
        check_hash(password_hash, username)

        def work(conn):
            if conn.execute(sa.select(users.c.username).where(users.c.username == username)).first():
                raise AccessConflict(f"User {username!r} exists already")
            conn.execute(users.insert().values(username=username, password_hash=password_hash, admin=admin))

        self._write(work)

    def set_password_hash(self, username: str, password_hash: str) -> None:
        check_hash(password_hash, username)
        self._update_user(username, password_hash=password_hash)
        self.forget_credentials(username)

    def set_admin(self, username: str, admin: bool) -> None:
        self._update_user(username, admin=admin)

    def _update_user(self, username: str, **values) -> None:
        def work(conn):
            if not conn.execute(users.update().where(users.c.username == username).values(**values)).rowcount:
                raise AccessConflict(f"No such user: {username!r}")

        self._write(work)

    def delete_user(self, username: str) -> None:
        def work(conn):
            # Explicit deletes: SQLite enforces ON DELETE CASCADE only with
            # foreign_keys on, and a database made elsewhere may not have it.
            conn.execute(memberships.delete().where(memberships.c.username == username))
            conn.execute(user_grants.delete().where(user_grants.c.username == username))
            conn.execute(tokens.delete().where(tokens.c.username == username))
            if not conn.execute(users.delete().where(users.c.username == username)).rowcount:
                raise AccessConflict(f"No such user: {username!r}")

        self._write(work)
        self.forget_credentials(username)

    def create_group(self, name: str, *, admin: bool = False) -> None:
        check_name("group", name)

        def work(conn):
            if conn.execute(sa.select(groups.c.name).where(groups.c.name == name)).first():
                raise AccessConflict(f"Group {name!r} exists already")
            conn.execute(groups.insert().values(name=name, admin=admin))

        self._write(work)

    def delete_group(self, name: str) -> None:
        def work(conn):
            conn.execute(memberships.delete().where(memberships.c.group_name == name))
            conn.execute(group_grants.delete().where(group_grants.c.group_name == name))
            if not conn.execute(groups.delete().where(groups.c.name == name)).rowcount:
                raise AccessConflict(f"No such group: {name!r}")

        self._write(work)

    def set_membership(self, username: str, group: str, member: bool) -> None:
        def work(conn):
            self._require(conn, users, users.c.username, username, "user")
            self._require(conn, groups, groups.c.name, group, "group")
            where = (memberships.c.username == username) & (memberships.c.group_name == group)
            conn.execute(memberships.delete().where(where))
            if member:
                conn.execute(memberships.insert().values(username=username, group_name=group))

        self._write(work)

    def set_grant(self, project: str, kind: str, name: str, permission: str | None) -> None:
        if permission is not None:
            check_permission(permission)
        project = canonicalize_name(project)
        if kind == "user":
            table, column, exists = user_grants, user_grants.c.username, (users, users.c.username)
        elif kind == "group":
            table, column, exists = group_grants, group_grants.c.group_name, (groups, groups.c.name)
        else:
            raise ValueError(f"kind must be 'user' or 'group', not {kind!r}")

        def work(conn):
            if not (kind == "group" and name in PSEUDO_GROUPS):
                self._require(conn, exists[0], exists[1], name, kind)
            where = (table.c.project == project) & (column == name)
            conn.execute(table.delete().where(where))
            if permission is not None:
                conn.execute(
                    table.insert().values({"project": project, column.name: name, "permission": permission})
                )

        self._write(work)

    def create_token(
        self,
        username: str,
        *,
        projects: list[str] | None = None,
        upload: bool = False,
        expires_at: datetime | None = None,
        description: str | None = None,
    ) -> tuple[str, TokenInfo]:
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        names = None if projects is None else sorted({canonicalize_name(p) for p in projects})
        if names is not None and not names:
            raise InvalidAccessData("A token limited to projects needs at least one project")
        row = {
            "token_id": token_id,
            "secret_sha256": sha256_hex(secret),
            "username": username,
            "projects": None if names is None else " ".join(names),
            "upload": upload,
            "description": description,
            "created_at": utcnow(),
            "expires_at": expires_at,
        }

        def work(conn):
            self._require(conn, users, users.c.username, username, "user")
            conn.execute(tokens.insert().values(**row))

        self._write(work)
        return f"{TOKEN_PREFIX}_{token_id}_{secret}", token_info(SimpleNamespace(**row))

    def tokens(self, username: str | None = None) -> list[TokenInfo]:
        listed = self._current().tokens.values()
        return [t for t in listed if username is None or t.username == username]

    def delete_token(self, token_id: str) -> None:
        def work(conn):
            if not conn.execute(tokens.delete().where(tokens.c.token_id == token_id)).rowcount:
                raise AccessConflict(f"No such token: {token_id!r}")

        self._write(work)

    def load(self, data: AccessData, *, replace: bool = False) -> None:
        def work(conn):
            if replace:
                for table in (memberships, user_grants, group_grants, tokens, users, groups, pending_users):
                    conn.execute(table.delete())
            _load_users(conn, data)
            _load_groups(conn, data)
            for project, grants in data.packages.items():
                for kind in ("user", "group"):
                    for name, perm in grants[kind + "s"].items():
                        put_grant(conn, project, kind, name, perm)

        self._write(work)
        self.forget_credentials()


def _load_users(conn: Connection, data: AccessData) -> None:
    for name, user in data.users.items():
        # Update in place: a delete would cascade to memberships and
        # grants the document does not mention.
        values = {"password_hash": user["password_hash"], "admin": user["admin"]}
        if not conn.execute(users.update().where(users.c.username == name).values(**values)).rowcount:
            conn.execute(users.insert().values(username=name, **values))


def _load_groups(conn: Connection, data: AccessData) -> None:
    for name, group in data.groups.items():
        if not conn.execute(
            groups.update().where(groups.c.name == name).values(admin=group["admin"])
        ).rowcount:
            conn.execute(groups.insert().values(name=name, admin=group["admin"]))
        # A group in the document gets exactly the members it lists.
        conn.execute(memberships.delete().where(memberships.c.group_name == name))
        if group["members"]:
            conn.execute(
                memberships.insert(), [{"username": m, "group_name": name} for m in group["members"]]
            )
