"""Initial schema: files, projects, the change counter, signed URLs.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from pypicloud.index.schema import MYSQL_MAX_KEY_CHARS, MYSQL_TABLE_ARGS, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ppc_files",
        sa.Column("filename", sa.String(255), primary_key=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("requires_python", sa.Text),
        sa.Column("summary", sa.Text),
        sa.Column("upload_time", UTCDateTime, nullable=False),
        sa.Column("uploader", sa.String(255)),
        sa.Column("yanked", sa.Boolean, nullable=False),
        sa.Column("yanked_reason", sa.Text),
        sa.Column("metadata_sha256", sa.String(64)),
        sa.Column("storage_key", sa.Text, nullable=False),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("ix_ppc_files_project", "ppc_files", ["project"])
    op.create_table(
        "ppc_projects",
        sa.Column("project", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("last_modified", UTCDateTime, nullable=False),
        **MYSQL_TABLE_ARGS,
    )
    counters = op.create_table(
        "ppc_counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
        **MYSQL_TABLE_ARGS,
    )
    op.bulk_insert(counters, [{"name": "generation", "value": 1}])
    op.create_table(
        "ppc_signed_urls",
        sa.Column(
            "storage_key",
            sa.String(1024).with_variant(sa.String(MYSQL_MAX_KEY_CHARS), "mysql", "mariadb"),
            primary_key=True,
        ),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        **MYSQL_TABLE_ARGS,
    )


def downgrade() -> None:
    for table in ("ppc_signed_urls", "ppc_counters", "ppc_projects"):
        op.drop_table(table)
    op.drop_index("ix_ppc_files_project", "ppc_files")
    op.drop_table("ppc_files")
