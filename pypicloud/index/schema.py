"""SQLAlchemy table definitions of the SQL metadata index.

The schema itself is created and changed only by the alembic migrations in
``pypicloud/migrations``; these objects are what queries are written against,
and a test checks that they match what the migrations build.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text
from sqlalchemy.engine import Row

from ..models import FileRecord

# Shared with the access tables; defined in sqldb and still importable from here.
from ..sqldb import MYSQL_TABLE_ARGS, UTCDateTime

__all__ = ["MYSQL_MAX_KEY_CHARS", "MYSQL_TABLE_ARGS", "UTCDateTime", "files", "metadata"]

# InnoDB keys hold at most 3072 bytes: 768 utf8mb4 characters. Longer signed-URL
# keys are simply not cached there (the URL is signed afresh).
MYSQL_MAX_KEY_CHARS = 768


metadata = MetaData()

files = Table(
    "ppc_files",
    metadata,
    Column("filename", String(255), primary_key=True),
    Column("project", String(255), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("version", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("md5", String(32), nullable=False, default=""),
    Column("requires_python", Text),
    Column("summary", Text),
    Column("upload_time", UTCDateTime, nullable=False),
    Column("uploader", String(255)),
    Column("yanked", Boolean, nullable=False, default=False),
    Column("yanked_reason", Text),
    Column("metadata_sha256", String(64)),
    Column("storage_key", Text, nullable=False, default=""),
    # StoredObject.tag of what the row was read from (rebuilds reuse the row while it holds).
    Column("storage_tag", Text),
)

# One row per project with at least one file: keeps /simple/ a plain scan.
projects = Table(
    "ppc_projects",
    metadata,
    Column("project", String(255), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("summary", Text),
    Column("last_modified", UTCDateTime, nullable=False),
)

counters = Table(
    "ppc_counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)

signed_urls = Table(
    "ppc_signed_urls",
    metadata,
    Column(
        "storage_key",
        String(1024).with_variant(String(MYSQL_MAX_KEY_CHARS), "mysql", "mariadb"),
        primary_key=True,
    ),
    Column("url", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Projects that ever had a file published here: never looked up upstream
# again, even while they have no file (dependency confusion).
local_projects = Table(
    "ppc_local_projects",
    metadata,
    Column("project", String(255), primary_key=True),
)

# Counters shared by every process: failed logins per window (expiring),
# web session generations per user (kept).
shared_counters = Table(
    "ppc_shared_counters",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("expires_at", UTCDateTime),
)

# The intent log of the write protocol (docs/architecture.md): one row per
# write of a file that has begun and not yet finished.
intents = Table(
    "ppc_intents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("op", String(16), nullable=False),
    Column("project", String(255), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("created", UTCDateTime, nullable=False, index=True),
)

# The audit log (pypicloud/events.py): one row per state change, read newest
# first by ``seq``; ``detail`` is a JSON object.
events = Table(
    "ppc_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("action", String(64), nullable=False, index=True),
    Column("actor", String(255), index=True),
    Column("address", String(64)),
    Column("request_id", String(128)),
    Column("project", String(255), index=True),
    Column("version", String(255)),
    Column("filename", String(255)),
    Column("detail", Text, nullable=False),
)

# The webhook delivery queue (pypicloud/webhooks/, index/webhook_queue.py): one row
# per event and webhook until it is received; ``failed`` rows stay for the admin UI.
webhook_deliveries = Table(
    "ppc_webhook_deliveries",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("webhook", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False, index=True),
    Column("last_attempt_at", UTCDateTime),
    Column("last_error", Text),
    Column("owner", String(64)),
    Column("lease_until", UTCDateTime),
)


# A file's row in ppc_files and back (the SQL index reads and writes them).
_COLUMNS = (
    "project",
    "name",
    "version",
    "filename",
    "size",
    "sha256",
    "md5",
    "requires_python",
    "summary",
    "upload_time",
    "uploader",
    "yanked",
    "yanked_reason",
    "metadata_sha256",
)


def _row(record: FileRecord) -> dict[str, Any]:
    row = {c: getattr(record, c) for c in _COLUMNS}
    row["storage_key"] = record.key
    row["storage_tag"] = record.storage_tag or None
    return row


def _record(row: Row[Any]) -> FileRecord:
    # ``_mapping`` builds a view on each access: take it once per row (a page lists many rows).
    return record_from_mapping(row._mapping)


def record_from_mapping(mapping: Mapping[Any, Any]) -> FileRecord:
    """A record from a row of ``ppc_files`` by column name."""
    data = {c: mapping[c] for c in _COLUMNS}
    return FileRecord(key=mapping["storage_key"], storage_tag=mapping["storage_tag"] or "", **data)
