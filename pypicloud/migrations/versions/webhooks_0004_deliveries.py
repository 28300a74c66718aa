"""The webhook delivery queue (docs/webhooks.md).

Revision ID: webhooks_0004
Revises: events_0003
"""

import sqlalchemy as sa
from alembic import op

from pypicloud.index.schema import UTCDateTime

revision = "webhooks_0004"
down_revision = "events_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ppc_webhook_deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("webhook", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("last_attempt_at", UTCDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("owner", sa.String(64)),
        sa.Column("lease_until", UTCDateTime),
    )
    op.create_index(
        "ix_ppc_webhook_deliveries_next_attempt_at", "ppc_webhook_deliveries", ["next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_ppc_webhook_deliveries_next_attempt_at", "ppc_webhook_deliveries")
    op.drop_table("ppc_webhook_deliveries")
