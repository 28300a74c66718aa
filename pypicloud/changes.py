"""Deleting and yanking files, and the intent log every write runs under; mixed into
:class:`pypicloud.service.PackageIndex`.

Each write of a file touches storage and the index, which no transaction spans;
:meth:`ChangeRules._intent` records it first so that a crash or a failure at any
step is settled by the repair (docs/architecture.md, "Write protocol").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from .errors import FileNotFound, PypicloudError
from .events import DELETE, UNYANK, YANK, Event
from .models import FileRecord, Identity
from .records import METADATA_SUFFIX, record_to_metadata
from .releases import version_key
from .service_base import ServiceBase

# One logger for the whole service, whichever module a rule lives in: the name
# operators configure and search for.
LOG = logging.getLogger("pypicloud.service")


@dataclass
class OpenIntent:
    """The intent-log entry a write runs under (:meth:`ChangeRules._intent`).

    ``id`` is None when the index keeps no intent log; ``closed`` is set by a
    write that removed the entry itself (in the transaction of its index row).
    """

    id: str | None
    closed: bool = False


class ChangeRules(ServiceBase):
    """Delete, yank and the checks before a write request's body is read."""

    @contextlib.contextmanager
    def _intent(
        self, op: str, project: str, filename: str, begin: Callable[[], str | None] | None = None
    ) -> Iterator[OpenIntent]:
        """Run one storage-and-index write under an entry of the intent log.

        The entry is written before storage is touched and removed when the
        write succeeded (or failed with a 4xx, which changes nothing). After a
        5xx or a crash it stays, and :meth:`repair` settles the file later.
        ``begin`` writes the entry instead of ``begin_intent`` (an upload's
        also marks the project local); a write that removes the entry in its
        own last transaction sets ``closed`` on what this yields.
        """
        intent = OpenIntent(begin() if begin is not None else self.index.begin_intent(op, project, filename))
        try:
            yield intent
        except PypicloudError as exc:
            if intent.closed:
                raise
            if exc.status < 500 and intent.id is not None:
                self._end_intent(intent.id)
                raise
            self._renew_intent(intent.id, op, project, filename)
            raise
        except Exception:
            if not intent.closed:
                self._renew_intent(intent.id, op, project, filename)
            raise
        if intent.id is not None and not intent.closed:
            self._end_intent(intent.id)

    def _renew_intent(self, intent: str | None, op: str, project: str, filename: str) -> None:
        """After a failed write: a fresh intent, so the repair's grace period counts
        from the failure (a repair that ran while this write was under way may
        already have settled and removed the first one)."""
        if intent is None:
            return
        try:
            self.index.begin_intent(op, project, filename)
        except Exception:  # the index is down: the first intent (if still there) stands
            return
        self._end_intent(intent)

    def _end_intent(self, intent: str) -> None:
        try:
            self.index.end_intent(intent)
        except Exception as exc:  # storage and index agree: the repair finds nothing to do
            LOG.warning("could not close intent %s (the repair step will): %s", intent, exc)

    def delete_file(self, identity: Identity, project: str, filename: str) -> FileRecord:
        record = self.get_file(identity, project, filename, self.access.can_delete, "delete from")
        self.storage.check_writable()
        # Bytes first, then the row: a delete that fails half-way leaves a row
        # without bytes, which a retried delete (or the repair step) removes and
        # which an upload of the name replaces. The other order would leave
        # bytes without a row, that block the name and come back on a rebuild.
        with self._intent("delete", project, filename):
            self.storage.delete(project, filename)
            self.storage.delete(project, filename + METADATA_SUFFIX)
            self.index.remove(filename)
        LOG.info("%s deleted %s", identity.username, filename)
        self.events.publish(
            Event(DELETE, identity.username, project=project, version=record.version, filename=filename)
        )
        return record

    def delete_project(self, identity: Identity, project: str) -> list[FileRecord]:
        records = self.project_files(identity, project)
        self._require(self.access.can_delete, identity, project, "delete from")
        for record in records:
            self.delete_file(identity, project, record.filename)
        return records

    def release_files(self, identity: Identity, project: str, version: str) -> list[FileRecord]:
        """The files of one release (versions compared by PEP 440: ``1.0`` is ``1.0.0``); 404 if none."""
        wanted = version_key(version)
        records = [r for r in self.project_files(identity, project) if version_key(r.version) == wanted]
        if not records:
            raise FileNotFound(f"No release {version} of {project}")
        return records

    def delete_release(self, identity: Identity, project: str, version: str) -> list[FileRecord]:
        """Delete every file of one release, each by the write protocol of a file delete."""
        records = self.release_files(identity, project, version)
        self._require(self.access.can_delete, identity, project, "delete from")
        return [self.delete_file(identity, project, r.filename) for r in records]

    def set_release_yanked(
        self, identity: Identity, project: str, version: str, yanked: bool, reason: str | None = None
    ) -> list[FileRecord]:
        """Yank or un-yank every file of one release (PEP 592 yanks files; a release is its files)."""
        records = self.release_files(identity, project, version)
        return [self.set_yanked(identity, project, r.filename, yanked, reason) for r in records]

    def authorize_upload(self, identity: Identity, project: str | None = None, yank: bool = False) -> None:
        """401/403 before a write request's body is read, when the write must fail anyway.

        Parsing a multipart body costs CPU per part (and spool disk): a caller
        who may not write anywhere (with ``project``: to that project) is
        refused before that work. The full checks still run afterwards.
        """
        if yank:
            assert project is not None, "a yank names its project"
            self._require(self._may_yank, identity, project, "yank in")
        elif identity.token is not None and not identity.token.upload:
            raise self.deny(identity, "upload")
        elif project is not None:
            self._require(self.access.can_write, identity, canonicalize_name(project), "upload to")
        elif not identity.authenticated and not self.access.anonymous_may_write():
            raise self.deny(identity, "upload")

    refuse_early = authorize_upload  # the name before issue 13

    def _may_yank(self, identity: Identity, project: str) -> bool:
        # Tokens read and upload (SPEC section 8): changing a release's
        # state, like deleting, takes the user's password.
        return identity.token is None and self.access.can_write(identity, project)

    def set_yanked(
        self, identity: Identity, project: str, filename: str, yanked: bool, reason: str | None = None
    ) -> FileRecord:
        """Yank or un-yank a file (PEP 592); kept in storage metadata too, so it survives a rebuild."""
        record = self.get_file(identity, project, filename, self._may_yank, "yank in")
        self.storage.check_writable()
        updated = record.replace(yanked=yanked, yanked_reason=(reason or None) if yanked else None)
        stored = self.storage.stat(project, filename)
        if stored is None:
            raise FileNotFound(f"No such file: {filename}")
        with self._intent("yank", project, filename):
            self.storage.update_metadata(project, filename, record_to_metadata(updated))
            try:
                self.index.set_yanked(filename, yanked, updated.yanked_reason)
            except Exception:
                # Put storage back, so the error leaves nothing changed; if that
                # fails too the intent stays and the repair makes the index
                # follow storage.
                try:
                    self.storage.update_metadata(project, filename, stored.metadata)
                except Exception as exc:
                    LOG.warning("could not undo the yank of %s in storage: %s", filename, exc)
                raise
        self.events.publish(
            Event(
                YANK if yanked else UNYANK,
                identity.username,
                project=project,
                version=record.version,
                filename=filename,
                detail={"reason": updated.yanked_reason} if yanked else {},
            )
        )
        return updated
