"""PackageIndex: every rule of the index in one place.

Views call one method each; the service takes its three backends as
constructor arguments and never sees a request. Permission checks happen here
(through the access backend) so that no view can forget one.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from packaging.utils import canonicalize_name

from . import dists, tempfiles
from .access.base import AccessBackend
from .browse import ProjectList, browse
from .errors import (
    FileExists,
    FileNotFound,
    Forbidden,
    InvalidUpload,
    ProjectNotFound,
    PypicloudError,
    StorageConflict,
    Unauthorized,
    UploadTooLarge,
)
from .index.base import MetadataIndex
from .models import ANONYMOUS, FileRecord, Identity, ProjectSummary, Redirect, StoredObject, utcnow
from .pagecache import PageCache
from .project_info import DetailsCache, ReleaseDetails, metadata_sources
from .releases import ProjectPage, project_page, version_key
from .storage.base import Storage
from .upstream import (
    UPSTREAM_UPLOADER,
    FallbackPolicy,
    SingleFlight,
    UpstreamClient,
    UpstreamError,
    UpstreamFile,
)

LOG = logging.getLogger(__name__)
CHUNK = 1024 * 1024
METADATA_SUFFIX = ".metadata"
SPOOL_PREFIX = "ppc-upload-"
SUMMARY_IN_STORAGE = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class UploadResult:
    record: FileRecord
    created: bool  # False when the identical file was already stored (a re-run)


@dataclass(frozen=True)
class Download:
    """How to answer a download: a URL to redirect to, or a record to stream.

    ``record`` is None only for a redirect to an upstream file (SPEC section 9).
    """

    record: FileRecord | None
    redirect: Redirect | None = None


@dataclass(frozen=True)
class ProjectListing:
    """What a project page shows (SPEC sections 4 and 9).

    ``records`` are the files stored here; ``upstream`` the files of the upstream
    page that are not stored here (empty without fallback). ``link_upstream``:
    those files are linked at upstream itself (the redirect behaviour) instead of
    at this server (pull-through caching). ``redirect``: answer with a redirect
    to this upstream page instead of a page. ``cache_key``: what, besides the
    index's change counter, the rendered page depends on; None when it must not
    be cached (upstream could not be asked and local files stand in).
    """

    project: str
    records: list[FileRecord]
    upstream: tuple[UpstreamFile, ...] = ()
    name: str | None = None
    link_upstream: bool = False
    redirect: str | None = None
    cache_key: tuple | None = ()


class _Spooled:
    """An upload copied to a private temp file while its digests are computed."""

    def __init__(self, source: BinaryIO, limit: int | None, directory: str | None):
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()
        self.blake2 = hashlib.blake2b(digest_size=32)
        self.size = 0
        directory = directory or tempfile.gettempdir()
        tempfiles.sweep(directory, lambda name: name.startswith(SPOOL_PREFIX))
        fd, self.path = tempfile.mkstemp(prefix=SPOOL_PREFIX, dir=directory)
        # Locked (and kept open) until removed: the spool file of a killed server
        # is swept by a later upload.
        tempfiles.lock(fd)
        self._fd = fd
        try:
            with os.fdopen(fd, "wb", closefd=False) as out:
                while True:
                    block = source.read(CHUNK)
                    if not block:
                        break
                    self.size += len(block)
                    if limit is not None and self.size > limit:
                        raise UploadTooLarge(f"File is larger than the limit of {limit} bytes")
                    for digest in (self.sha256, self.md5, self.blake2):
                        digest.update(block)
                    out.write(block)
        except BaseException:
            self.remove()
            raise

    def check_digests(self, digests: dict[str, str]) -> None:
        """Compare client-sent digests (twine sends them) with the bytes received."""
        ours = {"sha256_digest": self.sha256, "md5_digest": self.md5, "blake2_256_digest": self.blake2}
        for field, digest in ours.items():
            sent = (digests.get(field) or "").strip().lower()
            if sent and not hmac.compare_digest(sent, digest.hexdigest()):
                raise InvalidUpload(f"{field} does not match the uploaded file")

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def record_to_metadata(record: FileRecord) -> dict[str, str]:
    """The storage metadata written with a file: enough to rebuild its index row."""
    meta = {
        "name": record.name,
        "version": record.version,
        "sha256": record.sha256,
        "md5": record.md5,
        "upload-time": record.upload_time.isoformat(),
    }
    # S3 allows 2 KB of user metadata per object: keep the summary short here
    # (the index keeps it whole).
    summary = record.summary[:SUMMARY_IN_STORAGE] if record.summary else None
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


class PackageIndex:
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
        spool_dir: str | None = None,
        max_archive_scan: int = 64 * 1024 * 1024,
        graceful_reload: bool = False,
        fallback: FallbackPolicy | None = None,
        upstream: UpstreamClient | None = None,
    ):
        self.storage = storage
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
        # Upstream fallback (SPEC section 9): without a client it is off, whatever the policy.
        self.fallback = fallback if upstream is not None and fallback is not None else FallbackPolicy()
        self.upstream = upstream if self.fallback.mode != "none" else None
        self._fetches = SingleFlight()
        # Release metadata for project pages, by file and sha256 (immutable bytes).
        self._details = DetailsCache()

    # Permission helpers ----------------------------------------------
    @staticmethod
    def deny(identity: Identity, what: str) -> Exception:
        if not identity.authenticated:
            return Unauthorized(f"Login required to {what}")
        return Forbidden(f"User {identity.username!r} may not {what}")

    def _require(
        self, check: Callable[[Identity, str], bool], identity: Identity, project: str, what: str
    ) -> None:
        if not check(identity, project):
            raise self.deny(identity, f"{what} {project!r}")

    # Reading ------------------------------------------------------------
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

    def url_epoch(self) -> tuple:
        """A cache-key part that changes before signed URLs put into pages expire.

        Only needed when index pages carry signed storage URLs
        (``storage.redirect_urls = false``); otherwise pages hold stable links.
        """
        if self.redirect_urls or self.stream_files or not hasattr(self.storage, "expire_after"):
            return ()
        step = max(1, int(getattr(self.storage, "buffer_time", 600)) // 2)
        return (int(utcnow().timestamp()) // step,)

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

    def release_details(self, files) -> ReleaseDetails | None:
        """The core metadata (README, license, URLs...) of a release, from its first file
        that has some; read from storage once per file and kept (files never change)."""
        for record in metadata_sources(files):
            key = ("details", record.filename, record.sha256)
            found = self._details.get(key)
            if found is None:
                try:
                    raw = self._release_metadata(record)
                except (PypicloudError, OSError) as exc:
                    # Not remembered: a storage hiccup must not hide the README for good.
                    LOG.warning("no metadata for the page of %s: %s", record.filename, exc)
                    continue
                found = self._details.details(raw, record.filename) if raw else False
                self._details.put(key, found)
            if found:
                return found
        return None

    def _release_metadata(self, record: FileRecord) -> bytes | None:
        """The METADATA / PKG-INFO bytes of a stored file (bounded reads), or None when it has none."""
        limit = self.max_metadata_size + 1
        if record.metadata_sha256:
            with self.storage.open(record.project, record.metadata_filename, 0, limit) as stream:
                data = stream.read(limit)
            return data if len(data) < limit else None
        if record.size > self.max_archive_scan:
            return None  # an sdist too large to look into on a page view
        # Not SPOOL_PREFIX: the upload spool's sweep must never take this file away.
        with tempfile.NamedTemporaryFile(prefix="ppc-pkginfo-", dir=self.spool_dir) as copy:
            with self.storage.open(record.project, record.filename) as stream:
                while block := stream.read(CHUNK):
                    copy.write(block)
            copy.flush()
            meta = dists.read_core_metadata(
                copy.name,
                dists.parse_filename(record.filename),
                self.max_metadata_size,
                self.max_archive_scan,
            )
        return meta.raw or None

    # Upstream fallback (SPEC section 9) ------------------------------------
    @staticmethod
    def is_local(records: list[FileRecord]) -> bool:
        """True when someone published a file of the project here.

        A project whose files all came from upstream (pull-through caching) is
        upstream's project, not a local one: its page keeps following upstream.
        """
        return any(r.uploader != UPSTREAM_UPLOADER for r in records)

    def is_private(self, project: str, records: list[FileRecord]) -> bool:
        """A project that ever had a local upload, or that any grant names, is private.

        A private project is never looked up upstream and never shows or
        serves files cached from upstream (dependency confusion: an attacker
        publishing the same name upstream must not get into it, not even while
        it has no local file).
        """
        if self.is_local(records):
            return True
        users, groups = self.access.project_grants(project)
        return bool(users or groups) or self.index.was_local(project)

    def _visible(self, project: str, records: list[FileRecord]) -> list[FileRecord]:
        """``records`` without the files cached from upstream when the project is private."""
        if not any(r.uploader == UPSTREAM_UPLOADER for r in records):
            return records
        if self.upstream is not None and self.fallback.always_show_upstream:
            return records  # the admin asked for mixed pages
        if not self.is_private(project, records):
            return records
        return [r for r in records if r.uploader != UPSTREAM_UPLOADER]

    def _consults_upstream(self, project: str, records: list[FileRecord]) -> bool:
        """May the upstream index be asked about this project at all?

        Never for names in ``pypi.disallow_fallback``; for a private project
        (:meth:`is_private`) only with ``pypi.always_show_upstream`` (a private
        project is never mixed with a public one of the same name otherwise).
        """
        if self.upstream is None or not self.fallback.applies_to(project):
            return False
        return self.fallback.always_show_upstream or not self.is_private(project, records)

    def may_update_cache(self, identity: Identity) -> bool:
        """May this caller make the server fetch and store an upstream file (``pypi.cache_update``)?"""
        if self.fallback.mode != "cache" or self.storage.read_only:
            return False
        if identity.authenticated and identity.is_admin:
            return True
        return bool(self.access.principals(identity) & self.fallback.cache_update)

    def project_listing(
        self, identity: Identity, project: str, *, redirect_to: Callable[[str], str | None] | None = None
    ) -> ProjectListing:
        """What the page of one project shows: local files, upstream's, or a redirect.

        404 when neither here nor (where asked) upstream knows the project;
        401/403 when the caller may not read it (checked before upstream is
        asked); 502/503 when upstream is needed and cannot answer. A project
        with local files is served from them alone when upstream fails.
        ``redirect_to`` gives the upstream URL a redirect goes to (default: the
        upstream project page); where it gives None, upstream's page is read
        instead and its files are listed with links to upstream.
        """
        records = self.index.files(project)
        if not self._consults_upstream(project, records):
            records = self._visible(project, records)
            if not records:
                raise ProjectNotFound(f"No such project: {project}")
            self._require(self.access.can_read, identity, project, "read")
            return ProjectListing(project, records)
        self._require(self.access.can_read, identity, project, "read")
        assert self.upstream is not None
        caching = self.may_update_cache(identity)
        if self.fallback.mode == "cache" and not caching and not self.storage.read_only:
            # pypicloud 1.x: a caller outside pypi.cache_update is not sent
            # upstream. Without always_show_upstream they see the files stored
            # here, else 401 (anonymous) / 404; with it, anonymous callers get
            # 401 and logged-in ones the redirect behaviour below.
            if not self.fallback.always_show_upstream:
                if records:
                    return ProjectListing(project, records)
                if not identity.authenticated:
                    raise self.deny(identity, f"fetch {project!r} from the upstream index")
                raise ProjectNotFound(f"No such project: {project}")
            if not identity.authenticated:
                raise self.deny(identity, f"fetch {project!r} from the upstream index")
        if not records and not caching:
            target = (redirect_to or self.upstream.project_url)(project)
            if target is not None:
                return ProjectListing(project, [], redirect=target, cache_key=None)
        try:
            page = self.upstream.project(project)
        except UpstreamError as exc:
            if not records:
                raise
            LOG.warning(
                "upstream page of %s not available (%s): serving the local files only", project, exc.message
            )
            return ProjectListing(project, records, cache_key=None)
        if page is None:
            if not records:
                raise ProjectNotFound(f"No such project: {project} (the upstream index has none either)")
            return ProjectListing(project, records, cache_key=("upstream-absent",))
        stored = {r.filename for r in records}
        # Pull-through can only serve files it can verify (SPEC section 9).
        files = tuple(
            f for f in page.files if f.filename not in stored and (f.sha256 is not None or not caching)
        )
        return ProjectListing(
            project,
            records,
            files,
            name=page.name,
            link_upstream=not caching,
            cache_key=("upstream", page.serial, not caching),
        )

    def _upstream_file(self, identity: Identity, project: str, filename: str) -> UpstreamFile:
        """The upstream entry of a file not stored here, for a caller who may read the project."""
        if not self._consults_upstream(project, self.index.files(project)):
            raise FileNotFound(f"No such file: {filename}")
        assert self.upstream is not None
        self._require(self.access.can_read, identity, project, "read")
        page = self.upstream.project(project)
        entry = page.file(filename) if page is not None else None
        if entry is None:
            raise FileNotFound(f"No such file: {filename}")
        return entry

    def _stored_or_upstream(
        self, identity: Identity, project: str, filename: str
    ) -> FileRecord | UpstreamFile:
        try:
            return self.get_file(identity, project, filename)
        except FileNotFound:
            if self.upstream is None:
                raise
        return self._upstream_file(identity, project, filename)

    def _cache_from_upstream(self, project: str, entry: UpstreamFile) -> FileRecord:
        """Fetch one upstream file, verify its sha256, store and index it like an upload.

        Nothing is stored when the bytes do not match upstream's sha256 (or when
        upstream gives none). One fetch per file at a time in this process (its
        concurrent requests share its outcome); across processes storage refuses
        to store a name twice.
        """
        filename = entry.filename
        if entry.sha256 is None:
            raise UpstreamError(
                f"The upstream index gives no sha256 for {filename}: it cannot be verified and is not fetched"
            )
        limit = self.max_upload_size
        too_large = UpstreamError(
            f"{filename} on the upstream index is larger than "
            f"pypi.max_upload_size ({limit} bytes): not fetched"
        )
        if limit is not None and entry.size is not None and entry.size > limit:
            raise too_large
        return self._fetches.run(filename, lambda: self._fetch_and_store(project, entry, too_large))

    def _fetch_and_store(self, project: str, entry: UpstreamFile, too_large: UpstreamError) -> FileRecord:
        """The one run of :meth:`_cache_from_upstream` for a file: fetch, verify, store."""
        filename = entry.filename
        existing = self.index.get(filename)
        if existing is not None and existing.project == project:
            return existing  # stored by a run that ended just before this one began
        if not self._consults_upstream(project, self.index.files(project)):
            # Became private (a local upload, a grant) since its page was read.
            raise FileNotFound(f"No such file: {filename}")
        dist = dists.parse_filename(filename)
        assert self.upstream is not None and entry.sha256 is not None
        try:
            with self.upstream.open_file(entry.url) as stream:
                spooled = _Spooled(stream, self.max_upload_size, self.spool_dir)
        except UploadTooLarge:
            raise too_large from None
        try:
            got = spooled.sha256.hexdigest()
            if not hmac.compare_digest(got, entry.sha256):
                LOG.warning(
                    "sha256 of %s from the upstream index is %s, its page says %s: not stored",
                    filename,
                    got,
                    entry.sha256,
                )
                raise UpstreamError(
                    f"The sha256 of {filename} from the upstream index does "
                    "not match the one on its page: not stored"
                )
            try:
                result = self._store(
                    project=project,
                    name=None,
                    dist=dist,
                    spooled=spooled,
                    uploader=UPSTREAM_UPLOADER,
                    may_overwrite=lambda: False,
                    yanked=entry.yanked,
                    yanked_reason=entry.yanked_reason,
                    upload_time=parse_upload_time(entry.upload_time),
                )
            except InvalidUpload as exc:
                raise UpstreamError(
                    f"{filename} from the upstream index is not a valid distribution: {exc.message}"
                ) from None
        finally:
            spooled.remove()
        if result.created:
            LOG.info("cached %s from the upstream index (%d bytes)", filename, result.record.size)
        return result.record

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
        hit = self._records.get(filename, generation)
        if hit is None:
            hit = (self.index.get(filename),)
            self._records.put(filename, generation, hit)
        return hit[0]

    def download(self, identity: Identity, project: str, filename: str) -> Download:
        """Where the bytes of a file come from: a (reused) signed URL or a stream.

        A file listed upstream but not stored here is fetched, verified and
        stored first (pull-through), or redirected to upstream for a caller not
        in ``pypi.cache_update``.
        """
        found = self._stored_or_upstream(identity, project, filename)
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
        hands_out_urls = type(self.storage).download_url is not Storage.download_url
        if self.stream_files or not hands_out_urls:
            return Download(record)
        return Download(record, self.storage_url(record.project, record.filename))

    def storage_url(self, project: str, filename: str) -> Redirect | None:
        """A storage URL for a file, reusing a cached signed URL while it has time left.

        The cache lives in the index so every process hands out the same URL
        and clients' HTTP caches hit (SPEC section 6).
        """
        expire_after = getattr(self.storage, "expire_after", 86400)
        buffer_time = getattr(self.storage, "buffer_time", 600)
        key = self.storage.key_for(project, filename)
        now = utcnow()
        cached = self.index.get_url(key)
        if cached is not None and cached[1] - now > timedelta(seconds=buffer_time):
            return Redirect(cached[0], cached[1])
        redirect = self.storage.download_url(project, filename, expire_after)
        if redirect is not None and redirect.expires_at is not None:
            self.index.set_url(key, redirect.url, redirect.expires_at)
        return redirect

    def open_file(self, record: FileRecord, offset: int = 0, length: int | None = None) -> BinaryIO:
        return self.storage.open(record.project, record.filename, offset, length)

    def core_metadata(self, identity: Identity, project: str, filename: str) -> tuple[FileRecord, bytes]:
        """The PEP 658 metadata file of a distribution.

        For an upstream file not stored here, upstream's metadata file is passed
        on (verified against the sha256 its page gives; nothing is stored).
        """
        found = self._stored_or_upstream(identity, project, filename)
        if isinstance(found, UpstreamFile):
            return self._upstream_metadata(project, found)
        record = found
        if not record.metadata_sha256:
            raise FileNotFound(f"No metadata for {filename}")
        limit = self.max_metadata_size + 1
        with self.storage.open(project, filename + METADATA_SUFFIX, 0, limit) as stream:
            data = stream.read(limit)
        return record, data

    def _upstream_metadata(self, project: str, entry: UpstreamFile) -> tuple[FileRecord, bytes]:
        if not entry.metadata_sha256:
            raise FileNotFound(f"No metadata for {entry.filename}")
        assert self.upstream is not None
        data = self.upstream.read_metadata(entry.metadata_url, self.max_metadata_size)
        if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), entry.metadata_sha256):
            raise UpstreamError(
                f"The sha256 of the metadata of {entry.filename} from the "
                "upstream index does not match the one on its page"
            )
        dist = dists.parse_filename(entry.filename)
        record = FileRecord(
            project=project,
            name=dist.name,
            version=dist.version,
            filename=entry.filename,
            size=entry.size or 0,
            sha256=entry.sha256 or "",
            metadata_sha256=entry.metadata_sha256,
            upload_time=parse_upload_time(entry.upload_time) or utcnow(),
        )
        return record, data

    # Writing ------------------------------------------------------------
    def upload(
        self,
        identity: Identity,
        *,
        name: str | None,
        version: str | None,
        filename: str | None,
        content: BinaryIO | None,
        digests: dict[str, str] | None = None,
        name_from_archive: bool = False,
    ) -> UploadResult:
        """Store one distribution file following every rule of SPEC section 5.

        ``name_from_archive``: the display name is the archive's own metadata name
        (when it matches the project), for callers that only know the filename.
        """
        project = None
        if name:
            try:
                project = dists.check_project_name(name.strip())
            except InvalidUpload:
                if not identity.authenticated:
                    raise self.deny(identity, "upload") from None
                raise
        if project is None:
            if not identity.authenticated:
                raise self.deny(identity, "upload")
            raise InvalidUpload("Missing form field 'name'")
        self._require(self.access.can_write, identity, project, "upload to")
        if not version:
            raise InvalidUpload("Missing form field 'version'")
        if content is None or not filename:
            raise InvalidUpload("Missing form field 'content' (the file)")
        self.storage.check_writable()
        dists.check_version(version.strip())
        dist = dists.parse_filename(filename)
        dists.check_filename_matches(dist, name.strip(), version.strip())
        self._check_release_slot(project, dist)
        # Before the file exists: from now on upstream never gets into this project.
        self.index.mark_local(project)

        spooled = _Spooled(content, self.max_upload_size, self.spool_dir)
        try:
            spooled.check_digests(digests or {})
            result = self._store(
                project=project,
                name=None if name_from_archive else name.strip(),
                dist=dist,
                spooled=spooled,
                uploader=identity.username,
                may_overwrite=lambda: self.access.can_overwrite(identity, project),
                pypi_rules=True,
            )
        finally:
            spooled.remove()
        if result.created:
            LOG.info("%s uploaded %s (%d bytes)", identity.username, filename, result.record.size)
        return result

    def upload_file(
        self,
        identity: Identity,
        filename: str | None,
        content: BinaryIO | None,
        digests: dict[str, str] | None = None,
    ) -> UploadResult:
        """An upload of nothing but a file (the browser form): project and version
        come from the filename, the display name from the archive's metadata."""
        if not filename:
            raise InvalidUpload("No file chosen")
        try:
            dist = dists.parse_filename(filename)
        except InvalidUpload:
            if not identity.authenticated:
                raise self.deny(identity, "upload") from None
            raise
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
        spooled: _Spooled,
        uploader: str | None,
        may_overwrite: Callable[[], bool],
        yanked: bool = False,
        yanked_reason: str | None = None,
        upload_time: datetime | None = None,
        pypi_rules: bool = False,
    ) -> UploadResult:
        """Validate a spooled file's archive, then store and index it (SPEC section 5).

        Shared by uploads and pull-through caching. ``name`` is the display
        name (None: the archive's own, when it matches the project).
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
            name = meta.name if same else dist.name
        sha256 = spooled.sha256.hexdigest()
        existing = self.index.get(filename)
        overwrite = False
        if existing is not None:
            # A row whose bytes are gone is what a delete that failed half-way
            # leaves (bytes first, then the row): the name is free again.
            if self.storage.stat(existing.project, filename) is not None:
                if existing.sha256 == sha256:
                    return UploadResult(existing, False)
                if not may_overwrite():
                    raise FileExists(f"File already exists: {filename}")
                overwrite = True
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
        metadata = record_to_metadata(record)
        # The write protocol (docs/architecture.md): intent, bytes, companion
        # metadata file, index row. Nothing is deleted when a later step fails:
        # once the bytes are stored another request may already have answered
        # 200 for them (an identical upload that lost the race); a retry or the
        # repair step finishes the row instead.
        with self._intent("upload", project, filename):
            with open(spooled.path, "rb") as stream:
                try:
                    self.storage.put(project, filename, stream, metadata, overwrite=overwrite)
                except StorageConflict:
                    return self._lost_race(record, meta.raw if metadata_sha256 else None)
            if metadata_sha256:
                # Written after the file itself, so the loser of a race never
                # replaces the winner's metadata.
                self.storage.put(
                    project,
                    filename + METADATA_SUFFIX,
                    io.BytesIO(meta.raw),
                    {"sha256": metadata_sha256},
                    overwrite=True,
                )
            self.index.add(record)
        return UploadResult(record, True)

    def _check_release_slot(self, project: str, dist: dists.DistFilename) -> None:
        """Refuse a file that would be a second copy of a stored one under another spelling.

        ``demo-1.0.0.tar.gz`` beside ``demo-1.0.tar.gz`` is a second sdist of one
        release (``1.0`` and ``1.0.0`` are one version): installers would pick either,
        so it would replace a released file without ``allow_overwrite``.
        """
        for record in self.index.files(project):
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
                    self.storage.put(
                        project,
                        filename + METADATA_SUFFIX,
                        io.BytesIO(metadata_raw),
                        {"sha256": record.metadata_sha256},
                        overwrite=True,
                    )
            elif self.storage.stat(project, filename + METADATA_SUFFIX) is None:
                record = record.replace(metadata_sha256=None)
        self.index.add(record)
        return UploadResult(record, False)

    @contextlib.contextmanager
    def _intent(self, op: str, project: str, filename: str):
        """Run one storage-and-index write under an entry of the intent log.

        The entry is written before storage is touched and removed when the
        write succeeded (or failed with a 4xx, which changes nothing). After a
        5xx or a crash it stays, and :meth:`repair` settles the file later.
        """
        intent = self.index.begin_intent(op, project, filename)
        try:
            yield
        except PypicloudError as exc:
            if exc.status < 500 and intent is not None:
                self._end_intent(intent)
                raise
            self._renew_intent(intent, op, project, filename)
            raise
        except Exception:
            self._renew_intent(intent, op, project, filename)
            raise
        if intent is not None:
            self._end_intent(intent)

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

    def refuse_early(self, identity: Identity, project: str | None = None, yank: bool = False) -> None:
        """401/403 before a write request's body is read, when the write must fail anyway.

        Parsing a multipart body costs CPU per part (and spool disk): a caller
        who may not write anywhere (with ``project``: to that project) is
        refused before that work. The full checks still run afterwards.
        """
        if yank:
            self._require(self._may_yank, identity, project, "yank in")
        elif identity.token is not None and not identity.token.upload:
            raise self.deny(identity, "upload")
        elif project is not None:
            self._require(self.access.can_write, identity, canonicalize_name(project), "upload to")
        elif not identity.authenticated and not self.access.anonymous_may_write():
            raise self.deny(identity, "upload")

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
        return updated

    # Repair -------------------------------------------------------------
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

    # Rebuild ------------------------------------------------------------
    def scan_storage(self, progress: Callable[[int], None] | None = None) -> list[FileRecord]:
        """Index rows for everything in storage (companion metadata files excluded).

        ``progress`` is called with 1 for every object listed (for progress bars).
        """
        objects = []
        # Companion .metadata files only need to exist: no metadata round trips.
        for obj in self.storage.list(metadata_for=lambda name: not name.endswith(METADATA_SUFFIX)):
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
            record = record_from_object(obj) or self._record_from_bytes(obj)
            if record is None:
                continue
            if record.metadata_sha256 and (obj.project, obj.filename + METADATA_SUFFIX) not in names:
                record = record.replace(metadata_sha256=None)
            records.append(record)
        return records

    def _record_from_bytes(self, obj: StoredObject) -> FileRecord | None:
        """A file whose storage metadata was lost: hash it and read its archive again."""
        try:
            dist = dists.parse_filename(obj.filename)
        except InvalidUpload:
            return None
        with self.storage.open(obj.project, obj.filename) as stream:
            spooled = _Spooled(stream, None, self.spool_dir)
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
        return len(records)

    def sync_index(self, records: list[FileRecord]) -> tuple[int, int]:
        """Apply the difference between ``records`` and the index. Returns (changed, removed)."""
        current = {r.filename: r for r in self.index.all_records()}
        changed = removed = 0
        for record in records:
            if current.pop(record.filename, None) != record:
                self.index.add(record)
                changed += 1
        for filename in current:
            self.index.remove(filename)
            removed += 1
        return changed, removed

    def require_admin(self, identity: Identity, what: str) -> None:
        if not identity.is_admin:
            raise self.deny(identity, what)

    def sweep_spool_files(self, min_age: float = 5.0) -> int:
        """Remove upload spool files of killed processes (at start-up).

        Live ones are locked by their upload, so only dead ones go.
        """
        directory = self.spool_dir or tempfile.gettempdir()
        return tempfiles.sweep(directory, lambda name: name.startswith(SPOOL_PREFIX), min_age)

    def rebuild_if_empty(self) -> int | None:
        if self.index.count() == 0:
            return self.rebuild()
        return None

    # Health -------------------------------------------------------------
    def health(self) -> dict[str, dict]:
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


__all__ = ["PackageIndex", "UploadResult", "Download", "ProjectListing", "ANONYMOUS"]
