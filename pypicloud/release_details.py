"""Reading a release's core metadata from storage for the web UI's project page.

The README, license, URLs and classifiers are not in the index: they come from
the PEP 658 ``.metadata`` companion of a wheel, or from an sdist's PKG-INFO
(bounded reads), parsed once per file (:mod:`pypicloud.project_info`) and kept by
filename and sha256, since a stored file never changes.
"""

from __future__ import annotations

import logging
import tempfile

from . import dists
from .errors import PypicloudError
from .models import FileRecord, metadata_name
from .project_info import DetailsCache, ReleaseDetails, metadata_sources
from .spool import CHUNK
from .storage.base import Storage

LOG = logging.getLogger(__name__)


class ReleaseDetailsReader:
    """``details(files)``: the metadata of a release, from its first file that has some."""

    def __init__(
        self, storage: Storage, max_metadata_size: int, max_archive_scan: int, spool_dir: str | None
    ):
        self.storage = storage
        self.max_metadata_size = max_metadata_size
        self.max_archive_scan = max_archive_scan
        self.spool_dir = spool_dir
        self._cache = DetailsCache()

    def details(self, files) -> ReleaseDetails | None:
        for record in metadata_sources(files):
            key = ("details", record.filename, record.sha256)
            found = self._cache.get(key)
            if found is None:
                try:
                    raw = self._raw_metadata(record)
                except (PypicloudError, OSError) as exc:
                    # Not remembered: a storage hiccup must not hide the README for good.
                    LOG.warning("no metadata for the page of %s: %s", record.filename, exc)
                    continue
                found = self._cache.details(raw, record.filename) if raw else False
                self._cache.put(key, found)
            if found:
                return found  # type: ignore[return-value]
        return None

    def _raw_metadata(self, record: FileRecord) -> bytes | None:
        """The METADATA / PKG-INFO bytes of a stored file (bounded reads), or None when it has none."""
        limit = self.max_metadata_size + 1
        if record.metadata_sha256:
            with self.storage.open(record.project, metadata_name(record.filename), 0, limit) as stream:
                data = stream.read(limit)
            return data if len(data) < limit else None
        if record.size > self.max_archive_scan:
            return None  # an sdist too large to look into on a page view
        # Not the upload spool's prefix: its sweep must never take this file away.
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
