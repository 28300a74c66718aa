"""Users, groups and grants in a database (``pypi.auth = sql``).

The tables (``access/schema.py``) live in ``auth.db.url``: by default the same
database as a SQL metadata index (SQLite beside the ini), or any PostgreSQL
database the server processes share. Unlike the ini backend the data can be
changed while servers run (``ppc-access``, ``ppc-import``).

Permission checks run on every request, so each process keeps the whole access
data in memory as one immutable snapshot and replaces it when the access change
counter moves. The counter is read at most once a second; changes made through
this process replace the snapshot at once, changes made through another
process are seen within a second. Cached logins are dropped whenever the data
changes, so a changed password or a deleted user stops working as fast.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

import sqlalchemy as sa
from packaging.utils import canonicalize_name
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from .. import sqldb
from ..errors import BackendUnavailable, ConfigError
from ..models import Identity, TokenScope, utcnow
from . import v1
from .base import PSEUDO_GROUPS
from .editable import (
    AccessConflict,
    AccessData,
    EditableAccess,
    InvalidAccessData,
    PendingQueueFull,
    TokenInfo,
    check_hash,
    check_name,
    check_permission,
)
from .passwords import hash_password, needs_rehash, typical_hash, verify_dummy, verify_password
from .schema import (
    access_counters,
    group_grants,
    groups,
    memberships,
    pending_users,
    put_grant,
    tokens,
    user_grants,
    users,
)

# Row of ppc_access_counters holding the run-time registration switch (1 on, 0 off;
# absent: pypi.allow_register from the ini decides), as 1.x kept it in its keyvals.
REGISTRATION_ROW = "allow_register"


def _token_info(row) -> TokenInfo:
    projects = tuple(row.projects.split()) if row.projects is not None else None
    return TokenInfo(
        row.token_id,
        row.username,
        projects,
        bool(row.upload),
        row.description,
        row.created_at,
        row.expires_at,
    )


LOG = logging.getLogger(__name__)
MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")
MIGRATION_LOCK_KEY = 0x70706163  # "ppac": not the index's key, both may share a database
CHECK_SECONDS = 1.0

Grants = tuple[dict[str, str], dict[str, str]]


TOKEN_PREFIX = "ppc"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Snapshot:
    generation: int
    tokens: dict[str, TokenInfo]
    token_secrets: dict[str, str]  # token id -> sha256 of the secret
    hashes: dict[str, str]
    admins: frozenset[str]  # user names with the admin flag
    admin_groups: frozenset[str]
    groups_of: dict[str, frozenset[str]]
    members: dict[str, frozenset[str]]
    grants: dict[str, Grants]


class SQLAccess(EditableAccess):
    """Access data in SQL tables, editable at run time."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        admins=(),
        pool_size: int = 5,
        max_overflow: int = 10,
        migrate: bool = True,
        allow_register: bool = False,
        **policy,
    ):
        """``url``: a SQLAlchemy URL; ``schema``: a PostgreSQL schema for the tables;
        ``admins``: extra admin user or group names from the ini (``auth.admins``);
        ``policy`` goes to AccessBackend."""
        super().__init__(**policy)
        self.url = sa.engine.make_url(url)
        self.schema = schema
        self.extra_admins = frozenset(admins)
        # pypi.allow_register: whether sign-ups are taken until an admin switches it.
        self.allow_register_default = bool(allow_register)
        self.engine = sqldb.create_engine(
            self.url, schema=schema, pool_size=pool_size, max_overflow=max_overflow
        )
        self._lock = threading.Lock()
        self._typical: tuple = (None, None)  # (snapshot, its typical hash) for unknown users
        self._snapshot: _Snapshot | None = None
        self._checked_at = float("-inf")
        if migrate:
            sqldb.migrate(self.engine, script_location=MIGRATIONS, schema=schema, lock_key=MIGRATION_LOCK_KEY)
            # A pypicloud 1.x database: its users, groups and grants, copied once.
            v1.import_1x_tables(self.engine, schema)

    @classmethod
    def from_settings(cls, settings) -> SQLAccess:
        # One database for everything unless told otherwise: the index's
        # URL (or its default SQLite file), in the index's schema.
        key, schema = sqldb.shared_database_key(settings)
        url = sqldb.settings_url(settings, key, "pypicloud.sqlite")
        ignored = sorted(k for k in settings if k.startswith(("user.", "group.", "package.")))
        if ignored:
            LOG.warning(
                "pypi.auth = sql keeps users, groups and grants in the database; "
                "the ini's %s are ignored (move them with ppc-export / ppc-import)",
                ", ".join(ignored[:5]) + (" ..." if len(ignored) > 5 else ""),
            )
        try:
            return cls(
                url,
                schema=schema,
                admins=settings.get_list("auth.admins"),
                pool_size=settings.get_int("auth.db.pool_size", 5, minimum=1),
                max_overflow=settings.get_int("auth.db.max_overflow", 10, minimum=0),
                allow_register=settings.get_bool("pypi.allow_register"),
                **cls.base_kwargs_from_settings(settings),
            )
        except (OperationalError, InterfaceError) as exc:
            raise ConfigError(key, sqldb.masked(url), f"cannot open the database: {exc.orig}") from None

    # Reading ------------------------------------------------------------
    def _run(self, fn: Callable[[Connection], object]):
        try:
            with self.engine.begin() as conn:
                return fn(conn)
        except (OperationalError, InterfaceError) as exc:
            raise BackendUnavailable(f"The access database is unavailable: {exc.orig}") from None

    @staticmethod
    def _generation(conn: Connection) -> int:
        return conn.execute(
            sa.select(access_counters.c.value).where(access_counters.c.name == "generation")
        ).scalar_one()

    def _load(self, conn: Connection) -> _Snapshot:
        generation = self._generation(conn)
        hashes, admins = {}, set()
        for row in conn.execute(sa.select(users)):
            hashes[row.username] = row.password_hash
            if row.admin:
                admins.add(row.username)
        admin_groups = {r.name for r in conn.execute(sa.select(groups.c.name).where(groups.c.admin))}
        members: dict[str, set[str]] = {r.name: set() for r in conn.execute(sa.select(groups.c.name))}
        groups_of: dict[str, set[str]] = {}
        for row in conn.execute(sa.select(memberships)):
            members.setdefault(row.group_name, set()).add(row.username)
            groups_of.setdefault(row.username, set()).add(row.group_name)
        grants: dict[str, Grants] = {}
        for row in conn.execute(sa.select(user_grants)):
            grants.setdefault(row.project, ({}, {}))[0][row.username] = row.permission
        for row in conn.execute(sa.select(group_grants)):
            grants.setdefault(row.project, ({}, {}))[1][row.group_name] = row.permission
        tokens_: dict[str, TokenInfo] = {}
        secrets_: dict[str, str] = {}
        for row in conn.execute(sa.select(tokens).order_by(tokens.c.created_at)):
            tokens_[row.token_id] = _token_info(row)
            secrets_[row.token_id] = row.secret_sha256
        return _Snapshot(
            generation,
            tokens_,
            secrets_,
            hashes,
            frozenset(admins),
            frozenset(admin_groups),
            {u: frozenset(g) for u, g in groups_of.items()},
            {g: frozenset(m) for g, m in members.items()},
            grants,
        )

    def _current(self) -> _Snapshot:
        """The snapshot, re-read when the counter moved (checked at most once a second)."""
        snapshot = self._snapshot
        now = time.monotonic()
        if snapshot is not None and now - self._checked_at < CHECK_SECONDS:
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if snapshot is not None and now - self._checked_at < CHECK_SECONDS:
                return snapshot  # another thread refreshed it meanwhile

            def refresh(conn):
                if snapshot is not None and self._generation(conn) == snapshot.generation:
                    return snapshot
                return self._load(conn)

            fresh = self._run(refresh)
            if snapshot is not None and fresh is not snapshot:
                self.forget_credentials()  # passwords or users may have changed
            self._snapshot, self._checked_at = fresh, now
            return fresh

    def _verify(self, username: str, password: str) -> bool:
        snapshot = self._current()
        hashed = snapshot.hashes.get(username)
        if hashed is None:
            if self._typical[0] is not snapshot:
                self._typical = (snapshot, typical_hash(snapshot.hashes.values()))
            return verify_dummy(password, self._typical[1])
        if not verify_password(password, hashed):
            return False
        if needs_rehash(hashed):
            # An old format (pypicloud 1.x's sha512_crypt, other argon2 costs):
            # upgrade it now that the password is known.
            try:
                self.set_password_hash(username, hash_password(password))
                LOG.info("password hash of %r upgraded to argon2id", username)
            except Exception as exc:  # a read-only database must not break the login
                LOG.warning("could not upgrade the password hash of %r: %s", username, exc)
        return True

    def authenticate(self, username: str, password: str):
        # Refresh first: a snapshot change clears the login cache, and that
        # must happen before the cache is asked.
        self._current()
        return super().authenticate(username, password)

    def authenticate_token(self, token: str) -> Identity | None:
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not token_id or not secret:
            return None
        snapshot = self._current()
        expected = snapshot.token_secrets.get(token_id)
        # Compare digests in constant time whether or not the id exists.
        if not hmac.compare_digest(expected or "-" * 64, _sha256(secret)) or expected is None:
            return None
        info = snapshot.tokens[token_id]
        if info.expires_at is not None and info.expires_at <= utcnow():
            return None
        if info.username not in snapshot.hashes:
            return None
        owner = self.identity(info.username)
        scope = TokenScope(
            token_id,
            frozenset(info.projects) if info.projects is not None else None,
            upload=info.upload,
            owner_admin=owner.is_admin,
        )
        # Admin-only actions take a password: the token's identity is no admin.
        return Identity(info.username, owner.groups, is_admin=False, token=scope)

    def groups_of(self, username: str) -> set[str]:
        return set(self._current().groups_of.get(username, ()))

    def is_admin(self, username: str) -> bool:
        snapshot = self._current()
        if username in snapshot.admins or username in self.extra_admins:
            return True
        mine = snapshot.groups_of.get(username, frozenset())
        return bool(mine & snapshot.admin_groups or mine & self.extra_admins)

    def user_exists(self, username: str) -> bool:
        return username in self._current().hashes

    def project_grants(self, project: str) -> Grants:
        users_, groups_ = self._current().grants.get(project, ({}, {}))
        return dict(users_), dict(groups_)

    def data_version(self) -> int:
        return self._current().generation

    def password_fingerprint(self, username: str) -> str | None:
        hashed = self._current().hashes.get(username)
        return hashlib.sha256(hashed.encode()).hexdigest()[:16] if hashed else None

    def anonymous_may_write(self) -> bool:
        return "everyone" in self.default_write or any(
            groups.get("everyone") == "rw" for _, groups in self._current().grants.values()
        )

    def check_health(self) -> None:
        self._run(lambda c: c.execute(sa.text("SELECT 1")).scalar_one())

    def export_data(self) -> AccessData:
        snapshot = self._current()
        data = AccessData()
        for name, hashed in snapshot.hashes.items():
            data.users[name] = {"password_hash": hashed, "admin": name in snapshot.admins}
        for name, members in snapshot.members.items():
            data.groups[name] = {"members": sorted(members), "admin": name in snapshot.admin_groups}
        for project, (users_, groups_) in snapshot.grants.items():
            data.packages[project] = {"users": dict(users_), "groups": dict(groups_)}
        return data

    # Writing ------------------------------------------------------------
    def _write(self, fn: Callable[[Connection], None]) -> None:
        """Run one change and bump the counter in the same transaction."""

        def work(conn):
            conn.execute(
                access_counters.update()
                .where(access_counters.c.name == "generation")
                .values(value=access_counters.c.value + 1)
            )
            fn(conn)

        try:
            self._run(work)
        except IntegrityError as exc:
            raise AccessConflict(f"Conflicting change: {exc.orig}") from None
        self._checked_at = float("-inf")  # this process sees its own change at once

    @staticmethod
    def _require(conn: Connection, table, column, name: str, kind: str) -> None:
        if conn.execute(sa.select(column).where(column == name)).first() is None:
            raise AccessConflict(f"No such {kind}: {name!r}")

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
            "secret_sha256": _sha256(secret),
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
        return f"{TOKEN_PREFIX}_{token_id}_{secret}", _token_info(SimpleNamespace(**row))

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

    def pending_users(self) -> list[str]:
        """Sign-ups waiting for an admin (here or on pypicloud 1.x); they cannot log in."""
        return sorted(self.pending_user_hashes())

    # Self-registration ------------------------------------------------------
    supports_registration = True

    def registration_flag(self) -> bool | None:
        value = self._run(
            lambda c: c.execute(
                sa.select(access_counters.c.value).where(access_counters.c.name == REGISTRATION_ROW)
            ).scalar_one_or_none()
        )
        return None if value is None else bool(value)

    def set_registration_flag(self, allow: bool) -> None:
        def work(conn):
            # A row beside the generation counter: no migration, and one transaction.
            if not conn.execute(
                access_counters.update()
                .where(access_counters.c.name == REGISTRATION_ROW)
                .values(value=int(allow))
            ).rowcount:
                conn.execute(access_counters.insert().values(name=REGISTRATION_ROW, value=int(allow)))

        self._write(work)

    def pending_user_hashes(self) -> dict[str, str]:
        rows = self._run(lambda c: c.execute(sa.select(pending_users)).all())
        return {row.username: row.password_hash for row in rows}

    def add_pending_user(self, username: str, password_hash: str, *, limit: int) -> None:
        check_name("user", username)
        check_hash(password_hash, username)

        def work(conn):
            if conn.execute(sa.select(users.c.username).where(users.c.username == username)).first():
                raise AccessConflict(f"User {username!r} exists already")
            if conn.execute(
                sa.select(pending_users.c.username).where(pending_users.c.username == username)
            ).first():
                raise AccessConflict(f"User {username!r} has signed up already and waits for an admin")
            waiting = conn.execute(sa.select(sa.func.count()).select_from(pending_users)).scalar_one()
            if waiting >= limit:
                raise PendingQueueFull(
                    f"{waiting} sign-ups are waiting for an admin already; try again later"
                )
            conn.execute(pending_users.insert().values(username=username, password_hash=password_hash))

        self._write(work)

    def reject_pending_user(self, username: str) -> None:
        def work(conn):
            if not conn.execute(pending_users.delete().where(pending_users.c.username == username)).rowcount:
                raise AccessConflict(f"No such pending user: {username!r}")

        self._write(work)

    def approve_user(self, username: str) -> None:
        """Turn a pending 1.x sign-up into a user (not an admin), as 1.x's approve did."""

        def work(conn):
            row = conn.execute(sa.select(pending_users).where(pending_users.c.username == username)).first()
            if row is None:
                raise AccessConflict(f"No such pending user: {username!r}")
            if conn.execute(sa.select(users.c.username).where(users.c.username == username)).first():
                raise AccessConflict(
                    f"User {username!r} exists already (an admin created it meanwhile); reject the sign-up"
                )
            conn.execute(pending_users.delete().where(pending_users.c.username == username))
            conn.execute(
                users.insert().values(username=username, password_hash=row.password_hash, admin=False)
            )

        self._write(work)

    def close(self) -> None:
        self.engine.dispose()


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
