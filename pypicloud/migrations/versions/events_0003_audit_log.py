"""The audit log: one row per state change (docs/audit.md).

Revision ID: events_0003
Revises: integrity_0002
"""

import sqlalchemy as sa
from alembic import op

from pypicloud.index.schema import MYSQL_TABLE_ARGS, UTCDateTime

revision = "events_0003"
down_revision = "integrity_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ppc_events",
        # The order of the log (pages are read newest first, by seq).
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(255)),
        sa.Column("address", sa.String(64)),
        sa.Column("request_id", sa.String(128)),
        sa.Column("project", sa.String(255)),
        sa.Column("version", sa.String(255)),
        sa.Column("filename", sa.String(255)),
        sa.Column("detail", sa.Text, nullable=False),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("ix_ppc_events_at", "ppc_events", ["at"])
    op.create_index("ix_ppc_events_project", "ppc_events", ["project"])
    op.create_index("ix_ppc_events_actor", "ppc_events", ["actor"])
    op.create_index("ix_ppc_events_action", "ppc_events", ["action"])


def downgrade() -> None:
    for column in ("action", "actor", "project", "at"):
        op.drop_index(f"ix_ppc_events_{column}", "ppc_events")
    op.drop_table("ppc_events")
