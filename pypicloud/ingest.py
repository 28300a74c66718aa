"""Storing a distribution file (SPEC section 5), mixed into :class:`pypicloud.service.PackageIndex`.

An upload is spooled (digests computed), its name, version and archive
metadata checked, then written by the write protocol (docs/architecture.md):
intent, bytes, companion ``.metadata`` file, index row. Pull-through caching
stores upstream files through :meth:`IngestRules._store` too.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import BinaryIO

from packaging.utils import canonicalize_name

from . import dists
from .changes import OpenIntent
from .errors import FileExists, InvalidUpload, StorageConflict
from .events import UPLOAD, ChangeRows, Event
from .models import FileRecord, Identity, utcnow
from .records import METADATA_SUFFIX, record_from_object, record_to_metadata
from .results import UploadResult
from .service_base import ServiceBase
from .spool import SpooledUpload, spooled

# One logger for the whole service, whichever module a rule lives in: the name
# operators configure and search for.
LOG = logging.getLogger("pypicloud.service")


class IngestRules(ServiceBase):
    """Uploads and the storing of a spooled file, races included."""

    def upload(
        self,
        identity: Identity,
        *,
        name: str | None,
        version: str | None,
        filename: str | None,
        content: BinaryIO | SpooledUpload | None,
        digests: dict[str, str] | None = None,
        name_from_archive: bool = False,
    ) -> UploadResult:
        """Store one distribution file following every rule of SPEC section 5.

        ``name_from_archive``: the display name is the archive's own metadata name
        (when it matches the project), for callers that only know the filename.
        ``content``: a stream, or the spool the form parser already wrote (then
        it is used as it is, and removed here like one spooled here).
        """
        project = None
        if name:
            with self.anonymous_first(identity, "upload"):
                project = dists.check_project_name(name.strip())
        if project is None or name is None:
            raise self.refusal(identity, "upload", InvalidUpload("Missing form field 'name'"))
        self._require(self.access.can_write, identity, project, "upload to")
        if not version:
            raise InvalidUpload("Missing form field 'version'")
        if content is None or not filename:
            raise InvalidUpload("Missing form field 'content' (the file)")
        self.storage.check_writable()
        dists.check_version(version.strip())
        dist = dists.parse_filename(filename)
        dists.check_filename_matches(dist, name.strip(), version.strip())
        # The disk's wait for the spool's bytes overlaps the checks and index work below.
        if isinstance(content, SpooledUpload):
            self._sync_early(content)
        # One read answers both the release-slot check and "is this name taken".
        view = self.index.upload_view(project, dist.filename)
        self._check_release_slot(dist, view.files)
        spool = spooled(content, self.max_upload_size, self.spool_dir)
        try:
            self._sync_early(spool)
            spool.check_digests(digests or {})
            result = self._store(
                project=project,
                name=None if name_from_archive else name.strip(),
                dist=dist,
                spooled=spool,
                uploader=identity.username,
                may_overwrite=lambda: self.access.can_overwrite(identity, project),
                pypi_rules=True,
                local=True,
                lookup=lambda: view.existing,
            )
        finally:
            spool.remove()
        if result.created:
            LOG.info("%s uploaded %s (%d bytes)", identity.username, filename, result.record.size)
        return result

    def _sync_early(self, spool: SpooledUpload) -> None:
        """Start the fsync of the spool's bytes now (once), when storage will publish
        the spool file itself: it waits for this one (``put_file``'s ``synced``)
        instead of doing its own, still before the file gets its name."""
        if not spool.sync_started and self.storage.publishes_in_place(spool.path):
            spool.sync_soon()

    def upload_file(
        self,
        identity: Identity,
        filename: str | None,
        content: BinaryIO | SpooledUpload | None,
        digests: dict[str, str] | None = None,
    ) -> UploadResult:
        """An upload of nothing but a file (the browser form): project and version
        come from the filename, the display name from the archive's metadata."""
        if not filename:
            raise InvalidUpload("No file chosen")
        with self.anonymous_first(identity, "upload"):
            dist = dists.parse_filename(filename)
        return self.upload(
            identity,
            name=dist.name,
            version=dist.version,
            filename=filename,
            content=content,
            name_from_archive=True,
            digests=digests,
        )

    def _store(
        self,
        *,
        project: str,
        name: str | None,
        dist: dists.DistFilename,
        spooled: SpooledUpload,
        uploader: str | None,
        may_overwrite: Callable[[], bool],
        yanked: bool = False,
        yanked_reason: str | None = None,
        upload_time: datetime | None = None,
        pypi_rules: bool = False,
        local: bool = False,
        lookup: Callable[[], FileRecord | None] | None = None,
    ) -> UploadResult:
        """Validate a spooled file's archive, then store and index it (SPEC section 5).

        Shared by uploads and pull-through caching. ``name``: the display name (None: the
        archive's own if it matches the project). ``local``: an upload here (the project is
        marked local, the upload published); ``lookup``: the index's record of the name.
        """
        filename = dist.filename
        if spooled.size == 0:
            raise InvalidUpload(f"{filename} is empty")
        meta = dists.read_core_metadata(
            spooled.path, dist, self.max_metadata_size, max_scan=self.max_archive_scan
        )
        if pypi_rules:  # uploads only (``pypi_rules``): upstream's files were accepted there
            dists.check_upload_metadata(meta, dist)
        if name is None:
            same = meta.name and canonicalize_name(meta.name) == project
            name = meta.name if same and meta.name else dist.name
        sha256 = spooled.sha256.hexdigest()
        stored = lookup() if lookup else self.index.get(filename)
        existing = self._existing(filename, stored, sha256, may_overwrite, project if local else None)
        if isinstance(existing, UploadResult):
            return existing
        metadata_sha256 = None
        if meta.raw and meta.reliable:
            metadata_sha256 = hashlib.sha256(meta.raw).hexdigest()
        record = FileRecord(
            project=project,
            name=name,
            version=dist.version,
            filename=filename,
            size=spooled.size,
            sha256=sha256,
            md5=spooled.md5.hexdigest(),
            requires_python=meta.requires_python,
            summary=meta.summary,
            upload_time=upload_time or utcnow(),
            uploader=uploader,
            yanked=yanked,
            yanked_reason=(yanked_reason or None) if yanked else None,
            metadata_sha256=metadata_sha256,
            key=self.storage.key_for(project, filename),
        )
        raw = meta.raw if metadata_sha256 else None
        return self._write(record, spooled, raw, overwrite=existing, local=local)

    def _existing(
        self,
        filename: str,
        existing: FileRecord | None,
        sha256: str,
        may_overwrite: Callable[[], bool],
        mark_local: str | None,
    ) -> UploadResult | bool:
        """The stored file of this name (``existing``, the index's record): the same
        bytes (a re-run: its result), or whether ours may replace it (True), or no
        file (False); 409 when it may not. ``mark_local``: the project an upload goes
        to (marked local when the same bytes are found)."""
        if existing is None:
            return False
        # A row whose bytes are gone is what a delete that failed half-way
        # leaves (bytes first, then the row): the name is free again.
        if self.storage.stat(existing.project, filename) is None:
            return False
        if existing.sha256 == sha256:
            if mark_local is not None:
                # The same bytes are here (maybe cached from upstream): uploaded now,
                # so upstream never gets into the project again.
                self.index.mark_local(mark_local)
            return UploadResult(existing, False)
        if not may_overwrite():
            raise FileExists(f"File already exists: {filename}")
        return True

    def _write(
        self,
        record: FileRecord,
        spooled: SpooledUpload,
        metadata_raw: bytes | None,
        *,
        overwrite: bool,
        local: bool = False,
    ) -> UploadResult:
        """Store a validated file and index it by the write protocol.

        The write protocol (docs/architecture.md): intent, bytes, companion
        metadata file, index row. Nothing is deleted when a later step fails:
        once the bytes are stored another request may already have answered
        200 for them (an identical upload that lost the race); a retry or the
        repair step finishes the row instead. ``local``: an upload here (see
        :meth:`_store`): the project is marked local with the intent, and the
        upload's event rides along with the row (``EventBus.publish_with``).
        """
        project, filename = record.project, record.filename
        metadata = record_to_metadata(record)
        begin = (lambda: self.index.begin_upload(project, filename)) if local else None
        companion = None
        if metadata_raw is not None and record.metadata_sha256 is not None:
            # Written after the file itself (never by the loser of a race, so it
            # never replaces the winner's metadata).
            companion = (filename + METADATA_SUFFIX, metadata_raw, {"sha256": record.metadata_sha256})
        with self._intent("upload", project, filename, begin) as intent:
            try:
                # A storage that publishes the spool file itself waits for its fsync
                # (maybe started early, :meth:`_sync_early`) before naming it.
                synced = spooled.wait_synced
                self.storage.put_file(
                    project,
                    filename,
                    spooled.path,
                    metadata,
                    overwrite=overwrite,
                    synced=synced,
                    companion=companion,
                )
            except StorageConflict:
                return self._lost_race(record, metadata_raw)
            self._index_upload(record, intent, local)
        return UploadResult(record, True)

    def _index_upload(self, record: FileRecord, intent: OpenIntent, publish: bool) -> None:
        """The index row, the end of the intent and (``publish``) the upload's event, together."""

        def change(rows: ChangeRows) -> bool:
            carried = self.index.finish_upload(record, intent.id, rows)
            intent.closed = True
            return carried

        if not publish:
            change(ChangeRows())
            return
        event = Event(
            UPLOAD,
            record.uploader,
            project=record.project,
            version=record.version,
            filename=record.filename,
            detail={"size": record.size, "sha256": record.sha256},
        )
        self.events.publish_with(event, change)

    @staticmethod
    def _check_release_slot(dist: dists.DistFilename, records: list[FileRecord]) -> None:
        """Refuse a file that would be a second copy of a stored one under another spelling.

        ``demo-1.0.0.tar.gz`` beside ``demo-1.0.tar.gz`` is a second sdist of one
        release (``1.0`` and ``1.0.0`` are one version): installers would pick either,
        so it would replace a released file without ``allow_overwrite``.
        ``records``: the project's files.
        """
        for record in records:
            if dists.same_release_slot(dist, record.filename):
                kind = "sdist" if dist.kind == "sdist" else "wheel with these tags"
                raise InvalidUpload(
                    f"{dist.filename} would be a second {kind} of release {record.version}, "
                    f"beside {record.filename} (versions {dist.version} and {record.version} "
                    f"are one release, as on PyPI); delete {record.filename} to replace it"
                )

    def _lost_race(self, ours: FileRecord, metadata_raw: bytes | None) -> UploadResult:
        """Storage already holds the name: 200 if it is our bytes (after making sure
        the index lists them), else 409.

        The request that stored the bytes may have died, or failed, before
        writing the index row; answering 200 without the row would acknowledge
        a file nobody can see (SPEC section 11).
        """
        project, filename = ours.project, ours.filename
        stored = self.storage.stat(project, filename)
        if stored is None or stored.metadata.get("sha256") != ours.sha256:
            raise FileExists(f"File already exists: {filename}")
        current = self.index.get(filename)
        if current is not None and current.sha256 == ours.sha256:
            return UploadResult(current, False)
        record = record_from_object(stored)
        if record is None:
            raise FileExists(f"File already exists: {filename}")
        # Storage keeps a shortened summary; ours is the same file's, whole.
        record = record.replace(summary=ours.summary)
        if record.metadata_sha256:
            if metadata_raw is not None and ours.metadata_sha256 == record.metadata_sha256:
                if self.storage.stat(project, filename + METADATA_SUFFIX) is None:
                    self.storage.put_companion(
                        project, filename + METADATA_SUFFIX, metadata_raw, {"sha256": record.metadata_sha256}
                    )
            elif self.storage.stat(project, filename + METADATA_SUFFIX) is None:
                record = record.replace(metadata_sha256=None)
        self.index.add(record)
        return UploadResult(record, False)
