"""Signed URLs, local projects, shared counters and the intent log of the SQL index,
mixed into :class:`pypicloud.index.sql.SQLIndex`.

Tables (schema.py): ``ppc_signed_urls``, ``ppc_local_projects``, ``ppc_shared_counters``
and ``ppc_intents``. MySQL/MariaDB write the URL cache and the counters with one
upsert each (``INSERT ... ON DUPLICATE KEY UPDATE``): InnoDB's gap locks deadlock
the delete-update-insert the other databases use.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from .. import sqldb
from ..errors import BackendUnavailable
from ..models import utcnow
from .base import Intent, MetadataIndex
from .schema import MYSQL_MAX_KEY_CHARS, intents, local_projects, shared_counters, signed_urls

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine

# Any constant works; it only has to be the same in every pypicloud process.
REPAIR_LOCK_KEY = 0x70707972  # "ppyr": one repairing process at a time


class SQLState(MetadataIndex):
    """``get_url``/``set_url``, ``mark_local``/``was_local``, ``counter``/``incr_counter``
    and the intent log (``begin_intent``, ``end_intent``, ``open_intents``, ``repair_lock``).

    It derives from :class:`MetadataIndex` only so that ``repair_lock`` can fall back
    on the base's in-process lock; :class:`SQLIndex` lists it first among its bases.
    """

    if TYPE_CHECKING:
        url: URL
        engine: Engine
        _unavailable: str
        _known_local: set[str]

        def _run(self, fn: Callable[[Connection], Any]) -> Any: ...

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
        self._known_local.add(project)

    def was_local(self, project: str) -> bool:
        if project in self._known_local:
            return True  # a mark is never undone
        local = (
            self._run(
                lambda c: c.execute(
                    sa.select(local_projects.c.project).where(local_projects.c.project == project)
                ).first()
            )
            is not None
        )
        if local:
            self._known_local.add(project)
        return local

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
