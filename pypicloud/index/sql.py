"""The SQL metadata index on SQLAlchemy 2: SQLite by default, PostgreSQL for shared use."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from .. import sqldb
from ..errors import BackendUnavailable, ConfigError
from ..models import FileRecord, ProjectSummary, utcnow
from .base import Intent, MetadataIndex
from .listeners import PG_CONNECTION_OPTIONS, PostgresListener, pg_channel
from .push import PushedCounter
from .schema import (
    MYSQL_MAX_KEY_CHARS,
    counters,
    files,
    intents,
    local_projects,
    projects,
    shared_counters,
    signed_urls,
)
from .sharedcounter import SharedCounter
from .sql_events import SQLEventLog
from .sql_webhooks import SQLWebhookQueue

# How often a process checks the shared-memory counter against the database.
SHARED_COUNTER_CHECK_SECONDS = 1.0

# Any constant works; it only has to be the same in every pypicloud process.
MIGRATION_LOCK_KEY = 0x70707963  # "ppyc"
REPAIR_LOCK_KEY = 0x70707972  # "ppyr": one repairing process at a time
_DIALECT_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite", "mysql": "MySQL", "mariadb": "MariaDB"}
MIGRATIONS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")

_COLUMNS = (
    "project",
    "name",
    "version",
    "filename",
    "size",
    "sha256",
    "md5",
    "requires_python",
    "summary",
    "upload_time",
    "uploader",
    "yanked",
    "yanked_reason",
    "metadata_sha256",
)


def _row(record: FileRecord) -> dict:
    row = {c: getattr(record, c) for c in _COLUMNS}
    row["storage_key"] = record.key
    row["storage_tag"] = record.storage_tag or None
    return row


def _record(row) -> FileRecord:
    data = {c: row._mapping[c] for c in _COLUMNS}
    return FileRecord(key=row._mapping["storage_key"], storage_tag=row._mapping["storage_tag"] or "", **data)


class _Unchanged(Exception):
    """Raised in a write transaction that changed nothing: rolls it back, counter included."""

    def __init__(self, result):
        super().__init__()
        self.result = result


class SQLIndex(SQLEventLog, SQLWebhookQueue, MetadataIndex):
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
        if bumped is not None:
            # Only now, after the commit: a reader that sees the new counter
            # must also see the new rows.
            if self._shared is not None:
                self._shared.publish(bumped)
            if self._push is not None:
                self._push.announce(bumped)
        return result

    def _bump(self, conn: Connection) -> None:
        # Every write transaction starts here: on PostgreSQL the row lock taken
        # by this UPDATE serialises writers, so concurrent adds cannot collide.
        conn.execute(
            counters.update().where(counters.c.name == "generation").values(value=counters.c.value + 1)
        )
        value = counters.c.value
        columns = [value]
        if self._channel:
            # Sent to every listening process when (and only if) this commits.
            columns.append(sa.func.pg_notify(self._channel, sa.cast(value, sa.Text)))
        conn.info["ppc_generation"] = conn.execute(
            sa.select(*columns).where(counters.c.name == "generation")
        ).first()[0]

    def _listener_connection(self):
        """A psycopg connection of its own for LISTEN (autocommit, keepalives)."""
        import psycopg

        _, params = self.engine.dialect.create_connect_args(self.engine.url)
        return psycopg.connect(**({**PG_CONNECTION_OPTIONS, **params}), autocommit=True)

    @staticmethod
    def _refresh_project(conn: Connection, project: str) -> None:
        """Recompute one project's summary row from its files."""
        latest = conn.execute(
            sa.select(files.c.name, files.c.summary, files.c.upload_time)
            .where(files.c.project == project)
            .order_by(files.c.upload_time.desc(), files.c.filename.desc())
            .limit(1)
        ).first()
        conn.execute(projects.delete().where(projects.c.project == project))
        if latest is not None:
            conn.execute(
                projects.insert().values(
                    project=project,
                    name=latest.name,
                    summary=latest.summary,
                    last_modified=latest.upload_time,
                )
            )

    # Contract -----------------------------------------------------------
    def add(self, record: FileRecord) -> None:
        def work(conn):
            self._bump(conn)
            old = conn.execute(sa.select(files.c.project).where(files.c.filename == record.filename)).first()
            conn.execute(files.delete().where(files.c.filename == record.filename))
            conn.execute(files.insert().values(**_row(record)))
            if old is not None and old.project != record.project:
                self._refresh_project(conn, old.project)
            self._refresh_project(conn, record.project)

        self._run(work)

    def get(self, filename: str) -> FileRecord | None:
        row = self._run(lambda c: c.execute(sa.select(files).where(files.c.filename == filename)).first())
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
        rows = self._run(
            lambda c: c.execute(
                sa.select(files).where(files.c.project == project).order_by(files.c.filename)
            ).all()
        )
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
        local = self._local
        conn = getattr(local, "conn", None)
        fresh = conn is None or local.pid != os.getpid()
        if fresh:
            conn = self._generation_connection()
        try:
            return self._read_generation(conn)
        except self.engine.dialect.loaded_dbapi.Error as exc:
            self._drop_generation_connection(conn)
            if fresh:
                raise BackendUnavailable(f"{self._unavailable}: {exc}") from None
        # A kept connection can have died while this thread was idle (a
        # database restart or failover): one retry on a new connection, so the
        # first request after an outage does not fail for nothing.
        conn = self._generation_connection()
        try:
            return self._read_generation(conn)
        except self.engine.dialect.loaded_dbapi.Error as exc:
            self._drop_generation_connection(conn)
            raise BackendUnavailable(f"{self._unavailable}: {exc}") from None

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

    def get_url(self, key: str) -> tuple[str, datetime] | None:
        row = self._run(
            lambda c: c.execute(
                sa.select(signed_urls.c.url, signed_urls.c.expires_at).where(signed_urls.c.storage_key == key)
            ).first()
        )
        return (row.url, row.expires_at) if row is not None else None

    def set_url(self, key: str, url: str, expires_at: datetime) -> None:
        if sqldb.is_mysql(self.engine.dialect):
            self._set_url_mysql(key, url, expires_at)
            return
        # An upsert: concurrent first downloads of one file all store a URL,
        # and a delete-then-insert lets two inserts collide (IntegrityError).
        values = {"storage_key": key, "url": url, "expires_at": expires_at}
        dialect = self.engine.dialect.name
        if dialect in ("postgresql", "sqlite"):
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
            stmt = insert(signed_urls).values(**values)
            stmt = stmt.on_conflict_do_update(
                index_elements=[signed_urls.c.storage_key],
                set_={"url": stmt.excluded.url, "expires_at": stmt.excluded.expires_at},
            )
            self._run(lambda conn: conn.execute(stmt))
            return

        def work(conn):
            updated = conn.execute(
                signed_urls.update()
                .where(signed_urls.c.storage_key == key)
                .values(url=url, expires_at=expires_at)
            )
            if not updated.rowcount:
                conn.execute(signed_urls.insert().values(**values))

        try:
            self._run(work)
        except IntegrityError:
            pass  # another process stored a URL for the key at the same moment: as good

    # Intent log ---------------------------------------------------------
    def begin_intent(self, op: str, project: str, filename: str) -> str | None:
        intent_id = uuid.uuid4().hex
        self._run(
            lambda conn: conn.execute(
                intents.insert().values(
                    id=intent_id, op=op, project=project, filename=filename, created=utcnow()
                )
            )
        )
        return intent_id

    def end_intent(self, intent_id: str) -> None:
        self._run(lambda conn: conn.execute(intents.delete().where(intents.c.id == intent_id)))

    def open_intents(self, older_than: datetime) -> list[Intent]:
        rows = self._run(
            lambda conn: conn.execute(
                sa.select(intents)
                .where(intents.c.created <= older_than)
                .order_by(intents.c.created, intents.c.id)
            ).all()
        )
        return [
            Intent(id=r.id, op=r.op, project=r.project, filename=r.filename, created=r.created) for r in rows
        ]

    @contextlib.contextmanager
    def repair_lock(self) -> Iterator[bool]:
        """PostgreSQL: a session advisory lock; MySQL: GET_LOCK; SQLite: an flock beside the file."""
        dialect = self.engine.dialect.name
        database = sqldb.sqlite_file(self.url)
        if dialect == "sqlite" and database:
            fd = os.open(database + ".repair-lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
                yield True
            finally:
                os.close(fd)  # releases the flock
            return
        if dialect not in ("postgresql", "mysql", "mariadb"):
            with super().repair_lock() as got:
                yield got
            return
        if dialect == "postgresql":
            take = sa.text("SELECT pg_try_advisory_lock(:key)")
            give = sa.text("SELECT pg_advisory_unlock(:key)")
        else:
            take = sa.text("SELECT GET_LOCK(CONCAT('ppc-repair-', :key), 0)")
            give = sa.text("SELECT RELEASE_LOCK(CONCAT('ppc-repair-', :key))")
        try:
            conn = self.engine.connect()
            got = bool(conn.execute(take, {"key": REPAIR_LOCK_KEY}).scalar())
            conn.commit()
        except (OperationalError, InterfaceError) as exc:
            raise BackendUnavailable(f"{self._unavailable}: {exc.orig}") from None
        try:
            yield got
        finally:
            try:
                if got:
                    conn.execute(give, {"key": REPAIR_LOCK_KEY})
                    conn.commit()
            except (OperationalError, InterfaceError):
                conn.invalidate()  # the session and its lock are gone with it
            finally:
                conn.close()

    def _set_url_mysql(self, key: str, url: str, expires_at: datetime) -> None:
        # One upsert: under InnoDB's repeatable read, two processes that both
        # delete a missing key and insert it deadlock on the gap lock.
        if len(key) > MYSQL_MAX_KEY_CHARS:
            return  # longer than the key column: not cached, signed afresh each time
        statement = mysql_insert(signed_urls).values(storage_key=key, url=url, expires_at=expires_at)
        statement = statement.on_duplicate_key_update(
            url=statement.inserted.url, expires_at=statement.inserted.expires_at
        )
        self._run(lambda conn: conn.execute(statement))

    def mark_local(self, project: str) -> None:
        if self.was_local(project):
            return

        absent = ~sa.exists().where(local_projects.c.project == project)
        try:
            self._run(
                lambda c: c.execute(
                    local_projects.insert().from_select(
                        ["project"], sa.select(sa.literal(project)).where(absent)
                    )
                )
            )
        except sa.exc.IntegrityError:
            pass  # another process marked it at the same moment

    def was_local(self, project: str) -> bool:
        return (
            self._run(
                lambda c: c.execute(
                    sa.select(local_projects.c.project).where(local_projects.c.project == project)
                ).first()
            )
            is not None
        )

    def counter(self, name: str) -> int:
        row = self._run(
            lambda c: c.execute(
                sa.select(shared_counters.c.value, shared_counters.c.expires_at).where(
                    shared_counters.c.name == name
                )
            ).first()
        )
        if row is None or (row.expires_at is not None and row.expires_at <= datetime.now(UTC)):
            return 0
        return int(row.value)

    def incr_counter(self, name: str, amount: int = 1, ttl: int | None = None) -> int:
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=ttl) if ttl is not None else None
        table = shared_counters
        if sqldb.is_mysql(self.engine.dialect):
            return self._incr_counter_mysql(name, amount, now, expires)

        def work(conn):
            # Expired rows go first (they count as 0 and must not pile up).
            conn.execute(table.delete().where(table.c.expires_at.is_not(None), table.c.expires_at <= now))
            updated = conn.execute(
                table.update()
                .where(table.c.name == name)
                .values(value=table.c.value + amount, expires_at=expires)
            )
            if updated.rowcount == 0:
                conn.execute(table.insert().values(name=name, value=amount, expires_at=expires))
            return conn.execute(sa.select(table.c.value).where(table.c.name == name)).scalar_one()

        for attempt in range(3):
            try:
                return int(self._run(work))
            except sa.exc.IntegrityError:
                if attempt == 2:  # another process inserted it at the same moment, thrice
                    raise
        raise AssertionError("unreachable")

    def _incr_counter_mysql(self, name: str, amount: int, now: datetime, expires: datetime | None) -> int:
        # One upsert: under InnoDB's repeatable read, the delete-update-insert of
        # the other databases deadlocks on gap locks when several processes count
        # the same new name at once (found by the jti single-use contract test).
        table = shared_counters
        statement = mysql_insert(table).values(name=name, value=amount, expires_at=expires)
        expired = sa.and_(table.c.expires_at.is_not(None), table.c.expires_at <= now)
        # MySQL assigns left to right: ``value`` still sees the old expiry.
        statement = statement.on_duplicate_key_update(
            [
                (
                    "value",
                    sa.case(
                        (expired, statement.inserted.value), else_=table.c.value + statement.inserted.value
                    ),
                ),
                ("expires_at", statement.inserted.expires_at),
            ]
        )

        def work(conn):
            conn.execute(statement)
            return conn.execute(sa.select(table.c.value).where(table.c.name == name)).scalar_one()

        value = int(self._run(work))
        try:  # expired rows must not pile up; a lost race here is harmless
            self._run(lambda c: c.execute(table.delete().where(expired)))
        except BackendUnavailable:
            pass
        return value

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
