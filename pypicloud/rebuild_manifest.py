"""The storage manifest seen from the index: index rows to manifest entries, and back.

A manifest entry is the storage metadata of a row (:func:`record_to_metadata`,
with the whole summary) and the storage tag the row was read with; only rows
that have a tag go in (an upload's row has none until a rebuild read the
object back). An entry becomes a row again only for an object that storage
lists with exactly the entry's tag (see :mod:`pypicloud.storage.manifest`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .models import FileRecord, StoredObject
from .records import record_from_object, record_to_metadata
from .storage.manifest import ManifestEntry


def entries_of(records: Iterable[FileRecord]) -> dict[str, ManifestEntry]:
    """Manifest entries (by object key) of the rows that know their object's tag."""
    return {
        r.key: ManifestEntry(r.storage_tag, record_to_metadata(r, summary_limit=None))
        for r in records
        if r.key and r.storage_tag
    }


def record_from_entry(entry: ManifestEntry | None, obj: StoredObject) -> FileRecord | None:
    """The row of listed ``obj`` from its manifest entry, when the entry was read with ``obj``'s tag."""
    if entry is None or not obj.tag or entry.tag != obj.tag:
        return None
    return record_from_object(replace(obj, metadata=dict(entry.metadata)))
