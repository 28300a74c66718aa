"""The typed base of :class:`pypicloud.service.PackageIndex` and the classes it is made of.

The service's rules live in mixins (:mod:`pypicloud.fallback`,
:mod:`pypicloud.ingest`, :mod:`pypicloud.changes`, :mod:`pypicloud.rebuild`,
:mod:`pypicloud.api_requests`) that use the attributes ``PackageIndex.__init__``
sets and each other's methods. :class:`ServiceBase` declares both, so that the
type checker checks every mixin on its own. It adds nothing at run time: the
attributes are annotations only, and the methods are declared for the type
checker alone (``PackageIndex`` or one of the mixins defines each of them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from datetime import datetime
    from typing import BinaryIO

    from . import dists
    from .access.base import AccessBackend
    from .caching import PageCache
    from .changes import OpenIntent
    from .concurrency import SingleFlight
    from .errors import PypicloudError
    from .events import EventBus
    from .index.base import MetadataIndex
    from .models import FileRecord, Identity
    from .release_details import ReleaseDetailsReader
    from .results import ProjectListing, UploadResult
    from .spool import SpooledUpload
    from .storage.base import Storage
    from .upstream import FallbackPolicy, UpstreamClient


class ServiceBase:
    """What every part of the package index service may use (set by ``PackageIndex.__init__``)."""

    storage: Storage
    index: MetadataIndex
    access: AccessBackend
    events: EventBus
    max_upload_size: int | None
    stream_files: bool
    redirect_urls: bool
    max_metadata_size: int
    spool_dir: str | None
    max_archive_scan: int
    graceful_reload: bool
    _records: PageCache
    fallback: FallbackPolicy
    upstream: UpstreamClient | None
    _fetches: SingleFlight
    _details: ReleaseDetailsReader

    if TYPE_CHECKING:
        # Permission helpers (pypicloud.service).
        @staticmethod
        def deny(identity: Identity, what: str) -> PypicloudError: ...

        def refusal(self, identity: Identity, what: str, error: PypicloudError) -> PypicloudError: ...

        def anonymous_first(
            self, identity: Identity, what: str, errors: tuple[type[PypicloudError], ...] = ...
        ) -> AbstractContextManager[None]: ...

        def _require(
            self, check: Callable[[Identity, str], bool], identity: Identity, project: str, what: str
        ) -> None: ...

        def require_read(self, identity: Identity, project: str) -> None: ...

        def require_admin(self, identity: Identity, what: str) -> None: ...

        # Reads (pypicloud.service).
        def get_file(
            self,
            identity: Identity,
            project: str,
            filename: str,
            action: Callable[[Identity, str], bool] | None = None,
            what: str = "read",
        ) -> FileRecord: ...

        def project_files(self, identity: Identity, project: str) -> list[FileRecord]: ...

        # Upstream fallback (pypicloud.fallback).
        def _visible(self, project: str, records: list[FileRecord]) -> list[FileRecord]: ...

        def project_listing(
            self, identity: Identity, project: str, *, redirect_to: Callable[[str], str | None] | None = None
        ) -> ProjectListing: ...

        # Uploads (pypicloud.ingest).
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
        ) -> UploadResult: ...

        def upload_file(
            self,
            identity: Identity,
            filename: str | None,
            content: BinaryIO | SpooledUpload | None,
            digests: dict[str, str] | None = None,
        ) -> UploadResult: ...

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
        ) -> UploadResult: ...

        # Changes (pypicloud.changes).
        def _intent(
            self, op: str, project: str, filename: str, begin: Callable[[], str | None] | None = None
        ) -> AbstractContextManager[OpenIntent]: ...

        def delete_file(self, identity: Identity, project: str, filename: str) -> FileRecord: ...

        def authorize_upload(
            self, identity: Identity, project: str | None = None, yank: bool = False
        ) -> None: ...

        def set_yanked(
            self, identity: Identity, project: str, filename: str, yanked: bool, reason: str | None = None
        ) -> FileRecord: ...

        # Rebuild (pypicloud.rebuild).
        def rebuild(self, progress: Callable[[int], None] | None = None) -> int: ...
