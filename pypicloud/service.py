"""PackageIndex: every rule of the index in one place.

Views call one method each; the service takes its three backends as
constructor arguments and never sees a request. Permission checks happen here
(through the access backend) so that no view can forget one.

The class is the one façade; its rules are grouped in modules whose classes it
is made of: :mod:`pypicloud.fallback` (upstream fallback and pull-through),
:mod:`pypicloud.ingest` (uploads), :mod:`pypicloud.changes` (delete, yank, the
intent log), :mod:`pypicloud.rebuild` (repair, rebuild from storage) and
:mod:`pypicloud.api_requests` (whole requests of the HTTP APIs). Its values are
in :mod:`pypicloud.results`, the storage-metadata codec in
:mod:`pypicloud.records`, upload spooling in :mod:`pypicloud.spool`.
``access/base.py`` (permission rules of every access backend) and ``dists.py``
(what a distribution file must be) are pure rules this service applies.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from .access.base import AccessBackend
from .api_requests import ApiRequests
from .browse import ProjectList, browse
from .changes import ChangeRules
from .concurrency import SingleFlight
from .errors import FileNotFound, Forbidden, InvalidUpload, ProjectNotFound, PypicloudError, Unauthorized
from .events import EventBus
from .fallback import FallbackRules
from .index.base import MetadataIndex
from .ingest import IngestRules
from .metadata_files import DEFAULT_METADATA_CACHE_MB, MetadataFiles
from .models import ANONYMOUS, FileRecord, Identity, ProjectSummary, Redirect, utcnow
from .pagecache import PageCache
from .project_info import ReleaseDetails
from .rebuild import RebuildRules
from .records import (
    METADATA_SUFFIX,
    SUMMARY_IN_STORAGE,
    parse_upload_time,
    record_from_object,
    record_to_metadata,
)
from .release_details import ReleaseDetailsReader
from .releases import ProjectPage, project_page
from .results import Download, FileLinks, ProjectListing, UploadForm, UploadResult
from .spool import CHUNK, SPOOL_PREFIX, SpooledUpload
from .storage.base import Storage
from .upstream import UPSTREAM_UPLOADER, FallbackPolicy, UpstreamClient, UpstreamFile

LOG = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_Spooled = SpooledUpload  # the name before issue 13


class PackageIndex(ApiRequests, FallbackRules, IngestRules, ChangeRules, RebuildRules):
    """The package index service."""

    def __init__(
        self,
        storage: Storage,
        index: MetadataIndex,
        access: AccessBackend,
        *,
        max_upload_size: int | None = None,
        stream_files: bool = False,
        redirect_urls: bool = True,
        max_metadata_size: int = 4 * 1024 * 1024,
        metadata_cache_bytes: int = DEFAULT_METADATA_CACHE_MB * 1024 * 1024,
        spool_dir: str | None = None,
        max_archive_scan: int = 64 * 1024 * 1024,
        graceful_reload: bool = False,
        fallback: FallbackPolicy | None = None,
        upstream: UpstreamClient | None = None,
        events: EventBus | None = None,
    ):
        self.storage = storage
        # Every change is published here (the audit log and webhooks listen).
        self.events = events if events is not None else EventBus()
        self.index = index
        self.access = access
        self.max_upload_size = max_upload_size
        self.stream_files = stream_files
        self.redirect_urls = redirect_urls
        self.max_metadata_size = max_metadata_size
        self.spool_dir = spool_dir
        # How far into an sdist we look for PKG-INFO (bounds decompression work).
        self.max_archive_scan = max_archive_scan
        self.graceful_reload = graceful_reload
        # File records by filename, valid while the change counter stands:
        # downloads and .metadata requests then cost no index query (the
        # counter read is a memory read on SQLite, one round trip elsewhere).
        self._records = PageCache(max_entries=8192)
        # Signed URLs read from (or put into) the index's shared cache, by key:
        # a warm redirect then asks the index nothing either.
        self._urls: dict[str, Redirect] = {}
        # Upstream fallback (SPEC section 9): without a client it is off, whatever the policy.
        self.fallback = fallback if upstream is not None and fallback is not None else FallbackPolicy()
        self.upstream = upstream if self.fallback.mode != "none" else None
        self._fetches = SingleFlight()
        # .metadata bytes checked against their sha256, kept while storage says unchanged.
        self._metadata_files = MetadataFiles(storage, max_metadata_size, metadata_cache_bytes)
        # Release metadata for project pages, by file and sha256 (immutable bytes).
        self._details = ReleaseDetailsReader(storage, max_metadata_size, max_archive_scan, spool_dir)

    @staticmethod
    def deny(identity: Identity, what: str) -> PypicloudError:
        if not identity.authenticated:
            return Unauthorized(f"Login required to {what}")
        return Forbidden(f"User {identity.username!r} may not {what}")

    def refusal(self, identity: Identity, what: str, error: PypicloudError) -> PypicloudError:
        """The error to raise for a bad request: an anonymous caller hears 401 first.

        pypicloud 1.x checked the login before the request's fields, so a client
        without credentials is asked for them (401) before it is told what is
        wrong with its request (400/404). This is the one place of that rule.
        """
        if not identity.authenticated:
            return self.deny(identity, what)
        return error

    @contextlib.contextmanager
    def anonymous_first(
        self, identity: Identity, what: str, errors: tuple[type[PypicloudError], ...] = (InvalidUpload,)
    ) -> Iterator[None]:
        """Run a check whose ``errors`` become 401 for an anonymous caller (:meth:`refusal`)."""
        try:
            yield
        except errors as exc:
            raise self.refusal(identity, what, exc) from None

    def _require(
        self, check: Callable[[Identity, str], bool], identity: Identity, project: str, what: str
    ) -> None:
        if not check(identity, project):
            raise self.deny(identity, f"{what} {project!r}")

    def is_public(self, project: str) -> bool:
        """May an anonymous caller read the project (so shared caches may keep its answers)?"""
        return self.access.can_read(ANONYMOUS, project)

    def generation(self) -> int:
        """The index's change counter: what rendered pages and the JSON documents are valid for."""
        return self.index.generation()

    def access_version(self) -> int:
        """The access data's version: pages that hide unreadable projects depend on it."""
        return self.access.data_version()

    def projects(self, identity: Identity) -> list[ProjectSummary]:
        """Every project the caller may read (others are absent, SPEC section 4)."""
        return [p for p in self.index.projects() if self.access.can_read(identity, p.project)]

    def browse_projects(
        self, identity: Identity, *, query: str = "", sort: str = "name", page: int = 1
    ) -> ProjectList:
        """One page of the projects the caller may read, searched by name and summary."""
        return browse(self.projects(identity), query=query, sort=sort, page=page)

    def require_read(self, identity: Identity, project: str) -> None:
        self._require(self.access.can_read, identity, project, "read")

    def url_epoch(self) -> tuple[int, ...]:
        """A cache-key part that changes before signed URLs put into pages expire.

        Only needed when index pages carry signed storage URLs
        (``storage.redirect_urls = false``); otherwise pages hold stable links.
        """
        lifetime = self.storage.url_lifetime()
        if self.redirect_urls or self.stream_files or lifetime is None:
            return ()
        step = max(1, int(lifetime[1]) // 2)
        return (int(utcnow().timestamp()) // step,)

    def file_links(self, records: list[FileRecord]) -> FileLinks:
        """Where index pages send clients for these files: this server, or storage directly."""
        urls: dict[str, str] = {}
        if not self.redirect_urls and not self.stream_files:
            for record in records:
                redirect = self.storage_url(record.project, record.filename)
                if redirect is not None:
                    urls[record.filename] = redirect.url
        direct = bool(records) and records[0].filename in urls
        return FileLinks(urls, offers_metadata=not direct)

    def project_files(self, identity: Identity, project: str) -> list[FileRecord]:
        """Files of one project: 404 if unknown, 401/403 if not readable."""
        records = self._visible(project, self.index.files(project))
        if not records:
            raise ProjectNotFound(f"No such project: {project}")
        self._require(self.access.can_read, identity, project, "read")
        return records

    def has_project(self, project: str) -> bool:
        """True while the project has a file stored here."""
        return bool(self.index.files(project))

    def project_page(self, identity: Identity, project: str) -> ProjectPage:
        """The web UI's view of one project: releases by PEP 440, the latest, what the caller may do."""
        records = self.project_files(identity, project)
        page = project_page(
            project,
            records,
            may_write=self.access.can_write(identity, project),
            may_delete=self.access.can_delete(identity, project),
        )
        if page.latest is not None:
            page = page.replace(details=self.release_details(page.latest.files))
        return page

    # Web UI helpers (views/web) -------------------------------------------------
    def file_count(self) -> int:
        return self.index.count()

    def recent_uploads(self, identity: Identity, limit: int = 10) -> list[FileRecord]:
        """The newest ``limit`` files of the projects the caller may read, newest first."""
        rows = sorted(self.index.projects(), key=lambda p: p.last_modified or _EPOCH, reverse=True)
        found: list[FileRecord] = []
        for row in rows:
            # A project's last upload is its newest file: past the oldest kept, nothing newer follows.
            if len(found) >= limit and (row.last_modified or _EPOCH) < found[-1].upload_time:
                break
            if self.access.can_read(identity, row.project):
                found.extend(self._visible(row.project, self.index.files(row.project)))
                found.sort(key=lambda r: r.upload_time, reverse=True)
                del found[limit:]
        return found

    def release_details(self, files: tuple[FileRecord, ...] | list[FileRecord]) -> ReleaseDetails | None:
        """The core metadata (README, license, URLs...) of a release, read from storage
        once per file and kept (files never change)."""
        return self._details.details(files)

    def get_file(
        self,
        identity: Identity,
        project: str,
        filename: str,
        action: Callable[[Identity, str], bool] | None = None,
        what: str = "read",
    ) -> FileRecord:
        record = self._cached_record(filename)
        if record is None or record.project != project:
            raise FileNotFound(f"No such file: {filename}")
        if record.uploader == UPSTREAM_UPLOADER and filename not in {
            r.filename for r in self._visible(project, self.index.files(project))
        }:
            raise FileNotFound(f"No such file: {filename}")  # upstream's, in a private project
        self._require(action or self.access.can_read, identity, project, what)
        return record

    def _cached_record(self, filename: str) -> FileRecord | None:
        # The counter is read first: a record cached under a counter value was
        # read when the index was at least that new.
        generation = self.index.generation()
        hit: tuple[FileRecord | None] | None = self._records.get(filename, generation)
        if hit is None:
            hit = (self.index.get(filename),)
            self._records.put(filename, generation, hit)
        return hit[0]

    def download(
        self, identity: Identity, project: str, filename: str, *, stored_only: bool = False
    ) -> Download:
        """Where the bytes of a file come from: a (reused) signed URL or a stream.

        A file listed upstream but not stored here is fetched, verified and
        stored first (pull-through), or redirected to upstream for a caller not
        in ``pypi.cache_update``. ``stored_only``: never ask upstream (a file not
        stored here is :class:`FileNotFound`; the fast lane leaves that work to
        the full path, which then asks upstream once).
        """
        found = self._found(identity, project, filename, stored_only)
        if isinstance(found, UpstreamFile):
            if not self.may_update_cache(identity):
                if self.fallback.mode == "cache" and not self.storage.read_only:
                    # pypicloud 1.x: 401/403 for a caller outside pypi.cache_update.
                    raise self.deny(identity, f"fetch {filename!r} from the upstream index")
                # A read-only storage cannot be filled: the redirect behaviour.
                return Download(None, Redirect(found.url))
            found = self._cache_from_upstream(project, found)
        record = found
        # Backends that never hand out URLs (files on disk) skip the URL cache lookup.
        if self.stream_files or not self.storage.hands_out_urls:
            return Download(record)
        return Download(record, self.storage_url(record.project, record.filename))

    def storage_url(self, project: str, filename: str) -> Redirect | None:
        """A storage URL for a file, reusing a cached signed URL while it has time left.

        The cache lives in the index so every process hands out the same URL
        and clients' HTTP caches hit (SPEC section 6).
        """
        # Backends that sign no expiring URLs: the cache keeps public ones a day.
        expire_after, buffer_time = self.storage.url_lifetime() or (86400, 600)
        key = self.storage.key_for(project, filename)
        left = timedelta(seconds=buffer_time)
        now = utcnow()
        known = self._urls.get(key)
        if known is not None and known.expires_at is not None and known.expires_at - now > left:
            return known
        cached = self.index.get_url(key)
        if cached is not None and cached[1] - now > left:
            return self._remember_url(key, Redirect(cached[0], cached[1]))
        redirect = self.storage.download_url(project, filename, expire_after)
        if redirect is not None and redirect.expires_at is not None:
            self.index.set_url(key, redirect.url, redirect.expires_at)
            self._remember_url(key, redirect)
        return redirect

    def _remember_url(self, key: str, redirect: Redirect) -> Redirect:
        if len(self._urls) >= 8192:
            self._urls.clear()  # bounded; the index still has them all
        self._urls[key] = redirect
        return redirect

    def open_file(self, record: FileRecord, offset: int = 0, length: int | None = None) -> BinaryIO:
        return self.storage.open(record.project, record.filename, offset, length)

    def _found(
        self, identity: Identity, project: str, filename: str, stored_only: bool
    ) -> FileRecord | UpstreamFile:
        if stored_only:
            return self.get_file(identity, project, filename)
        return self._stored_or_upstream(identity, project, filename)

    def core_metadata(
        self, identity: Identity, project: str, filename: str, *, stored_only: bool = False
    ) -> tuple[FileRecord, bytes]:
        """The PEP 658 metadata file of a distribution.

        For an upstream file not stored here, upstream's metadata file is passed
        on (verified against the sha256 its page gives; nothing is stored), unless
        ``stored_only`` (as for :meth:`download`). A stored one is read and checked
        once, then served from memory while storage says it is unchanged
        (:mod:`pypicloud.metadata_files`).
        """
        found = self._found(identity, project, filename, stored_only)
        if isinstance(found, UpstreamFile):
            return self._upstream_metadata(project, found)
        record = found
        if not record.metadata_sha256:
            raise FileNotFound(f"No metadata for {filename}")
        data = self._metadata_files.read(project, filename, record.metadata_sha256)
        if data is None:
            # Companions are not forced to disk (Storage.put_companion): one a
            # crash damaged is missing, as if never written, until a rebuild.
            LOG.warning("%s%s does not match its sha256; not served", filename, METADATA_SUFFIX)
            raise FileNotFound(f"No metadata for {filename}")
        return record, data

    def require_admin(self, identity: Identity, what: str) -> None:
        if not identity.is_admin:
            raise self.deny(identity, what)

    def health_report(self, identity: Identity) -> tuple[bool, dict[str, Any]]:
        """``/health``: whether every backend is up, and what the caller may see of it.

        Backend names, paths and error texts are for admins only (with their
        password, not a token); everyone else sees the overall state.
        """
        report = self.health()
        ok = all(part["ok"] for part in report.values())
        status = {"status": "ok" if ok else "unavailable"}
        if not (identity.authenticated and identity.is_admin and identity.token is None):
            return ok, status
        return ok, {**status, **report}

    def health(self) -> dict[str, dict[str, Any]]:
        report = {}
        for name, backend in (("storage", self.storage), ("index", self.index), ("access", self.access)):
            try:
                backend.check_health()
                report[name] = {"ok": True, "backend": type(backend).__name__}
            except Exception as exc:  # any failure is reported, never raised
                report[name] = {
                    "ok": False,
                    "backend": type(backend).__name__,
                    "error": str(exc) or type(exc).__name__,
                }
        return report


# Every name importable from here before the split (issue 13) still is.
__all__ = [
    "ANONYMOUS",
    "CHUNK",
    "METADATA_SUFFIX",
    "SPOOL_PREFIX",
    "SUMMARY_IN_STORAGE",
    "Download",
    "FileLinks",
    "PackageIndex",
    "ProjectListing",
    "UploadForm",
    "UploadResult",
    "parse_upload_time",
    "record_from_object",
    "record_to_metadata",
]
