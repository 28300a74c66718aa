"""Access tables: users, groups, memberships, grants, API tokens, the change counter.

Revision ID: a0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from pypicloud.sqldb import MYSQL_TABLE_ARGS, UTCDateTime

revision = "a0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ppc_users",
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("admin", sa.Boolean, nullable=False),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "ppc_groups",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("admin", sa.Boolean, nullable=False),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "ppc_memberships",
        sa.Column(
            "username",
            sa.String(255),
            sa.ForeignKey("ppc_users.username", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "group_name",
            sa.String(255),
            sa.ForeignKey("ppc_groups.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "ppc_user_grants",
        sa.Column("project", sa.String(255), primary_key=True),
        sa.Column(
            "username",
            sa.String(255),
            sa.ForeignKey("ppc_users.username", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("permission", sa.String(2), nullable=False),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "ppc_group_grants",
        sa.Column("project", sa.String(255), primary_key=True),
        sa.Column("group_name", sa.String(255), primary_key=True),
        sa.Column("permission", sa.String(2), nullable=False),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "ppc_tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column(
            "username",
            sa.String(255),
            sa.ForeignKey("ppc_users.username", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("projects", sa.Text),
        sa.Column("upload", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime),
        **MYSQL_TABLE_ARGS,
    )
    counters = op.create_table(
        "ppc_access_counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        **MYSQL_TABLE_ARGS,
    )
    op.bulk_insert(counters, [{"name": "generation", "value": 0}])


def downgrade() -> None:
    for table in (
        "ppc_access_counters",
        "ppc_tokens",
        "ppc_group_grants",
        "ppc_user_grants",
        "ppc_memberships",
        "ppc_groups",
        "ppc_users",
    ):
        op.drop_table(table)
