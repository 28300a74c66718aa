"""SQLAlchemy tables of the database access backend (``pypi.auth = sql``).

Created and changed only by the alembic migrations in
``pypicloud/access/migrations`` (their own version table, so these tables can
share a database with the metadata index); a test checks that the migrations
build what is described here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, MetaData, String, Table, Text

from ..sqldb import UTCDateTime

metadata = MetaData()

users = Table(
    "ppc_users",
    metadata,
    Column("username", String(255), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("admin", Boolean, nullable=False, default=False),
)

groups = Table(
    "ppc_groups",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("admin", Boolean, nullable=False, default=False),
)

memberships = Table(
    "ppc_memberships",
    metadata,
    Column("username", String(255), ForeignKey("ppc_users.username", ondelete="CASCADE"), primary_key=True),
    Column("group_name", String(255), ForeignKey("ppc_groups.name", ondelete="CASCADE"), primary_key=True),
)

user_grants = Table(
    "ppc_user_grants",
    metadata,
    Column("project", String(255), primary_key=True),
    Column("username", String(255), ForeignKey("ppc_users.username", ondelete="CASCADE"), primary_key=True),
    Column("permission", String(2), nullable=False),
)

# Group grants may name the pseudo-groups "everyone" and "authenticated", which
# have no row in ppc_groups: no foreign key here, deleting a group deletes its
# grants explicitly.
group_grants = Table(
    "ppc_group_grants",
    metadata,
    Column("project", String(255), primary_key=True),
    Column("group_name", String(255), primary_key=True),
    Column("permission", String(2), nullable=False),
)

# API tokens: only a SHA-256 of the secret part is kept (the secret is 256
# random bits, so a fast hash is enough and verification costs nothing).
tokens = Table(
    "ppc_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("username", String(255), ForeignKey("ppc_users.username", ondelete="CASCADE"), nullable=False),
    Column("projects", Text),  # canonical names separated by spaces; NULL: every project
    Column("upload", Boolean, nullable=False, default=False),
    Column("description", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),  # NULL: never
)

# Users who signed up on a pypicloud 1.x server and were never approved: kept
# (1.x's pending flag) so nothing is lost, but they cannot log in.
pending_users = Table(
    "ppc_pending_users",
    metadata,
    Column("username", String(255), primary_key=True),
    Column("password_hash", Text, nullable=False),
)

# One row, "generation": grows with every change, so every process can tell
# that its in-memory copy of the access data is out of date.
access_counters = Table(
    "ppc_access_counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)


def put_grant(conn: Any, project: str, kind: str, name: str, permission: str) -> None:
    """Set the grant of user or group (``kind``) ``name`` on ``project``, replacing any other."""
    table, column = (user_grants, "username") if kind == "user" else (group_grants, "group_name")
    conn.execute(table.delete().where((table.c.project == project) & (table.c[column] == name)))
    conn.execute(table.insert().values(project=project, permission=permission, **{column: name}))
