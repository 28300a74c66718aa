"""PEP 658 ``.metadata`` files: read from storage and checked once, then served from memory.

A stored distribution's ``.metadata`` companion is not forced to disk
(:meth:`Storage.put_companion`), so every read checks its bytes against the
``metadata_sha256`` of the index record; one that does not match is answered as
missing. Opening, reading and hashing the file was most of what a ``.metadata``
request cost (docs/performance.md), so :class:`MetadataFiles` keeps the bytes that
passed the check, bounded by size (``pypi.metadata_cache_mb``), under a key that
changes whenever the bytes it would serve could differ:

- the record's ``metadata_sha256``: another upload under the name (a re-upload
  after a delete, with other metadata) is another key;
- the storage's :meth:`~pypicloud.storage.base.Storage.content_token` for the
  companion. On local files that is one ``stat`` (device, inode, size, mtime,
  ctime): a companion replaced (new inode), deleted, truncated or rewritten in
  place is read and checked again, so a damaged one is never served from memory.
  Object stores answer without a request (a HEAD per hit would cost what the
  cache saves): their objects are only replaced whole and pypicloud writes a
  companion only with the bytes whose sha256 the index record holds, so name
  and sha256 already name the bytes. A backend that cannot tell cheaply answers
  None and its companions are read every time.

A deleted file needs nothing here: the service looks up its record first, and
without one answers 404 before this cache is asked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable

from .caching import ENTRY_OVERHEAD, BoundedLRU
from .models import metadata_name
from .storage.base import Storage

# Memory for checked ``.metadata`` bytes (``pypi.metadata_cache_mb``): a wheel's
# METADATA is a few KB, so 16 MiB keep thousands of them.
DEFAULT_METADATA_CACHE_MB = 16
# The byte bound is the one that matters; this only caps the count of tiny entries.
MAX_ENTRIES = 1_000_000


def _entry_bytes(data: bytes) -> int:
    return ENTRY_OVERHEAD + len(data)


class MetadataFiles:
    """``read(project, filename, sha256)``: the checked ``.metadata`` bytes of a
    stored distribution (thread-safe; see the module's docstring)."""

    def __init__(self, storage: Storage, max_size: int, max_bytes: int):
        self.storage = storage
        self.max_size = max_size
        # max_bytes 0: nothing is kept (every request reads and checks the file).
        self._cache: BoundedLRU[Hashable, bytes] | None = (
            BoundedLRU(MAX_ENTRIES, max_weight=max_bytes, weight=_entry_bytes) if max_bytes > 0 else None
        )

    def read(self, project: str, filename: str, sha256: str) -> bytes | None:
        """The companion of ``filename`` if its bytes have ``sha256``; None when they
        do not (damaged). Raises FileNotFound when storage has no companion."""
        name = metadata_name(filename)
        # Taken before the bytes are read: a change after this moment gives the
        # next request another token, so it reads the file again.
        token = self.storage.content_token(project, name) if self._cache is not None else None
        key = (project, name, sha256, token)
        if token is not None:
            assert self._cache is not None
            cached = self._cache.get(key)
            if cached is not None:
                return cached
        limit = self.max_size + 1  # one byte more tells a file over the limit
        with self.storage.open(project, name, 0, limit) as stream:
            data = stream.read(limit)
        if len(data) > self.max_size or hashlib.sha256(data).hexdigest() != sha256:
            return None
        if token is not None:
            assert self._cache is not None
            self._cache.put(key, data)
        return data

    @property
    def cached_bytes(self) -> int:
        """The bytes held now, entry overhead included (0 when caching is off)."""
        return 0 if self._cache is None else self._cache.weight
