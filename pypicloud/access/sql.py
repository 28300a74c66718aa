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

The class is assembled from parts: ``sql_base.py`` (engine, transactions, the
snapshot cache), ``sql_snapshot.py`` (reading the tables into a snapshot),
``sql_writes.py`` (changes) and ``sql_registration.py`` (sign-ups); this module
keeps the reads and ``from_settings``, and every name it exported before.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import sqlalchemy as sa
from sqlalchemy.exc import InterfaceError, OperationalError

from .. import sqldb
from ..errors import ConfigError
from ..models import Identity, TokenScope, utcnow
from .editable import AccessData
from .passwords import hash_password, needs_rehash, typical_hash, verify_dummy, verify_password
from .sql_base import CHECK_SECONDS, MIGRATION_LOCK_KEY, MIGRATIONS, SQLAccessBase
from .sql_registration import REGISTRATION_ROW, SQLRegistration
from .sql_snapshot import Grants, Snapshot, sha256_hex, token_info
from .sql_writes import TOKEN_PREFIX, SQLAccessWrites

# The names this module held before it was split (tests and tools import them).
__all__ = [
    "CHECK_SECONDS",
    "MIGRATIONS",
    "MIGRATION_LOCK_KEY",
    "REGISTRATION_ROW",
    "TOKEN_PREFIX",
    "Grants",
    "SQLAccess",
    "SQLAccessBase",
]
_Snapshot = Snapshot
_token_info = token_info
_sha256 = sha256_hex

LOG = logging.getLogger(__name__)


class SQLAccess(SQLAccessWrites, SQLRegistration):
    """Access data in SQL tables, editable at run time."""

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
        if not hmac.compare_digest(expected or "-" * 64, sha256_hex(secret)) or expected is None:
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
