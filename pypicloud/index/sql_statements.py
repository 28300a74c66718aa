"""The SQL index's statements of the upload path, built once per index.

Building a SQLAlchemy Core statement (``select(...).where(...)``) costs more
than executing it on SQLite: every clause is coerced and checked, and a fresh
object has no memoised cache key. The statements an upload runs are built
here once, with named parameters (``bindparam``), and reused by every request;
SQLAlchemy's compiled cache then finds their SQL at once.

They are built per dialect after the first connection, because what a database
can do in one statement is known only then: PostgreSQL and SQLite (3.35+) return
the bumped counter from the ``UPDATE`` and the deleted row's project from the
``DELETE`` (``RETURNING``; MariaDB for ``DELETE`` only, MySQL neither), and each
has its own "insert unless present" for the local-project mark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .schema import counters, events, files, intents, local_projects, projects, webhook_deliveries

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

# Parameter names: prefixed so that none is also a column the statement sets.
PROJECT, FILENAME, INTENT = "p_project", "p_filename", "p_intent"


class HotStatements:
    """Prepared statements of an upload (and of every write's counter bump)."""

    def __init__(self, dialect: Dialect, channel: str | None):
        value = counters.c.value
        generation = counters.c.name == "generation"
        returned: list[Any] = [value]
        if channel:
            # Sent to every listening process when (and only if) this commits.
            returned.append(sa.func.pg_notify(channel, sa.cast(value, sa.Text)))
        bump = counters.update().where(generation).values(value=value + 1)
        #: ``UPDATE`` of the change counter, returning the new value when it can.
        self.bump: Any = bump.returning(*returned) if dialect.update_returning else bump
        #: The counter after :attr:`bump`, when the ``UPDATE`` cannot return it.
        self.read_counter: Any = None if dialect.update_returning else sa.select(*returned).where(generation)

        by_name = files.c.filename == sa.bindparam(FILENAME)
        in_project = files.c.project == sa.bindparam(PROJECT)
        #: An upload's one read: the project's rows and the row of the file's name,
        #: each flagged by the database (whose collation decides what matches).
        self.upload_view = (
            sa.select(files, in_project.label("ppc_in_project"), by_name.label("ppc_named"))
            .where(sa.or_(in_project, by_name))
            .order_by(files.c.filename)
        )
        self.get = sa.select(files).where(by_name)
        self.files = sa.select(files).where(in_project).order_by(files.c.filename)
        delete = files.delete().where(by_name)
        #: The row of a name goes; its project is returned when the database can.
        self.delete_file: Any = delete.returning(files.c.project) if dialect.delete_returning else delete
        self.old_project: Any = (
            None if dialect.delete_returning else sa.select(files.c.project).where(by_name)
        )
        self.insert_file = files.insert()

        latest = (
            sa.select(files.c.project, files.c.name, files.c.summary, files.c.upload_time)
            .where(in_project)
            .order_by(files.c.upload_time.desc(), files.c.filename.desc())
            .limit(1)
        )
        #: A project's summary row is rebuilt from its newest file by these two.
        self.drop_summary = projects.delete().where(projects.c.project == sa.bindparam(PROJECT))
        self.make_summary = projects.insert().from_select(
            ["project", "name", "summary", "last_modified"], latest
        )

        self.insert_intent = intents.insert()
        self.delete_intent = intents.delete().where(intents.c.id == sa.bindparam(INTENT))
        #: Mark a project local unless it is (None: no such statement here).
        self.mark_local: Any = _insert_unless_present(dialect)
        self.insert_event = events.insert()
        self.insert_delivery = webhook_deliveries.insert()


def _insert_unless_present(dialect: Dialect) -> Any:
    """``INSERT`` into ``ppc_local_projects`` that does nothing for a present row.

    One statement that never fails on a duplicate, so that it can share a
    transaction with the intent (a failed statement spoils a PostgreSQL one).
    """
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(local_projects).on_conflict_do_nothing()
    if dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(local_projects).on_conflict_do_nothing()
    if dialect.name in ("mysql", "mariadb"):
        return local_projects.insert().prefix_with("IGNORE")
    return None
