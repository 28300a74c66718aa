"""An upload's three index calls on SQLite, without SQLAlchemy per call.

An upload on the SQL index makes one read and two write transactions
(``sql_upload``). On SQLite, a quarter of the upload request's time went to
SQLAlchemy's machinery around its dozen short statements: a pooled connection
checked out and pinged, a transaction begun and committed through the engine,
a compiled-cache lookup, parameters and a result object built per statement. The
statements themselves cost little: the database is a local file.

So on SQLite these calls run on the plain DB-API connection each thread already
keeps for the change counter and the page reads (``sql_reads``), with the very
statements of :class:`~pypicloud.index.sql_statements.HotStatements`, each
compiled once by SQLAlchemy for the dialect and its parameters converted by the
column types' own bind processors (:class:`~pypicloud.index.sql_reads.RawStatement`):
the rows stored are the same, byte for byte. :class:`RawConnection` stands in for
SQLAlchemy's ``Connection`` so the upload's code (``_put_record``, ``_bump``,
``_refresh_project``, ``_insert_rows``) is one and the same on both paths.

A write is an explicit ``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any
error): it takes SQLite's write lock at once, so writers of other processes
wait their turn (the connection's ``busy_timeout``, set when it was made) rather
than fail upgrading a read lock. As in ``SQLIndex._run``, the change counter is
bumped inside the transaction and published only after the commit, and an
operational error is :class:`~pypicloud.errors.BackendUnavailable`. A kept
connection that died while its thread idled is dropped and made again once,
when ``BEGIN`` fails, before anything was written.

Other databases keep SQLAlchemy's path: a kept connection per thread there would
be one server connection more per thread, outside the pool size an operator chose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import BackendUnavailable
from .sql_reads import RawStatement

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

T = TypeVar("T")

# SQLite's result code for a lock held by another connection (extended codes keep it in the low byte).
_SQLITE_BUSY = 5


class RawRow:
    """A row by column key, as attribute or through ``_mapping`` (what the upload code reads)."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]):
        self._mapping = mapping

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


class RawResult:
    """The rows of one statement: the part of SQLAlchemy's ``Result`` the upload code uses."""

    def __init__(self, rows: list[dict[str, Any]], rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list[RawRow]:
        return [RawRow(row) for row in self._rows]

    def first(self) -> RawRow | None:
        return RawRow(self._rows[0]) if self._rows else None

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise ValueError(f"expected one row, got {len(self._rows)}")
        return next(iter(self._rows[0].values()))


class RawStatements:
    """The statements compiled so far, one per statement and set of parameter names.

    SQLAlchemy compiles a statement for the names of the parameters it is given
    (an ``INSERT`` sets those columns): so does this, once each. Shared by every
    thread: two may compile the same statement at once, and one is kept.
    """

    def __init__(self, dialect: Any):
        self._dialect = dialect
        self._compiled: dict[tuple[int, tuple[str, ...], bool], tuple[Any, RawStatement]] = {}

    def get(self, statement: Any, keys: tuple[str, ...], many: bool) -> RawStatement:
        key = (id(statement), keys, many)
        entry = self._compiled.get(key)
        if entry is None or entry[0] is not statement:
            # Kept with the statement itself, so an id reused by another object never matches.
            entry = self._compiled[key] = (statement, RawStatement(statement, self._dialect, keys, many=many))
        return entry[1]


class RawConnection:
    """SQLAlchemy's ``Connection`` as far as the upload code uses it, on a DB-API connection.

    ``info`` carries the bumped change counter out of the transaction, as
    ``Connection.info`` does for ``SQLIndex._run``.
    """

    def __init__(self, conn: Any, statements: RawStatements):
        self._conn = conn
        self._statements = statements
        self.info: dict[str, Any] = {}

    def execute(self, statement: Any, parameters: Any = None) -> RawResult:
        if isinstance(parameters, list) and len(parameters) > 1:
            # SQLAlchemy's executemany (no RETURNING here): the driver's own.
            raw = self._statements.get(statement, tuple(sorted(parameters[0])), True)
            return RawResult([], raw.run_many(self._conn, parameters))
        values: Mapping[str, Any] = (
            (parameters[0] if parameters else {}) if isinstance(parameters, list) else (parameters or {})
        )
        raw = self._statements.get(statement, tuple(sorted(values)), False)
        rows, count = raw.rows(self._conn, values)
        return RawResult(rows, count)


def _busy(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == _SQLITE_BUSY


class SQLRawWrites:
    """``_run_upload``: the upload's transactions, on SQLite's plain connection.

    Mixin of :class:`pypicloud.index.sql.SQLIndex`.
    """

    if TYPE_CHECKING:
        engine: Engine
        _unavailable: str

        def _run(self, fn: Callable[[Connection], Any]) -> Any: ...
        def _hot(self) -> Any: ...
        def _on_raw_connection(self, read: Callable[[Any], T]) -> T: ...
        def _thread_connection(self) -> tuple[Any, bool]: ...
        def _generation_connection(self) -> Any: ...
        def _drop_generation_connection(self, conn: Any) -> None: ...
        def _publish(self, bumped: int | None) -> None: ...

    def _raw_writes(self) -> RawStatements | None:
        """The compiled statements of the upload path; None off SQLite (SQLAlchemy's path)."""
        if self.engine.dialect.name != "sqlite":
            return None
        statements = self.__dict__.get("_raw_write_statements")
        if statements is None:
            self._hot()  # the dialect knows what its SQLite can do (RETURNING) after a first connection
            statements = self.__dict__["_raw_write_statements"] = RawStatements(self.engine.dialect)
        return statements

    def _run_upload(self, fn: Callable[[Any], T], *, write: bool = True) -> T:
        """``fn(conn)`` in one transaction, as ``_run``; on SQLite on the thread's plain
        connection (``conn`` a :class:`RawConnection`), a read as one autocommit statement."""
        statements = self._raw_writes()
        if statements is None:
            return self._run(fn)
        if not write:
            # One SELECT: a snapshot of its own, no transaction needed (nor made by SQLAlchemy's
            # driver on SQLite, which begins one only before a write).
            return self._on_raw_connection(lambda conn: fn(RawConnection(conn, statements)))
        return self._raw_transaction(statements, fn)

    def _raw_transaction(self, statements: RawStatements, fn: Callable[[Any], T]) -> T:
        dbapi = self.engine.dialect.loaded_dbapi
        conn = self._begin_immediate()
        raw = RawConnection(conn, statements)
        try:
            result = fn(raw)
            conn.commit()
        except BaseException as exc:
            self._roll_back(conn)
            if isinstance(exc, (dbapi.OperationalError, dbapi.InterfaceError)):
                raise BackendUnavailable(f"{self._unavailable}: {exc}") from None
            raise
        # Only now, after the commit: a reader that sees the new counter must also see the new rows.
        self._publish(raw.info.pop("ppc_generation", None))
        return result

    def _begin_immediate(self) -> Any:
        """The thread's connection, in a write transaction that holds SQLite's write lock."""
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        conn, fresh = self._thread_connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            return conn
        except dbapi_error as exc:
            if fresh or _busy(exc):
                # Waited busy_timeout for another writer, or a new connection that fails:
                # the database itself is not usable now.
                if not _busy(exc):
                    self._drop_generation_connection(conn)
                raise BackendUnavailable(f"{self._unavailable}: {exc}") from None
            self._drop_generation_connection(conn)
        # A kept connection that died while the thread idled: nothing was written, one retry.
        conn = self._generation_connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            return conn
        except dbapi_error as exc:
            if not _busy(exc):
                self._drop_generation_connection(conn)
            raise BackendUnavailable(f"{self._unavailable}: {exc}") from None

    def _roll_back(self, conn: Any) -> None:
        try:
            conn.rollback()
        except self.engine.dialect.loaded_dbapi.Error:
            # A connection that cannot even roll back is not kept.
            self._drop_generation_connection(conn)
