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

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine, URL

from .errors import ConfigError


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
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def settings_url(settings, key: str, default_file: str) -> str:
    """A database URL from the ini: relative SQLite paths are relative to the ini file."""
    url = settings.get_str(key) or f"sqlite:///{settings.path(default_file)}"
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = "sqlite:///" + settings.path(url[len("sqlite:///"):])
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(key, url, "a SQLAlchemy database URL") from None
    return _with_installed_driver(parsed, url)


def _with_installed_driver(parsed: URL, url: str) -> str:
    """A PostgreSQL URL without a driver, for the driver that is installed.

    pypicloud 1.x ini files say ``postgresql://`` (SQLAlchemy then asks for
    psycopg2) or ``postgres://`` (which SQLAlchemy no longer knows); the
    ``postgres`` extra installs psycopg 3. Such URLs keep working unchanged.
    """
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
    kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
    if schema:
        kwargs["execution_options"] = {"schema_translate_map": {None: schema}}
    engine = sa.create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    # A forked worker (gunicorn --preload) must not reuse the parent's
    # connections: drop them from the child's pool without closing them.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


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
    in every process) inside the migration transaction.
    """
    config = Config()
    config.set_main_option("script_location", script_location)
    with _file_lock(engine.url, f".migrate-lock-{lock_key:x}"), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
        if schema:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            conn.execute(sa.text(f'SET search_path TO "{schema}"'))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
