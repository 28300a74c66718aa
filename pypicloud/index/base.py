"""The metadata index contract (SPEC section 7), called "the cache" in the ini.

The index holds one :class:`FileRecord` per stored file and answers every
listing query, so that serving ``/simple/`` never touches storage. It also holds
the change counter (bumped by every write; the basis of ETags and of
cross-process invalidation of in-memory caches) and the shared cache of signed
download URLs, so that every server process hands out the same URL.

Project names passed in are canonical (PEP 503); filenames are base names.
Implementations are shared by all request threads and must be thread-safe.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Self

from ..events import ChangeRows, Event
from ..models import FileRecord, ProjectSummary
from .eventlog import EventQuery
from .webhook_queue import WebhookQueue

if TYPE_CHECKING:
    from ..settings import Settings

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intent:
    """An open entry of the intent log: a write of one file that has not finished.

    ``op`` is ``upload``, ``delete`` or ``yank``; ``created`` is when the write
    began (UTC). The repair step makes the index row of ``filename`` agree with
    storage for every intent left open by a failed or killed writer.
    """

    id: str
    op: str
    project: str
    filename: str
    created: datetime


@dataclass(frozen=True)
class UploadView:
    """What an upload checks before it writes (:meth:`MetadataIndex.upload_view`).

    ``files``: every record of the project, ordered by filename; ``existing``:
    the record of the uploaded file's name, or None (it may name another project).
    """

    files: list[FileRecord]
    existing: FileRecord | None


class MetadataIndex(WebhookQueue, abc.ABC):
    """Abstract base of every metadata index backend.

    The webhook delivery queue's abstract methods come from
    :class:`~pypicloud.index.webhook_queue.WebhookQueue`.
    """

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Build the backend from :class:`pypicloud.settings.Settings` (``db.*`` keys).

        Create or migrate the schema here, so the index is ready to use.
        """

    @abc.abstractmethod
    def add(self, record: FileRecord) -> None:
        """Insert ``record``, replacing any record with the same filename. Bumps the counter."""

    @abc.abstractmethod
    def get(self, filename: str) -> FileRecord | None:
        """The record of one file by its filename, or None."""

    @abc.abstractmethod
    def remove(self, filename: str) -> bool:
        """Delete one record. Returns False if there was none. Bumps the counter when it removed one."""

    @abc.abstractmethod
    def files(self, project: str) -> list[FileRecord]:
        """Every record of one project, ordered by filename."""

    @abc.abstractmethod
    def projects(self) -> list[ProjectSummary]:
        """One summary per project that has at least one file, ordered by canonical name.

        ``name`` is the display name and ``summary`` the summary of the most
        recently uploaded file; ``last_modified`` its upload time.
        """

    @abc.abstractmethod
    def set_yanked(self, filename: str, yanked: bool, reason: str | None = None) -> bool:
        """Mark a file yanked (PEP 592) or not. Returns False if there is no such file."""

    @abc.abstractmethod
    def generation(self) -> int:
        """The change counter: a number that grows with every change to the records."""

    @abc.abstractmethod
    def all_records(self) -> Iterable[FileRecord]:
        """Every record (for rebuilds and diffs)."""

    @abc.abstractmethod
    def replace_all(self, records: Iterable[FileRecord]) -> None:
        """Make the index hold exactly ``records`` (a rebuild), as one change."""

    @abc.abstractmethod
    def count(self) -> int:
        """How many file records there are."""

    @abc.abstractmethod
    def get_url(self, key: str) -> tuple[str, datetime] | None:
        """A cached signed download URL for storage key ``key`` and its expiry (UTC), or None.

        A backend may forget a URL once it has expired.
        """

    @abc.abstractmethod
    def set_url(self, key: str, url: str, expires_at: datetime) -> None:
        """Remember a signed download URL for ``key`` until ``expires_at`` (UTC)."""

    @abc.abstractmethod
    def check_health(self) -> None:
        """Raise an exception with a clear message if the index is not usable now."""

    # The audit log (docs/audit.md) --------------------------------------------
    # Kept apart from the records: adding or pruning events never moves the
    # change counter, and a rebuild (replace_all) keeps them.
    @abc.abstractmethod
    def add_event(self, event: Event) -> None:
        """Append one event to the audit log, every field kept as given.

        ``detail`` is any JSON-able mapping; text may be any Unicode. Events are
        added as they happen, so the order they are added in is (up to clock
        differences between servers) the order of their ``at``.
        """

    @abc.abstractmethod
    def list_events(self, query: EventQuery) -> list[Event]:
        """The events ``query`` selects, newest first, at most ``query.limit``.

        Paging: the next page is the same query with ``before`` set to the id of
        the last event of this one. A backend may bound the work of one call
        (see its docstring); it never answers an event twice across pages.
        """

    @abc.abstractmethod
    def prune_events(self, older_than: datetime) -> int:
        """Delete the events whose ``at`` is before ``older_than`` (UTC); how many went."""

    # Intent log (the write protocol of docs/architecture.md) ---------------
    # Not abstract so that a backend without a log still runs (it then gets
    # no repair step), but every shipped backend implements all four, and the
    # contract suite checks them.
    def begin_intent(self, op: str, project: str, filename: str) -> str | None:
        """Record, durably and before storage is touched, that a write of one file begins.

        Returns an id for :meth:`end_intent`, or None when this backend keeps
        no intent log. Must not bump the change counter.
        """
        return None

    def end_intent(self, intent_id: str) -> None:
        """Remove one intent (the write finished, or the repair step settled it)."""

    def open_intents(self, older_than: datetime) -> list[Intent]:
        """Every intent created at or before ``older_than`` (UTC), oldest first."""
        return []

    @contextlib.contextmanager
    def repair_lock(self) -> Iterator[bool]:
        """Try (without waiting) to become the one process that repairs right now.

        Yields True when this caller holds the lock until the block ends, False
        when another process (sharing this index) holds it. The default only
        excludes threads of this process.
        """
        lock = _PROCESS_REPAIR_LOCKS.setdefault(id(self), threading.Lock())
        got = lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                lock.release()

    def close(self) -> None:
        """Release connections (at shutdown and in tests)."""

    # An upload's index work (pypicloud/ingest.py) --------------------------
    # The defaults compose the calls above, so that a backend that does not
    # override them works as it always did; the SQL index overrides each with
    # one transaction (one read, then two writes per upload).
    def upload_view(self, project: str, filename: str) -> UploadView:
        """Read what an upload of ``filename`` to ``project`` checks, at once.

        The same answers as :meth:`files` (``project``) and :meth:`get`
        (``filename``), which a backend may read together.
        """
        records = self.files(project)
        existing = next((r for r in records if r.filename == filename), None)
        return UploadView(records, existing if existing is not None else self.get(filename))

    def begin_upload(self, project: str, filename: str) -> str | None:
        """Before an upload's bytes are stored: :meth:`mark_local` ``project`` and
        :meth:`begin_intent` ``("upload", project, filename)``, durably.

        Returns the intent's id for :meth:`finish_upload` (None: no intent log).
        A backend may do both in one transaction, and skip the mark when it
        knows the project is local already (the mark is never undone).
        """
        self.mark_local(project)
        return self.begin_intent("upload", project, filename)

    def finish_upload(self, record: FileRecord, intent_id: str | None, rows: ChangeRows) -> bool:
        """After an upload's bytes are stored: :meth:`add` ``record`` and
        :meth:`end_intent` ``intent_id``, and write ``rows`` with them if the backend can.

        ``rows`` are what records the upload (audit events, webhook deliveries,
        see :meth:`pypicloud.events.EventBus.publish_with`). Returns True when
        they were written in the record's own transaction, False when they were
        not written here (the caller writes them by :meth:`add_event` and
        :meth:`enqueue_deliveries`, as the default does not write them at all).
        Raises only when the record may not be written; the intent then stays
        for the repair step. An intent that cannot be removed once the record
        is written is logged and left to the repair step.
        """
        self.add(record)
        if intent_id is not None:
            try:
                self.end_intent(intent_id)
            except Exception as exc:  # storage and index agree: the repair finds nothing to do
                LOG.warning("could not close intent %s (the repair step will): %s", intent_id, exc)
        return False

    # Private projects (dependency confusion, SPEC section 9) -------------
    # Not abstract, so that an older third-party backend keeps working: it
    # then only protects projects that have a local file right now.
    def mark_local(self, project: str) -> None:
        """Remember for good that ``project`` had a file published here.

        Called before every local upload is stored; survives the deletion of
        every file and rebuilds. Must be idempotent.
        """

    def was_local(self, project: str) -> bool:
        """True when :meth:`mark_local` was ever called for ``project``."""
        return False

    # Shared counters (login throttling, web session generations) ----------
    # The defaults count in this process only; the SQL, Redis and DynamoDB
    # backends share them with every process on the same database.
    def counter(self, name: str) -> int:
        """The value of the shared counter ``name`` (0 when unknown or expired)."""
        with _LOCAL_LOCK:
            value, expires = _local_counters(self).get(name, (0, None))
            return 0 if expires is not None and expires <= time.time() else value

    def incr_counter(self, name: str, amount: int = 1, ttl: int | None = None) -> int:
        """Add ``amount`` to counter ``name`` and return the new value.

        ``ttl``: the counter may be forgotten ``ttl`` seconds after this call
        (None: kept for good). Names are at most 200 characters.
        """
        with _LOCAL_LOCK:
            counters = _local_counters(self)
            now = time.time()
            value, expires = counters.get(name, (0, None))
            if expires is not None and expires <= now:
                value = 0
            value += amount
            counters[name] = (value, now + ttl if ttl is not None else None)
            return value


_LOCAL_LOCK = threading.Lock()


def _local_counters(index: MetadataIndex) -> dict[str, tuple[int, float | None]]:
    counters = index.__dict__.get("_ppc_local_counters")
    if counters is None:
        counters = index.__dict__["_ppc_local_counters"] = {}
    return counters


_PROCESS_REPAIR_LOCKS: dict[int, threading.Lock] = {}
