"""Package files in this process's memory (``pypi.storage = memory``).

For tests, demos and dry runs: nothing survives a restart, and every byte is
held in RAM, so it suits small indexes only. It keeps the whole storage
contract (atomic puts, one winner of two conditional puts, ranges, metadata,
read-only), which the shared contract suite proves, so a test can use it
instead of a hand-written fake. Two instances given the same
:class:`MemoryStore` share one set of objects, the way two processes share a
bucket. ``ppc-migrate --dry-run`` uses an empty read-only one for a
destination that does not exist yet.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ..errors import FileNotFound, StorageConflict
from ..models import StoredObject
from .base import ReadStream, Storage, check_name
from .objectstore import check_metadata, check_range, read_full

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class _Object:
    data: bytes
    info: StoredObject


class MemoryStore:
    """The objects themselves, shareable between MemoryStorage instances; thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.objects: dict[tuple[str, str], _Object] = {}


class _BytesReader(ReadStream):
    def __init__(self, data: bytes):
        self._data = data
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else min(len(self._data), self._pos + size)
        block, self._pos = self._data[self._pos : end], end
        return block

    def close(self) -> None:
        self._data = b""


class MemoryStorage(Storage):
    """Storage in a dict (see the module docstring)."""

    SETTINGS_KEYS = frozenset({"storage.read_only"})

    def __init__(self, read_only: bool = False, store: MemoryStore | None = None):
        self.read_only = read_only
        self.store = store if store is not None else MemoryStore()

    @classmethod
    def from_settings(cls, settings) -> MemoryStorage:
        return cls(read_only=settings.get_bool("storage.read_only", False))

    def __repr__(self) -> str:
        return f"<MemoryStorage objects={len(self.store.objects)}>"

    def location(self) -> tuple:
        return ("memory", id(self.store))

    def _name(self, project: str, filename: str) -> tuple[str, str]:
        return check_name(project, "project name"), check_name(filename)

    def key_for(self, project: str, filename: str) -> str:
        return "/".join(self._name(project, filename))

    def _get(self, project: str, filename: str) -> _Object:
        found = self.store.objects.get(self._name(project, filename))
        if found is None:
            raise FileNotFound(f"No such file: {filename}")
        return found

    def _set(self, project: str, filename: str, data: bytes, metadata: dict[str, str]) -> StoredObject:
        """Store under the caller's lock; returns what was stored."""
        info = StoredObject(
            project=project,
            filename=filename,
            size=len(data),
            metadata=dict(metadata),
            key=self.key_for(project, filename),
            last_modified=datetime.now(UTC),
        )
        self.store.objects[(project, filename)] = _Object(data, info)
        return replace(info, metadata=dict(metadata))

    def put(self, project, filename, stream, metadata, *, overwrite=False):
        self.check_writable()
        name = self._name(project, filename)
        check_metadata(metadata)
        if not overwrite and name in self.store.objects:
            raise StorageConflict(f"{filename} is already stored")
        # Read everything before taking the name: a failing stream stores nothing.
        blocks = []
        while block := read_full(stream, CHUNK):
            blocks.append(block)
        with self.store.lock:
            if not overwrite and name in self.store.objects:
                raise StorageConflict(f"{filename} is already stored")
            return self._set(project, filename, b"".join(blocks), metadata)

    def open(self, project, filename, offset=0, length=None):
        check_range(offset, length)
        data = self._get(project, filename).data
        end = len(data) if length is None else offset + length
        return _BytesReader(data[offset:end])

    def stat(self, project, filename):
        found = self.store.objects.get(self._name(project, filename))
        return None if found is None else replace(found.info, metadata=dict(found.info.metadata))

    def delete(self, project, filename):
        self.check_writable()
        with self.store.lock:
            return self.store.objects.pop(self._name(project, filename), None) is not None

    def copy(self, project, filename, dest_project, dest_filename, metadata=None):
        self.check_writable()
        self._name(dest_project, dest_filename)
        if metadata is not None:
            check_metadata(metadata)
        with self.store.lock:
            source = self._get(project, filename)
            kept = source.info.metadata if metadata is None else metadata
            return self._set(dest_project, dest_filename, source.data, kept)

    def update_metadata(self, project, filename, metadata):
        self.check_writable()
        check_metadata(metadata)
        with self.store.lock:
            return self._set(project, filename, self._get(project, filename).data, metadata)

    def list(self, metadata_for=None):
        with self.store.lock:
            infos = [o.info for o in self.store.objects.values()]
        for info in infos:
            wanted = metadata_for is None or metadata_for(info.filename)
            yield replace(info, metadata=dict(info.metadata) if wanted else {})

    def check_health(self) -> None:
        """Always usable: memory is there while the process is."""
