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

:class:`RawStatement`, the compiled statement with SQLAlchemy's own conversions both
ways, also runs an upload's writes on that connection (``sql_raw_writes``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..models import FileRecord
from .schema import record_from_mapping


class RawStatement:
    """One statement compiled once for a dialect, run on a DB-API connection.

    Its parameters are converted by the column types' bind processors and its
    rows (a ``SELECT``'s, or a ``RETURNING``'s) by their result processors, in the
    order the compiled SQL takes and gives them: what SQLAlchemy itself does per
    call, once. ``keys`` are the parameter names the caller passes (SQLAlchemy
    compiles an ``INSERT`` for the columns given); the statement's own ``bindparam``
    names are always the caller's, and its other parameters (``name =
    'generation'``, ``LIMIT 1``) are constants, converted here once.
    """

    def __init__(self, statement: Any, dialect: Any, keys: Iterable[str] = (), *, many: bool = False):
        given = sorted(keys)
        compiled = statement.compile(dialect=dialect, column_keys=given, for_executemany=many)
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
            # A Python-side column default SQLAlchemy would compute per call.
            raise ValueError(f"column defaults to fill in: {compiled}")
        self.sql = str(compiled)
        if "POSTCOMPILE" in self.sql:
            raise ValueError(f"parameters rendered at execution: {self.sql}")
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        # Positional paramstyles (SQLite's qmark) take the values in this order.
        self._positional = bool(compiled.positiontup)
        names = list(compiled.positiontup) if compiled.positiontup else list(binds)
        self._names = names
        self._slots: list[tuple[str | None, Callable[[Any], Any] | None, Any]] = []
        for name in names:
            bind = binds[name]
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required or bind.key in given or name in given:
                self._slots.append(
                    (name if name in given and bind.key not in given else bind.key, convert, None)
                )
            else:
                if bind.callable is not None:
                    raise ValueError(f"parameter {name} is computed per call")
                value = bind.effective_value
                self._slots.append((None, None, convert(value) if convert is not None else value))
        columns = list(statement.exported_columns)
        self._keys = [column.key for column in columns]
        # The same conversions SQLAlchemy applies (SQLite: text to aware datetime,
        # integer to bool); None where the driver's value is already right.
        processors = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self._converters: list[tuple[int, Callable[[Any], Any]]] = [
            (i, p) for i, p in enumerate(processors) if p is not None
        ]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters for ``values``, converted as SQLAlchemy converts them."""
        converted = [
            constant if key is None else (values[key] if convert is None else convert(values[key]))
            for key, convert, constant in self._slots
        ]
        return tuple(converted) if self._positional else dict(zip(self._names, converted, strict=True))

    def rows(self, conn: Any, values: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """Run with ``values`` bound: the rows it returns (by column key) and its row count."""
        cursor = conn.cursor()
        try:
            cursor.execute(self.sql, self.parameters(values))
            rows = cursor.fetchall() if self._keys else []
            count = cursor.rowcount
        finally:
            cursor.close()  # no statement left open: it would hold a read snapshot
        return [self._mapping(row) for row in rows], count

    def run_many(self, conn: Any, many: Sequence[Mapping[str, Any]]) -> int:
        """Run once per mapping of ``many`` (an ``executemany``); the row count."""
        cursor = conn.cursor()
        try:
            cursor.executemany(self.sql, [self.parameters(values) for values in many])
            return cursor.rowcount
        finally:
            cursor.close()

    def _mapping(self, row: Sequence[Any]) -> dict[str, Any]:
        fields = list(row)
        for index, convert in self._converters:
            fields[index] = convert(fields[index])
        return dict(zip(self._keys, fields, strict=True))


class RawSelect(RawStatement):
    """One ``SELECT`` of file rows, compiled once for a dialect, run on a DB-API connection."""

    def records(self, conn: Any, values: Mapping[str, Any]) -> list[FileRecord]:
        """The rows the statement selects with ``values`` bound, as records."""
        rows, _ = self.rows(conn, values)
        return [record_from_mapping(row) for row in rows]
