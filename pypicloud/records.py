"""The storage-metadata codec: what is written beside a file so the index can be
rebuilt from storage alone, and reading it back."""

from __future__ import annotations

from datetime import UTC, datetime

from .models import (
    METADATA_SUFFIX,  # noqa: F401 - its old home
    FileRecord,
    StoredObject,
    utcnow,
)

# S3 allows 2 KB of user metadata per object: the summary kept in storage is cut here.
SUMMARY_IN_STORAGE = 200


def record_to_metadata(record: FileRecord, summary_limit: int | None = SUMMARY_IN_STORAGE) -> dict[str, str]:
    """The storage metadata written with a file: enough to rebuild its index row.

    ``summary_limit`` None keeps the whole summary (the storage manifest,
    which has no per-object size limit).
    """
    meta = {
        "name": record.name,
        "version": record.version,
        "sha256": record.sha256,
        "md5": record.md5,
        "upload-time": record.upload_time.isoformat(),
    }
    # S3 allows 2 KB of user metadata per object: keep the summary short here
    # (the index keeps it whole).
    summary = record.summary[:summary_limit] if record.summary else None
    optional = {
        "requires-python": record.requires_python,
        "summary": summary,
        "uploader": record.uploader,
        "metadata-sha256": record.metadata_sha256,
    }
    meta.update({k: v for k, v in optional.items() if v})
    if record.yanked:
        meta["yanked"] = record.yanked_reason or ""
    return meta


def record_from_object(obj: StoredObject) -> FileRecord | None:
    """Rebuild an index row from what storage holds, or None if the metadata is incomplete."""
    meta = obj.metadata
    if not meta.get("sha256") or not meta.get("version"):
        return None
    try:
        upload_time = datetime.fromisoformat(meta["upload-time"])
    except (KeyError, ValueError):
        upload_time = obj.last_modified or utcnow()
    return FileRecord(
        project=obj.project,
        name=meta.get("name") or obj.project,
        version=meta["version"],
        filename=obj.filename,
        size=obj.size,
        sha256=meta["sha256"],
        md5=meta.get("md5", ""),
        requires_python=meta.get("requires-python"),
        summary=meta.get("summary"),
        upload_time=upload_time,
        uploader=meta.get("uploader"),
        yanked="yanked" in meta,
        yanked_reason=meta.get("yanked") or None,
        metadata_sha256=meta.get("metadata-sha256"),
        key=obj.key,
        storage_tag=obj.tag,
    )


def parse_upload_time(text: str | None) -> datetime | None:
    """An upstream ``upload-time`` (PEP 700, ISO 8601 UTC), or None."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
