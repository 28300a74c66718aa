"""The page and download paths' reads of file rows on SQLite, without SQLAlchemy per call.

A project page that is not cached yet (the first request for it since the start,
or since any change: every write moves the one change counter) spends half its time
reading the project's rows, and nearly all of that is SQLAlchemy's machinery per
call: a pooled connection checked out, a transaction begun and committed, a result
object built, a mapping view per row. On SQLite, where a connection is a local file
handle, these reads run instead on the plain DB-API connection each thread already
keeps for the change counter (autocommit, outside the pool: see
``SQLIndex._query_generation``), with the statement SQLAlchemy compiled once and the
column types' own result processors, so the records are the same to the last field.
Other databases keep SQLAlchemy's path: there a kept connection per thread would be a
server connection more per thread, outside the pool size an operator chose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..models import FileRecord
from .schema import record_from_mapping


class RawSelect:
    """One ``SELECT`` of file rows, compiled once for a dialect, run on a DB-API connection."""

    def __init__(self, statement: Any, dialect: Any):
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        # Positional paramstyles (SQLite's qmark) take the values in this order.
        self._order: list[str] | None = list(compiled.positiontup) if compiled.positiontup else None
        columns = list(statement.selected_columns)
        self._keys = [column.key for column in columns]
        # The same conversions SQLAlchemy applies (SQLite: text to aware datetime,
        # integer to bool); None where the driver's value is already right.
        processors = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self._converters: list[tuple[int, Callable[[Any], Any]]] = [
            (i, p) for i, p in enumerate(processors) if p is not None
        ]

    def records(self, conn: Any, values: Mapping[str, Any]) -> list[FileRecord]:
        """The rows the statement selects with ``values`` bound, as records."""
        params: Any = tuple(values[name] for name in self._order) if self._order else dict(values)
        cursor = conn.cursor()
        try:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return [self._record(row) for row in rows]

    def _record(self, row: tuple) -> FileRecord:
        fields = list(row)
        for index, convert in self._converters:
            fields[index] = convert(fields[index])
        return record_from_mapping(dict(zip(self._keys, fields, strict=True)))
