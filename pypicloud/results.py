"""What the service answers: plain, frozen values the views turn into responses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from .models import FileRecord, Redirect
from .spool import SpooledUpload
from .upstream import UpstreamFile


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


@dataclass(frozen=True)
class UploadForm:
    """The fields of an upload request, as the view read them from the body.

    ``digests`` is called once the request is known to be an upload (a digest
    field that is not text is then a 400).
    """

    action: str | None
    name: str | None
    version: str | None
    filename: str | None
    content: BinaryIO | SpooledUpload | None  # the spool when the body was parsed in one pass
    digests: Callable[[], dict[str, str]]


@dataclass(frozen=True)
class FileLinks:
    """Where index pages link a project's stored files.

    ``storage_urls``: the files linked at storage directly (signed URLs, with
    ``storage.redirect_urls = false``); the others link to this server's
    download URL. ``offers_metadata``: PEP 658 ``.metadata`` files are derived
    from the file URL, which a signed storage URL cannot take, so they are
    offered only when the links point at this server.
    """

    storage_urls: dict[str, str]
    offers_metadata: bool
