"""Projects that ever had a local upload (never looked up upstream again); shared counters.

Revision ID: security_0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from pypicloud.index.schema import UTCDateTime

revision = "security_0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ppc_shared_counters",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("expires_at", UTCDateTime),
    )
    op.create_table(
        "ppc_local_projects",
        sa.Column("project", sa.String(255), primary_key=True),
    )
    # Every project with a file not pulled from upstream is local already.
    op.execute(
        "INSERT INTO ppc_local_projects (project) SELECT DISTINCT project FROM ppc_files "
        "WHERE uploader IS NULL OR uploader <> '(upstream)'"
    )


def downgrade() -> None:
    op.drop_table("ppc_local_projects")
    op.drop_table("ppc_shared_counters")
