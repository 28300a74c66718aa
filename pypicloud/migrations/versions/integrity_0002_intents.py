"""The intent log of the write protocol (unfinished writes, settled by the repair step).

Revision ID: integrity_0002
Revises: security_0002
"""

import sqlalchemy as sa
from alembic import op

from pypicloud.index.schema import UTCDateTime

revision = "integrity_0002"
down_revision = "security_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ppc_intents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
    )
    op.create_index("ix_ppc_intents_created", "ppc_intents", ["created"])


def downgrade() -> None:
    op.drop_index("ix_ppc_intents_created", "ppc_intents")
    op.drop_table("ppc_intents")
