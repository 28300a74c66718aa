"""The storage tag of each file row: a rebuild keeps a row while storage lists the same tag.

Revision ID: rebuild_0005
Revises: webhooks_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "rebuild_0005"
down_revision = "webhooks_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ppc_files", sa.Column("storage_tag", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("ppc_files") as batch:
        batch.drop_column("storage_tag")
