"""SQLAlchemy plumbing shared by the SQL backends (the index and the access data).

Both keep their tables in a database named by a URL (SQLite by default,
PostgreSQL when processes share it), optionally in a PostgreSQL schema of their
own, and bring the tables up to date with alembic at start-up. What differs is
only the set of migrations and the alembic version table, so two backends can
share one database.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import weakref
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Engine
from sqlalchemy.types import TypeDecorator

from .errors import ConfigError

# MySQL/MariaDB: every table in real UTF-8 (utf8mb4) with a binary collation,
# so names compare and sort by code point as everywhere else ("Demo" and
# "demo" are different filenames). Other databases ignore these keywords;
# every migration passes them to create_table.
MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mariadb_charset": "utf8mb4",
    "mariadb_collate": "utf8mb4_bin",
}


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database.

    SQLite has no time zones, so values are stored as naive UTC and made aware
    again when read.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        # MySQL's DATETIME drops microseconds unless asked for 6 digits.
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # defensive: raw SQLite text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def shared_database_key(settings) -> tuple[str, str | None]:
    """``(URL setting, schema)`` of the SQL access backend's database.

    ``auth.db.url`` when given; otherwise, when the metadata index is a SQL one,
    the index's own database (``db.url``, in ``db.schema``): one database for
    everything unless told otherwise.
    """
    if "auth.db.url" not in settings and _index_is_sql(settings):
        return "db.url", settings.get_str("db.schema")
    return "auth.db.url", settings.get_str("auth.db.schema")


def _index_is_sql(settings) -> bool:
    # Imported here: the index family builds on this module, not the other way round.
    from .index import ALIASES as INDEX_ALIASES
    from .index.base import MetadataIndex
    from .index.sql import SQLIndex
    from .plugins import resolve

    cls = resolve("pypi.db", settings.get_str("pypi.db", "sql"), INDEX_ALIASES, MetadataIndex)
    return issubclass(cls, SQLIndex)


def sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers proceed while one writer commits; busy_timeout makes a
    # second writer wait instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def sqlite_file(url: URL) -> str | None:
    """The database file of a SQLite URL; None for other databases and in-memory ones."""
    database = url.database
    if (
        url.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
    ):
        return None
    return os.path.abspath(database)


def settings_url(settings, key: str, default_file: str) -> str:
    """A database URL from the ini: relative SQLite paths are relative to the ini file."""
    url = settings.get_str(key) or f"sqlite:///{settings.path(default_file)}"
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = "sqlite:///" + settings.path(url[len("sqlite:///") :])
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(key, url, "a SQLAlchemy database URL") from None
    url = _with_installed_driver(parsed, url)
    _require_driver(key, sa.engine.make_url(url))
    return url


def masked(url: str) -> str:
    """The URL as it may appear in a message: the password replaced by ``***``."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _require_driver(key: str, parsed: URL) -> None:
    """Stop start-up naming the extra to install when the URL's driver is missing."""
    module, extra = _DRIVER_EXTRAS.get(parsed.drivername, (None, None))
    if module is not None and importlib.util.find_spec(module) is None:
        raise ConfigError(
            key,
            parsed.render_as_string(hide_password=True),
            f"the {module} driver is not installed: pip install 'pypicloud[{extra}]'",
        )


# Database backend -> (DB-API module, the pypicloud extra that installs it).
_DRIVER_EXTRAS = {
    "postgresql+psycopg": ("psycopg", "postgres"),
    "postgresql+psycopg2": ("psycopg2", "postgres"),
    "mysql+pymysql": ("pymysql", "mysql"),
    "mariadb+pymysql": ("pymysql", "mysql"),
    "mysql+mysqldb": ("MySQLdb", "mysql"),
    "mariadb+mysqldb": ("MySQLdb", "mysql"),
}


def is_mysql(dialect_or_url) -> bool:
    """True for MySQL and MariaDB (SQLAlchemy names the dialect either way)."""
    name = getattr(dialect_or_url, "name", None) or dialect_or_url.get_backend_name()
    return name in ("mysql", "mariadb")


def _with_installed_driver(parsed: URL, url: str) -> str:
    """A PostgreSQL or MySQL/MariaDB URL without a driver, for the driver that is installed.

    pypicloud 1.x ini files say ``postgresql://`` (SQLAlchemy then asks for
    psycopg2) or ``postgres://`` (which SQLAlchemy no longer knows); the
    ``postgres`` extra installs psycopg 3. They also say ``mysql://`` or
    ``mariadb://``, for which SQLAlchemy asks for the C driver MySQLdb; the
    ``mysql`` extra installs the pure-Python PyMySQL. Such URLs keep working
    unchanged.
    """
    if parsed.drivername in ("mysql", "mariadb"):
        return parsed.set(drivername=parsed.drivername + "+pymysql").render_as_string(hide_password=False)
    if parsed.drivername not in ("postgres", "postgresql"):
        return url
    if importlib.util.find_spec("psycopg2") is not None:
        driver = "postgresql"
    else:
        driver = "postgresql+psycopg"
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def create_engine(url: URL, *, schema: str | None, pool_size: int, max_overflow: int) -> Engine:
    """An engine with our SQLite settings, a schema map, and fork safety."""
    kwargs: dict = {"pool_pre_ping": True}
    if url.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # Created private: it may hold password hashes (pypi.auth = sql).
            # SQLite gives its -wal and -shm files the same rights.
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
        kwargs = {"connect_args": {"timeout": 30, "check_same_thread": False}}
    # A pool smaller than the server's thread count opens and closes the
    # overflow connections again and again (each one re-running the PRAGMAs).
    kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_use_lifo=True)
    if is_mysql(url):
        # MySQL/MariaDB close connections idle longer than wait_timeout (8 h by
        # default); recycle well before that. utf8mb4: real UTF-8 (summaries).
        kwargs["pool_recycle"] = 3600
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
    if schema:
        kwargs["execution_options"] = {"schema_translate_map": {None: schema}}
    engine = sa.create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    # A forked worker (gunicorn --preload) must not reuse the parent's
    # connections: drop them from the child's pool without closing them.
    # A weak reference: the hook (which lives as long as the process) must not
    # keep every engine ever made alive (the tests build one per app).
    ref = weakref.ref(engine)
    os.register_at_fork(after_in_child=lambda: _dispose_in_child(ref))
    return engine


def _dispose_in_child(ref: weakref.ref) -> None:
    engine = ref()
    if engine is not None:
        engine.dispose(close=False)


@contextlib.contextmanager
def _file_lock(url: URL, suffix: str):
    path = sqlite_file(url)
    if path is None:
        yield
        return
    fd = os.open(path + suffix, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def migrate(engine: Engine, *, script_location: str, schema: str | None, lock_key: int) -> None:
    """Bring the tables of one set of migrations to its newest alembic revision.

    Several processes (gunicorn workers, a scaled-out deployment) migrate at
    start-up; without a lock two can both see an empty database and collide
    creating the same tables. SQLite files get an flock beside them; server
    databases take a transaction-scoped advisory lock (``lock_key``, the same
    in every process) inside the migration transaction. MySQL/MariaDB have no
    transaction-scoped lock (and commit at every DDL statement), so there the
    connection holds a named lock (GET_LOCK) until the migrations are done.
    """
    config = Config()
    config.set_main_option("script_location", script_location)
    if is_mysql(engine.dialect):
        if schema:
            raise ConfigError(
                "db.schema", schema, "only for PostgreSQL; on MySQL/MariaDB name the database in the URL"
            )
        with engine.connect() as conn:
            # Named locks are per server, not per database: the database name
            # keeps deployments sharing one server from waiting on each other.
            database = conn.exec_driver_sql("SELECT DATABASE()").scalar()
            name = f"ppc-migrate-{lock_key:x}-{database}"[:64]  # the server's limit
            if conn.execute(sa.text("SELECT GET_LOCK(:name, 600)"), {"name": name}).scalar() != 1:
                raise RuntimeError(f"timed out waiting for the migration lock {name!r}")
            conn.commit()  # the named lock belongs to the session and outlives this
            try:
                with conn.begin():
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
            finally:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
                conn.commit()
        return
    with _file_lock(engine.url, f".migrate-lock-{lock_key:x}"), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
        if schema:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            conn.execute(sa.text(f'SET search_path TO "{schema}"'))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
