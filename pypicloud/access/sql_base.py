"""The engine, transactions and snapshot cache of the SQL access backend.

:class:`SQLAccessBase` is what every part of :class:`pypicloud.access.sql.SQLAccess`
stands on: the database engine (migrated at start-up), ``_run`` (one transaction,
an outage as :class:`BackendUnavailable`), ``_write`` (one change plus a bump of
the access change counter, in one transaction) and ``_current`` (the snapshot,
re-read when the counter moved; checked at most once every ``CHECK_SECONDS``).
The reads live in ``sql.py``, the writes in ``sql_writes.py``, self-registration
in ``sql_registration.py``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from .. import sqldb
from ..errors import BackendUnavailable
from . import v1
from .editable import AccessConflict, EditableAccess
from .schema import access_counters
from .sql_snapshot import Snapshot, load_snapshot, read_generation

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")
MIGRATION_LOCK_KEY = 0x70706163  # "ppac": not the index's key, both may share a database
CHECK_SECONDS = 1.0


class SQLAccessBase(EditableAccess):
    """The engine, the transaction helpers and the snapshot of the access tables."""

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
        self._snapshot: Snapshot | None = None
        self._checked_at = float("-inf")
        if migrate:
            sqldb.migrate(self.engine, script_location=MIGRATIONS, schema=schema, lock_key=MIGRATION_LOCK_KEY)
            # A pypicloud 1.x database: its users, groups and grants, copied once.
            v1.import_1x_tables(self.engine, schema)

    # Transactions --------------------------------------------------------
    def _run(self, fn: Callable[[Connection], object]):
        try:
            with self.engine.begin() as conn:
                return fn(conn)
        except (OperationalError, InterfaceError) as exc:
            raise BackendUnavailable(f"The access database is unavailable: {exc.orig}") from None

    @staticmethod
    def _generation(conn: Connection) -> int:
        return read_generation(conn)

    def _load(self, conn: Connection) -> Snapshot:
        return load_snapshot(conn)

    def _current(self) -> Snapshot:
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

    def close(self) -> None:
        self.engine.dispose()
