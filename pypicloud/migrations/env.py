"""Alembic environment: migrations run on the connection pypicloud hands over."""

from alembic import context

from pypicloud.index.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only used through pypicloud
    raise RuntimeError("pypicloud runs its migrations itself (SQLIndex.migrate)")

context.configure(
    connection=connection, target_metadata=metadata, version_table="ppc_alembic_version", render_as_batch=True
)
with context.begin_transaction():
    context.run_migrations()
