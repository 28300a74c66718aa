"""An upload on the SQL index: one read and two write transactions, mixed into
:class:`pypicloud.index.sql.SQLIndex`.

- :meth:`SQLUploads.upload_view`: the project's rows and the row of the file's
  name, in one ``SELECT``;
- :meth:`SQLUploads.begin_upload`: the project marked local (skipped once this
  process knows it is) and the intent recorded, before storage is touched;
- :meth:`SQLUploads.finish_upload`: the row written (the counter bumped first,
  the project's summary rebuilt), the intent removed, and the audit event and
  webhook deliveries of the upload inserted, all in one transaction after the
  bytes are stored. A crash before it commits leaves the intent, and the repair
  step finishes the row from storage as before.

Every statement comes from :class:`~pypicloud.index.sql_statements.HotStatements`.
On SQLite the three calls run on the thread's plain DB-API connection
(``sql_raw_writes``): ``conn`` below is then a
:class:`~pypicloud.index.sql_raw_writes.RawConnection`, which runs the same
statements, compiled once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..events import ChangeRows
from ..models import FileRecord, utcnow
from .base import MetadataIndex, UploadView
from .schema import _record, _row
from .sql_events import _event_row
from .sql_statements import FILENAME, INTENT, PROJECT, HotStatements
from .sql_webhooks import _FIELDS as DELIVERY_FIELDS

if TYPE_CHECKING:
    from typing import TypeAlias

    from sqlalchemy.engine import Connection, Engine

    from .sql_raw_writes import RawConnection

    # SQLAlchemy's connection, or on SQLite its stand-in on the plain DB-API connection.
    Conn: TypeAlias = Connection | RawConnection

LOG = logging.getLogger(__name__)


class SQLUploads(MetadataIndex):
    """``upload_view``, ``begin_upload``, ``finish_upload``, and the record writes
    (:meth:`_put_record`, :meth:`_refresh_project`) ``add`` and ``remove`` share.

    Derives from :class:`MetadataIndex` for the defaults it falls back on;
    :class:`SQLIndex` lists it before the base.
    """

    if TYPE_CHECKING:
        engine: Engine
        _channel: str | None
        _known_local: set[str]

        def _run(self, fn: Callable[[Connection], Any]) -> Any: ...
        def _run_upload(self, fn: Callable[[Any], Any], *, write: bool = True) -> Any: ...

    def _hot(self) -> HotStatements:
        """The prepared statements, built at the first call (two threads may both
        build them: the same statements, one kept)."""
        hot = self.__dict__.get("_hot_statements")
        if hot is None:
            # The dialect learns what its server can do (MariaDB's RETURNING) at the
            # first connection; an index opened without migrating has not made one yet.
            self._run(lambda conn: None)
            hot = self.__dict__["_hot_statements"] = HotStatements(self.engine.dialect, self._channel)
        return hot

    # The change counter and the rows of files -------------------------------
    def _bump(self, conn: Conn) -> None:
        # Every write transaction starts here: on PostgreSQL the row lock taken
        # by this UPDATE serialises writers, so concurrent adds cannot collide.
        hot = self._hot()
        if hot.read_counter is None:
            value = conn.execute(hot.bump).scalar_one()
        else:
            conn.execute(hot.bump)
            value = conn.execute(hot.read_counter).scalar_one()
        conn.info["ppc_generation"] = value

    def _refresh_project(self, conn: Conn, project: str) -> None:
        """Rebuild one project's summary row from its newest file (none: no row)."""
        hot = self._hot()
        conn.execute(hot.drop_summary, {PROJECT: project})
        conn.execute(hot.make_summary, {PROJECT: project})

    def _put_record(self, conn: Conn, record: FileRecord) -> None:
        """Insert ``record`` in ``conn``'s transaction, replacing the row of its name."""
        hot = self._hot()
        self._bump(conn)
        named = {FILENAME: record.filename}
        if hot.old_project is not None:
            old = conn.execute(hot.old_project, named).first()
            conn.execute(hot.delete_file, named)
        else:
            old = conn.execute(hot.delete_file, named).first()
        conn.execute(hot.insert_file, _row(record))
        if old is not None and old.project != record.project:
            self._refresh_project(conn, old.project)
        self._refresh_project(conn, record.project)

    # An upload ------------------------------------------------------------
    def upload_view(self, project: str, filename: str) -> UploadView:
        query = self._hot().upload_view
        rows = self._run_upload(
            lambda c: c.execute(query, {PROJECT: project, FILENAME: filename}).all(), write=False
        )
        existing = None
        records = []
        for row in rows:
            record = _record(row)
            if row.ppc_in_project:
                records.append(record)
            if row.ppc_named:
                existing = record
        return UploadView(records, existing)

    def begin_upload(self, project: str, filename: str) -> str | None:
        hot = self._hot()
        known = project in self._known_local
        if not known and hot.mark_local is None:
            self.mark_local(project)  # no one-statement mark on this database: its own transaction
        mark = None if known else hot.mark_local
        intent: dict[str, Any] = {"id": uuid.uuid4().hex, "op": "upload", "project": project}
        intent.update(filename=filename, created=utcnow())

        def work(conn: Conn) -> None:
            if mark is not None:
                conn.execute(mark, {"project": project})
            conn.execute(hot.insert_intent, intent)

        self._run_upload(work)
        self._known_local.add(project)
        return intent["id"]

    def finish_upload(self, record: FileRecord, intent_id: str | None, rows: ChangeRows) -> bool:
        hot = self._hot()
        failed: list[Exception] = []

        def work(conn: Conn, with_rows: bool) -> None:
            self._put_record(conn, record)
            if intent_id is not None:
                conn.execute(hot.delete_intent, {INTENT: intent_id})
            if with_rows:
                try:
                    self._insert_rows(conn, rows)
                except Exception as exc:
                    failed.append(exc)  # before the commit: the whole transaction rolls back
                    raise

        try:
            self._run_upload(lambda conn: work(conn, bool(rows)))
        except Exception:
            if not failed:
                raise
            # The record must not be lost for the rows' sake: written again alone,
            # and the rows handed back to their subscribers (who log a failure).
            LOG.warning(
                "the audit and webhook rows of %s could not be written with it (%s); writing them apart",
                record.filename,
                failed[0],
            )
            self._run_upload(lambda conn: work(conn, False))
            return False
        return True

    def _insert_rows(self, conn: Conn, rows: ChangeRows) -> None:
        hot = self._hot()
        if rows.events:
            conn.execute(hot.insert_event, [_event_row(e) for e in rows.events])
        if rows.deliveries:
            conn.execute(
                hot.insert_delivery, [{f: getattr(d, f) for f in DELIVERY_FIELDS} for d in rows.deliveries]
            )
