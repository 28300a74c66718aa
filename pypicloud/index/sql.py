"""The SQL metadata index on SQLAlchemy 2: SQLite by default, PostgreSQL for shared use."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from .. import sqldb
from ..errors import BackendUnavailable, ConfigError
from ..models import FileRecord, ProjectSummary
from .base import MetadataIndex
from .listeners import PG_CONNECTION_OPTIONS, PostgresListener, pg_channel
from .push import PushedCounter
from .schema import (
    _record,
    _row,
    files,
    projects,
    signed_urls,
)
from .sharedcounter import SharedCounter
from .sql_events import SQLEventLog
from .sql_raw_writes import SQLRawWrites
from .sql_reads import RawSelect
from .sql_state import REPAIR_LOCK_KEY, SQLState
from .sql_statements import FILENAME, PROJECT
from .sql_upload import SQLUploads
from .sql_webhooks import SQLWebhookQueue

# The names this module held before it was split (tests and tools import them).
__all__ = ["REPAIR_LOCK_KEY", "SQLIndex"]

# How often a process checks the shared-memory counter against the database.
SHARED_COUNTER_CHECK_SECONDS = 1.0

# Any constant works; it only has to be the same in every pypicloud process.
MIGRATION_LOCK_KEY = 0x70707963  # "ppyc"
_DIALECT_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite", "mysql": "MySQL", "mariadb": "MariaDB"}
MIGRATIONS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")


_T = TypeVar("_T")


@dataclass(frozen=True)
class _RawReads:
    """The file-row reads the page and download paths make (``sql_reads``)."""

    get: RawSelect
    files: RawSelect


class _Unchanged(Exception):
    """Raised in a write transaction that changed nothing: rolls it back, counter included."""

    def __init__(self, result):
        super().__init__()
        self.result = result


class SQLIndex(SQLState, SQLUploads, SQLRawWrites, SQLEventLog, SQLWebhookQueue, MetadataIndex):
    """Metadata index in a SQL database (``pypi.db = sql``)."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 10,
        max_overflow: int = 20,
        migrate: bool = True,
        listen: bool = True,
    ):
        self.url = sa.engine.make_url(url)
        self.schema = schema
        self._local = threading.local()
        # Projects known to be local (a mark is never undone): no upload marks them again.
        self._known_local: set[str] = set()
        table = f'"{schema}".ppc_counters' if schema else "ppc_counters"
        self._generation_sql = f"SELECT value FROM {table} WHERE name = 'generation'"
        self.engine: Engine = sqldb.create_engine(
            self.url, schema=schema, pool_size=pool_size, max_overflow=max_overflow
        )
        # SQLite files (one host) publish their change counter in shared memory.
        self._checked_at = float("-inf")
        database = sqldb.sqlite_file(self.url)
        self._shared: SharedCounter | None = SharedCounter.beside(database) if database else None
        dialect = self.engine.dialect.name
        # PostgreSQL pushes its counter to every process (LISTEN/NOTIFY).
        self._channel = pg_channel(schema) if dialect == "postgresql" else None
        self._push: PushedCounter | None = None
        if listen and self._channel and self.engine.dialect.driver == "psycopg":
            self._push = PostgresListener(
                (self.url.render_as_string(hide_password=True), schema),
                self._listener_connection,
                self._channel,
                self._generation_sql,
            )
        self._unavailable = f"The metadata index ({_DIALECT_NAMES.get(dialect, dialect)}) is unavailable"
        if migrate:
            self.migrate()

    @classmethod
    def from_settings(cls, settings) -> SQLIndex:
        url = sqldb.settings_url(settings, "db.url", "pypicloud.sqlite")
        try:
            return cls(
                url,
                schema=settings.get_str("db.schema"),
                pool_size=settings.get_int("db.pool_size", 10, minimum=1),
                max_overflow=settings.get_int("db.max_overflow", 20, minimum=0),
                listen=settings.get_bool("db.listen", True),
            )
        except (OperationalError, InterfaceError) as exc:
            raise ConfigError("db.url", sqldb.masked(url), f"cannot open the database: {exc.orig}") from None

    def migrate(self) -> None:
        """Bring the schema to the newest alembic revision (serialised across processes)."""
        sqldb.migrate(
            self.engine, script_location=MIGRATIONS, schema=self.schema, lock_key=MIGRATION_LOCK_KEY
        )

    # Helpers ------------------------------------------------------------
    def _run(self, fn):
        try:
            with self.engine.begin() as conn:
                try:
                    result = fn(conn)
                finally:
                    bumped = conn.info.pop("ppc_generation", None)
        except _Unchanged as unchanged:
            return unchanged.result
        except (OperationalError, InterfaceError) as exc:
            raise BackendUnavailable(f"{self._unavailable}: {exc.orig}") from None
        # Only now, after the commit: a reader that sees the new counter
        # must also see the new rows.
        self._publish(bumped)
        return result

    def _publish(self, bumped: int | None) -> None:
        """Tell the other processes the counter a write just committed (None: it did not bump)."""
        if bumped is None:
            return
        if self._shared is not None:
            self._shared.publish(bumped)
        if self._push is not None:
            self._push.announce(bumped)

    def _listener_connection(self):
        """A psycopg connection of its own for LISTEN (autocommit, keepalives)."""
        import psycopg

        _, params = self.engine.dialect.create_connect_args(self.engine.url)
        return psycopg.connect(**({**PG_CONNECTION_OPTIONS, **params}), autocommit=True)

    # Contract -----------------------------------------------------------
    def add(self, record: FileRecord) -> None:
        self._run(lambda conn: self._put_record(conn, record))

    def get(self, filename: str) -> FileRecord | None:
        raw = self._raw_reads()
        if raw is not None:
            found = self._on_raw_connection(lambda conn: raw.get.records(conn, {FILENAME: filename}))
            return found[0] if found else None
        query = self._hot().get
        row = self._run(lambda c: c.execute(query, {FILENAME: filename}).first())
        return _record(row) if row is not None else None

    def remove(self, filename: str) -> bool:
        def work(conn):
            self._bump(conn)
            old = conn.execute(sa.select(files.c.project).where(files.c.filename == filename)).first()
            if old is None:
                raise _Unchanged(False)  # the counter must not move for nothing
            conn.execute(files.delete().where(files.c.filename == filename))
            self._refresh_project(conn, old.project)
            return True

        return self._run(work)

    def files(self, project: str) -> list[FileRecord]:
        raw = self._raw_reads()
        if raw is not None:
            return self._on_raw_connection(lambda conn: raw.files.records(conn, {PROJECT: project}))
        query = self._hot().files
        rows = self._run(lambda c: c.execute(query, {PROJECT: project}).all())
        return [_record(r) for r in rows]

    def projects(self) -> list[ProjectSummary]:
        rows = self._run(lambda c: c.execute(sa.select(projects).order_by(projects.c.project)).all())
        return [
            ProjectSummary(project=r.project, name=r.name, summary=r.summary, last_modified=r.last_modified)
            for r in rows
        ]

    def set_yanked(self, filename: str, yanked: bool, reason: str | None = None) -> bool:
        def work(conn):
            self._bump(conn)
            result = conn.execute(
                files.update()
                .where(files.c.filename == filename)
                .values(yanked=yanked, yanked_reason=reason if yanked else None)
            )
            if not result.rowcount:
                raise _Unchanged(False)  # no such file: the counter must not move
            return True

        return self._run(work)

    def generation(self) -> int:
        """The change counter, read on every index request.

        A SQLite file's counter comes from shared memory (``sharedcounter``),
        checked against the database at most once a second; PostgreSQL's from
        memory kept current by a listener (``push``) while it is connected;
        other databases are asked every time.
        """
        push = self._push
        if push is not None:
            value = push.current()
            if value is not None:
                return value
        shared = self._shared
        if shared is not None:
            now = time.monotonic()
            if now - self._checked_at < SHARED_COUNTER_CHECK_SECONDS:
                value = shared.read()
                if value is not None:
                    return value
            value = shared.verify(self._query_generation)
            self._checked_at = now
            return value
        return self._query_generation()

    def _query_generation(self) -> int:
        """The change counter, from the database.

        This is the hot path of every page, so it skips SQLAlchemy: each thread
        keeps one plain DB-API connection in autocommit mode (outside the pool)
        and runs one prepared statement on it, which always sees the latest
        committed value.
        """
        return self._on_raw_connection(self._read_generation)

    def _on_raw_connection(self, read: Callable[[Any], _T]) -> _T:
        """``read(conn)`` on this thread's plain DB-API connection (autocommit, outside the
        pool), made on first use and again after a fork."""
        conn, fresh = self._thread_connection()
        try:
            return read(conn)
        except self.engine.dialect.loaded_dbapi.Error as exc:
            self._drop_generation_connection(conn)
            if fresh:
                raise BackendUnavailable(f"{self._unavailable}: {exc}") from None
        # A kept connection can have died while this thread was idle (a
        # database restart or failover): one retry on a new connection, so the
        # first request after an outage does not fail for nothing.
        conn = self._generation_connection()
        try:
            return read(conn)
        except self.engine.dialect.loaded_dbapi.Error as exc:
            self._drop_generation_connection(conn)
            raise BackendUnavailable(f"{self._unavailable}: {exc}") from None

    def _thread_connection(self) -> tuple[Any, bool]:
        """This thread's plain connection and whether it was just made (first use, or a fork)."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():
            return self._generation_connection(), True
        return conn, False

    def _raw_reads(self) -> _RawReads | None:
        """The file-row reads on the plain connection, on SQLite only (see ``sql_reads``)."""
        if self.engine.dialect.name != "sqlite":
            return None
        reads = self.__dict__.get("_raw_read_statements")
        if reads is None:
            hot = self._hot()
            reads = _RawReads(
                RawSelect(hot.get, self.engine.dialect), RawSelect(hot.files, self.engine.dialect)
            )
            self.__dict__["_raw_read_statements"] = reads
        return reads

    def _generation_connection(self):
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            raw = self.engine.raw_connection()
        except (OperationalError, InterfaceError) as exc:
            raise BackendUnavailable(f"{self._unavailable}: {exc.orig}") from None
        except dbapi_error as exc:  # the pool can pass the driver's own error on
            raise BackendUnavailable(f"{self._unavailable}: {exc}") from None
        conn = raw.driver_connection
        raw.detach()  # ours for good; the pool does not count it
        if self.engine.dialect.name == "sqlite":
            conn.isolation_level = None
        elif callable(getattr(conn, "autocommit", None)):
            conn.autocommit(True)  # PyMySQL: a method, not a property
        else:
            conn.autocommit = True
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _read_generation(self, conn) -> int:
        cursor = conn.cursor()
        try:
            cursor.execute(self._generation_sql)
            return cursor.fetchone()[0]
        finally:
            cursor.close()

    def _drop_generation_connection(self, conn) -> None:
        self._local.conn = None
        try:
            conn.close()
        except self.engine.dialect.loaded_dbapi.Error:
            pass

    def all_records(self) -> Iterable[FileRecord]:
        rows = self._run(lambda c: c.execute(sa.select(files).order_by(files.c.filename)).all())
        return [_record(r) for r in rows]

    def replace_all(self, records: Iterable[FileRecord]) -> None:
        records = list(records)

        def work(conn):
            self._bump(conn)
            conn.execute(files.delete())
            conn.execute(projects.delete())
            conn.execute(signed_urls.delete())
            if records:
                conn.execute(files.insert(), [_row(r) for r in records])
            latest: dict[str, FileRecord] = {}
            for r in records:
                best = latest.get(r.project)
                if best is None or (r.upload_time, r.filename) > (best.upload_time, best.filename):
                    latest[r.project] = r
            if latest:
                conn.execute(
                    projects.insert(),
                    [
                        {
                            "project": r.project,
                            "name": r.name,
                            "summary": r.summary,
                            "last_modified": r.upload_time,
                        }
                        for r in latest.values()
                    ],
                )

        self._run(work)

    def count(self) -> int:
        return self._run(lambda c: c.execute(sa.select(sa.func.count()).select_from(files)).scalar_one())

    def check_health(self) -> None:
        self._run(lambda c: c.execute(sa.text("SELECT 1")).scalar_one())

    def close(self) -> None:
        push, self._push = self._push, None
        if push is not None:
            push.close()
        shared, self._shared = self._shared, None
        if shared is not None:
            shared.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()
        self.engine.dispose()
