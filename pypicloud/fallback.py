"""The upstream fallback rules of the service (SPEC section 9), mixed into
:class:`pypicloud.service.PackageIndex`.

Which projects may be looked up upstream (never a private one), what a project
page shows (local files, upstream's, or a redirect), and pull-through caching:
an upstream file is fetched, verified against its page's sha256 and stored by
the same code path as an upload. The methods use the service's backends and
permission helpers (``self.storage``, ``self.index``, ``self.access``,
``self._require``, ``self.deny``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable

from . import dists
from .errors import FileNotFound, InvalidUpload, ProjectNotFound, UploadTooLarge, UpstreamError
from .models import FileRecord, Identity, utcnow
from .records import parse_upload_time
from .results import ProjectListing
from .service_base import ServiceBase
from .spool import SpooledUpload
from .upstream import UPSTREAM_UPLOADER, UpstreamFile

# One logger for the whole service, whichever module a rule lives in: the name
# operators configure and search for.
LOG = logging.getLogger("pypicloud.service")


class FallbackRules(ServiceBase):
    """Upstream fallback: privacy of projects, listings, pull-through."""

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
            kept = self._outside_cache_update(identity, project, records)
            if kept is not None:
                return kept
        if not records and not caching:
            target = (redirect_to or self.upstream.project_url)(project)
            if target is not None:
                return ProjectListing(project, [], redirect=target, cache_key=None)
        return self._upstream_listing(project, records, caching)

    def _outside_cache_update(
        self, identity: Identity, project: str, records: list[FileRecord]
    ) -> ProjectListing | None:
        """A caller outside ``pypi.cache_update`` (pypicloud 1.x) is not sent upstream.

        Without always_show_upstream they see the files stored here, else 401
        (anonymous) / 404; with it, anonymous callers get 401 and logged-in ones
        the redirect behaviour (None: carry on).
        """
        if not self.fallback.always_show_upstream:
            if records:
                return ProjectListing(project, records)
            if not identity.authenticated:
                raise self.deny(identity, f"fetch {project!r} from the upstream index")
            raise ProjectNotFound(f"No such project: {project}")
        if not identity.authenticated:
            raise self.deny(identity, f"fetch {project!r} from the upstream index")
        return None

    def _upstream_listing(self, project: str, records: list[FileRecord], caching: bool) -> ProjectListing:
        """Local files beside upstream's page; the local files alone while upstream fails."""
        assert self.upstream is not None
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
                spooled = SpooledUpload(stream, self.max_upload_size, self.spool_dir)
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
