"""Making the index follow storage (the source of truth), mixed into
:class:`pypicloud.service.PackageIndex`: one file (``reconcile``, used by the
repair of unfinished writes), or everything (``rebuild``: ``ppc-reindex``,
``/admin/rebuild``, an empty index at start-up).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from . import dists, spool
from .errors import InvalidUpload
from .models import FileRecord, StoredObject, utcnow
from .rebuild_manifest import entries_of, record_from_entry
from .records import METADATA_SUFFIX, record_from_object
from .service_base import ServiceBase
from .spool import SpooledUpload
from .upstream import UPSTREAM_UPLOADER

# One logger for the whole service, whichever module a rule lives in: the name
# operators configure and search for.
LOG = logging.getLogger("pypicloud.service")


def _unchanged_row(row: FileRecord | None, obj: StoredObject) -> FileRecord | None:
    """The index row of ``obj`` when storage lists it with the tag the row was read from."""
    if row is None or not obj.tag or row.storage_tag != obj.tag:
        return None
    if (row.project, row.filename) != (obj.project, obj.filename):
        return None
    return row


class RebuildRules(ServiceBase):
    """Repair, rebuild and sync of the index from storage."""

    def reconcile(self, project: str, filename: str) -> str:
        """Make the index row of one file agree with storage (the source of truth).

        Returns what was done: ``added``, ``updated``, ``removed`` or ``unchanged``.
        """
        stored = self.storage.stat(project, filename)
        current = self.index.get(filename)
        if stored is None:
            if not self.storage.read_only:
                self.storage.delete(project, filename + METADATA_SUFFIX)
            if current is not None and current.project == project:
                self.index.remove(filename)
                return "removed"
            return "unchanged"
        record = record_from_object(stored) or self._record_from_bytes(stored)
        if record is None:
            return "unchanged"
        if record.metadata_sha256 and self.storage.stat(project, filename + METADATA_SUFFIX) is None:
            record = record.replace(metadata_sha256=None)
        if current is not None and current.sha256 == record.sha256 and current.project == record.project:
            # The row is the same file: keep its whole summary, take what
            # changes after an upload (the yank) from storage.
            record = current.replace(
                yanked=record.yanked,
                yanked_reason=record.yanked_reason,
                metadata_sha256=record.metadata_sha256,
            )
        if record == current:
            return "unchanged"
        self.index.add(record)
        return "added" if current is None else "updated"

    def repair(self, grace: float = 0.0) -> int | None:
        """Settle every intent older than ``grace`` seconds. Returns how many, or
        None when another process is repairing right now (one at a time)."""
        with self.index.repair_lock() as mine:
            if not mine:
                return None
            done = 0
            for intent in self.index.open_intents(utcnow() - timedelta(seconds=grace)):
                try:
                    outcome = self.reconcile(intent.project, intent.filename)
                except InvalidUpload:
                    outcome = "skipped (invalid name)"
                LOG.info("repair: %s of %s left unfinished; index %s", intent.op, intent.filename, outcome)
                self.index.end_intent(intent.id)
                done += 1
            return done

    def scan_storage(self, progress: Callable[[int], None] | None = None) -> list[FileRecord]:
        """Index rows for everything in storage (companion metadata files excluded).

        A row of the index whose object storage still lists with the tag the
        row was read from is kept as it is, and so is an entry of storage's
        manifest (an index that has no such row, e.g. a new one): storage is
        not asked for that object's metadata again. ``progress`` is called
        with 1 for every object listed (for progress bars).
        """
        rows = {r.key: r for r in self.index.all_records() if r.storage_tag and r.key}
        # The index's own rows first: they are what this server knows now.
        manifest = {k: e for k, e in (self.storage.read_manifest() or {}).items() if k not in rows}
        known = {key: entry.tag for key, entry in manifest.items()}
        known.update((key, row.storage_tag) for key, row in rows.items())
        objects = []
        # Companion .metadata files only need to exist: no metadata round trips.
        for obj in self.storage.list_reusing(known, lambda name: not name.endswith(METADATA_SUFFIX)):
            objects.append(obj)
            if progress is not None:
                progress(1)
        names = {(o.project, o.filename) for o in objects}
        records = []
        for obj in objects:
            if (
                obj.filename.endswith(METADATA_SUFFIX)
                and (obj.project, obj.filename[: -len(METADATA_SUFFIX)]) in names
            ):
                continue
            has_companion = (obj.project, obj.filename + METADATA_SUFFIX) in names
            record = _unchanged_row(rows.get(obj.key), obj) or record_from_entry(manifest.get(obj.key), obj)
            if record is not None and has_companion and not record.metadata_sha256:
                # Read when its companion was missing (an upload cut short);
                # the companion written since is named in the object's metadata.
                record = None
            if record is None:
                record = self._record_of(obj, reused=known.get(obj.key) == obj.tag)
            if record is None:
                continue
            if record.metadata_sha256 and not has_companion:
                record = record.replace(metadata_sha256=None)
            records.append(record)
        return records

    def _record_of(self, obj: StoredObject, reused: bool = False) -> FileRecord | None:
        if reused and obj.tag:
            # Listed without metadata as known, yet neither row nor manifest
            # entry made a row of it: ask for its metadata before reading bytes.
            stored = self.storage.stat(obj.project, obj.filename)
            if stored is None:
                return None
            obj = stored
        return record_from_object(obj) or self._record_from_bytes(obj)

    def write_manifest(self, records: list[FileRecord] | None = None) -> int | None:
        """Write storage's manifest from ``records`` (default: the index's rows).

        Returns how many files it names (rows with a storage tag), or None when
        the storage keeps no manifest or is read-only. A later rebuild into an
        empty index takes these rows back without asking storage about them.
        Nothing is written when no row has a tag (0): an empty manifest saves
        nothing, and an older one can only ever match objects still listed.
        """
        entries = entries_of(self.index.all_records() if records is None else records)
        if not entries:
            return 0
        return len(entries) if self.storage.write_manifest(entries) else None

    def _record_from_bytes(self, obj: StoredObject) -> FileRecord | None:
        """A file whose storage metadata was lost: hash it and read its archive again."""
        try:
            dist = dists.parse_filename(obj.filename)
        except InvalidUpload:
            return None
        with self.storage.open(obj.project, obj.filename) as stream:
            spooled = SpooledUpload(stream, None, self.spool_dir)
        try:
            try:
                meta = dists.read_core_metadata(
                    spooled.path, dist, self.max_metadata_size, max_scan=self.max_archive_scan
                )
            except InvalidUpload:
                return None
            return FileRecord(
                project=obj.project,
                name=meta.name or dist.name,
                version=dist.version,
                filename=obj.filename,
                size=spooled.size,
                sha256=spooled.sha256.hexdigest(),
                md5=spooled.md5.hexdigest(),
                requires_python=meta.requires_python,
                summary=meta.summary,
                upload_time=obj.last_modified or utcnow(),
                key=obj.key,
                storage_tag=obj.tag,
                # Metadata without hashes (1.x before it stored them) still names the uploader.
                uploader=obj.metadata.get("uploader") or None,
            )
        finally:
            spooled.remove()

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Make the index match storage exactly. Returns the number of files.

        With ``db.graceful_reload`` the index is patched by a diff (rows added,
        changed, removed one by one) so it keeps serving during the rebuild;
        otherwise it is replaced in one change.
        """
        records = self.scan_storage(progress)
        for project in {r.project for r in records if r.uploader != UPSTREAM_UPLOADER}:
            self.index.mark_local(project)
        if self.graceful_reload:
            self.sync_index(records)
        else:
            self.index.replace_all(records)
        LOG.info("index rebuilt from storage: %d files", len(records))
        try:
            self.write_manifest(records)
        except Exception as exc:  # the index is rebuilt; the manifest only saves requests
            LOG.warning("index rebuilt, but the storage manifest was not written: %s", exc)
        return len(records)

    def sync_index(self, records: list[FileRecord]) -> tuple[int, int]:
        """Apply the difference between ``records`` and the index. Returns (changed, removed)."""
        current = {r.filename: r for r in self.index.all_records()}
        changed = removed = 0
        for record in records:
            row = current.pop(record.filename, None)
            # The tag is not part of equality, but a new one is worth keeping.
            if row != record or (row is not None and row.storage_tag != record.storage_tag):
                self.index.add(record)
                changed += 1
        for filename in current:
            self.index.remove(filename)
            removed += 1
        return changed, removed

    def sweep_spool_files(self, min_age: float = 5.0) -> int:
        """Remove upload spool files of killed processes (at start-up).

        Live ones are locked by their upload, so only dead ones go.
        """
        return spool.sweep_spool_files(self.spool_dir, min_age)

    def rebuild_if_empty(self) -> int | None:
        if self.index.count() == 0:
            return self.rebuild()
        return None
