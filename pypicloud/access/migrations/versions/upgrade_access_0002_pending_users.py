"""Pending users: sign-ups waiting for an admin, as pypicloud 1.x kept them.

Revision ID: upgrade_access_0002
Revises: a0001
"""

import sqlalchemy as sa
from alembic import op

revision = "upgrade_access_0002"
down_revision = "a0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ppc_pending_users",
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ppc_pending_users")
