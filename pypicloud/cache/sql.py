"""The SQL metadata index on SQLAlchemy 2: SQLite by default, PostgreSQL for shared use."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, InterfaceError

from ..errors import BackendUnavailable, ConfigError
from ..models import FileRecord, ProjectSummary
from .base import MetadataIndex
from .schema import counters, files, projects, signed_urls
from .sharedcounter import SharedCounter

# How often a process checks the shared-memory counter against the database.
SHARED_COUNTER_CHECK_SECONDS = 1.0

# Any constant works; it only has to be the same in every pypicloud process.
MIGRATION_LOCK_KEY = 0x70707963  # "ppyc"
MIGRATIONS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")

_COLUMNS = ("project", "name", "version", "filename", "size", "sha256", "md5",
            "requires_python", "summary", "upload_time", "uploader", "yanked",
            "yanked_reason", "metadata_sha256")


def _row(record: FileRecord) -> dict:
    row = {c: getattr(record, c) for c in _COLUMNS}
    row["storage_key"] = record.key
    return row


def _record(row) -> FileRecord:
    data = {c: row._mapping[c] for c in _COLUMNS}
    return FileRecord(key=row._mapping["storage_key"], **data)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers proceed while one writer commits; busy_timeout makes a
    # second writer wait instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class _Unchanged(Exception):
    """Raised in a write transaction that changed nothing: rolls it back, counter included."""

    def __init__(self, result):
        super().__init__()
        self.result = result


class SQLIndex(MetadataIndex):
    """Metadata index in a SQL database (``pypi.db = sql``)."""

    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 10,
                 max_overflow: int = 20, migrate: bool = True):
        self.url = sa.engine.make_url(url)
        kwargs: dict = {"pool_pre_ping": True}
        if self.url.get_backend_name() == "sqlite":
            if self.url.database and self.url.database != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(self.url.database)), exist_ok=True)
            kwargs = {"connect_args": {"timeout": 30, "check_same_thread": False}}
        # A pool smaller than the server's thread count opens and closes the
        # overflow connections again and again (each one re-running the PRAGMAs).
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
        if schema:
            kwargs["execution_options"] = {"schema_translate_map": {None: schema}}
        self.schema = schema
        self._local = threading.local()
        table = f'"{schema}".ppc_counters' if schema else "ppc_counters"
        self._generation_sql = f"SELECT value FROM {table} WHERE name = 'generation'"
        self.engine: Engine = sa.create_engine(self.url, **kwargs)
        # SQLite files (one host) publish their change counter in shared memory.
        self._shared: SharedCounter | None = None
        self._checked_at = float("-inf")
        database = self.url.database
        if self.url.get_backend_name() == "sqlite" and database and database != ":memory:" \
                and not database.startswith("file:"):
            self._shared = SharedCounter.beside(database)
        if self.url.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # A forked worker (gunicorn --preload) must not reuse the parent's
        # connections: drop them from the child's pool without closing them.
        engine = self.engine
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
        if migrate:
            self.migrate()

    @classmethod
    def from_settings(cls, settings) -> "SQLIndex":
        url = settings.get_str("db.url") or f"sqlite:///{settings.path('pypicloud.sqlite')}"
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            # A relative SQLite path is relative to the ini file, not the cwd.
            url = "sqlite:///" + settings.path(url[len("sqlite:///"):])
        try:
            sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            raise ConfigError("db.url", url, "a SQLAlchemy database URL") from None
        try:
            return cls(url, schema=settings.get_str("db.schema"), pool_size=settings.get_int("db.pool_size", 10, minimum=1),
                       max_overflow=settings.get_int("db.max_overflow", 20, minimum=0))
        except (OperationalError, InterfaceError) as exc:
            raise ConfigError("db.url", url, f"cannot open the database: {exc.orig}") from None

    @contextlib.contextmanager
    def _migration_lock(self):
        """Serialise migrations of processes that start at the same moment.

        Several processes (gunicorn workers, a scaled-out deployment) run
        ``migrate`` at start-up; without this, two can both see an empty
        database and collide creating the same tables. SQLite files get an
        flock beside them; server databases take a transaction-scoped advisory
        lock inside the migration transaction (see ``migrate``).
        """
        database = self.url.database
        if self.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
            yield
            return
        fd = os.open(os.path.abspath(database) + ".migrate-lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def migrate(self) -> None:
        """Bring the schema to the newest alembic revision."""
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        with self._migration_lock(), self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": MIGRATION_LOCK_KEY})
            if self.schema:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                conn.execute(sa.text(f'SET search_path TO "{self.schema}"'))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

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
            raise BackendUnavailable(f"The metadata index is unavailable: {exc.orig}") from None
        if bumped is not None and self._shared is not None:
            # Only now, after the commit: a reader that sees the new counter
            # must also see the new rows.
            self._shared.publish(bumped)
        return result

    @staticmethod
    def _bump(conn: Connection) -> None:
        # Every write transaction starts here: on PostgreSQL the row lock taken
        # by this UPDATE serialises writers, so concurrent adds cannot collide.
        conn.execute(counters.update().where(counters.c.name == "generation")
                     .values(value=counters.c.value + 1))
        conn.info["ppc_generation"] = conn.execute(
            sa.select(counters.c.value).where(counters.c.name == "generation")).scalar_one()

    @staticmethod
    def _refresh_project(conn: Connection, project: str) -> None:
        """Recompute one project's summary row from its files."""
        latest = conn.execute(
            sa.select(files.c.name, files.c.summary, files.c.upload_time)
            .where(files.c.project == project)
            .order_by(files.c.upload_time.desc(), files.c.filename.desc()).limit(1)
        ).first()
        conn.execute(projects.delete().where(projects.c.project == project))
        if latest is not None:
            conn.execute(projects.insert().values(
                project=project, name=latest.name, summary=latest.summary,
                last_modified=latest.upload_time))

    # Contract -----------------------------------------------------------
    def add(self, record: FileRecord) -> None:
        def work(conn):
            self._bump(conn)
            old = conn.execute(sa.select(files.c.project)
                               .where(files.c.filename == record.filename)).first()
            conn.execute(files.delete().where(files.c.filename == record.filename))
            conn.execute(files.insert().values(**_row(record)))
            if old is not None and old.project != record.project:
                self._refresh_project(conn, old.project)
            self._refresh_project(conn, record.project)
        self._run(work)

    def get(self, filename: str) -> FileRecord | None:
        row = self._run(lambda c: c.execute(
            sa.select(files).where(files.c.filename == filename)).first())
        return _record(row) if row is not None else None

    def remove(self, filename: str) -> bool:
        def work(conn):
            self._bump(conn)
            old = conn.execute(sa.select(files.c.project)
                               .where(files.c.filename == filename)).first()
            if old is None:
                raise _Unchanged(False)  # the counter must not move for nothing
            conn.execute(files.delete().where(files.c.filename == filename))
            self._refresh_project(conn, old.project)
            return True
        return self._run(work)

    def files(self, project: str) -> list[FileRecord]:
        rows = self._run(lambda c: c.execute(
            sa.select(files).where(files.c.project == project)
            .order_by(files.c.filename)).all())
        return [_record(r) for r in rows]

    def projects(self) -> list[ProjectSummary]:
        rows = self._run(lambda c: c.execute(
            sa.select(projects).order_by(projects.c.project)).all())
        return [ProjectSummary(project=r.project, name=r.name, summary=r.summary,
                               last_modified=r.last_modified) for r in rows]

    def set_yanked(self, filename: str, yanked: bool, reason: str | None = None) -> bool:
        def work(conn):
            self._bump(conn)
            result = conn.execute(files.update().where(files.c.filename == filename)
                                  .values(yanked=yanked, yanked_reason=reason if yanked else None))
            if not result.rowcount:
                raise _Unchanged(False)  # no such file: the counter must not move
            return True
        return self._run(work)

    def generation(self) -> int:
        """The change counter, read on every index request.

        A SQLite file's counter comes from shared memory (``sharedcounter``),
        checked against the database at most once a second; other databases
        are asked every time.
        """
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
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():
            try:
                raw = self.engine.raw_connection()
            except (OperationalError, InterfaceError) as exc:
                raise BackendUnavailable(
                    f"The metadata index is unavailable: {exc.orig}") from None
            conn = raw.driver_connection
            raw.detach()  # ours for good; the pool does not count it
            if self.engine.dialect.name == "sqlite":
                conn.isolation_level = None
            else:
                conn.autocommit = True
            local.conn, local.pid = conn, os.getpid()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(self._generation_sql)
                return cursor.fetchone()[0]
            finally:
                cursor.close()
        except self.engine.dialect.loaded_dbapi.Error as exc:
            local.conn = None
            try:
                conn.close()
            except self.engine.dialect.loaded_dbapi.Error:
                pass
            raise BackendUnavailable(f"The metadata index is unavailable: {exc}") from None

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
                conn.execute(projects.insert(), [
                    {"project": r.project, "name": r.name, "summary": r.summary,
                     "last_modified": r.upload_time} for r in latest.values()])
        self._run(work)

    def count(self) -> int:
        return self._run(lambda c: c.execute(sa.select(sa.func.count()).select_from(files))
                         .scalar_one())

    def get_url(self, key: str) -> tuple[str, datetime] | None:
        row = self._run(lambda c: c.execute(
            sa.select(signed_urls.c.url, signed_urls.c.expires_at)
            .where(signed_urls.c.storage_key == key)).first())
        return (row.url, row.expires_at) if row is not None else None

    def set_url(self, key: str, url: str, expires_at: datetime) -> None:
        def work(conn):
            conn.execute(signed_urls.delete().where(signed_urls.c.storage_key == key))
            conn.execute(signed_urls.insert().values(storage_key=key, url=url,
                                                     expires_at=expires_at))
        self._run(work)

    def check_health(self) -> None:
        self._run(lambda c: c.execute(sa.text("SELECT 1")).scalar_one())

    def close(self) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            shared.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()
        self.engine.dispose()
