"""One bounded, thread-safe LRU map, and the caches built on it.

:class:`BoundedLRU` is the only least-recently-used structure in pypicloud:

- :class:`PageCache` (here): rendered index pages and file records, valid while
  the index's change counter holds the value they were stored under;
- :class:`pypicloud.upstream.memo.PageMemo`: upstream project pages, with a
  lifetime, bounded by count and by their total number of files;
- :class:`pypicloud.access.base.CredentialCache`: recently verified logins, with
  a lifetime.

Each holds its own lock-free policy (what "still valid" means) and lets the
map do the bounding and the locking.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    """A map that keeps at most ``max_entries`` values, least recently used out first.

    With ``max_weight`` it also keeps the total ``weight(value)`` at most that,
    except that the newest value always stays (one heavy value is still kept).
    Every method is safe to call from several threads at once.
    """

    def __init__(
        self,
        max_entries: int,
        *,
        max_weight: int | None = None,
        weight: Callable[[V], int] = lambda value: 1,
    ):
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._weigh = weight
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._weight = 0

    def get(
        self,
        key: K,
        default: Any = None,
        *,
        valid: Callable[[V], bool] | None = None,
        drop_invalid: bool = True,
    ) -> Any:
        """The value of ``key`` (now the most recently used), or ``default``.

        A value for which ``valid`` is false counts as missing; it is dropped
        unless ``drop_invalid`` is false (then it stays, in its place).
        """
        with self._lock:
            if key not in self._entries:
                return default
            value = self._entries[key]
            if valid is not None and not valid(value):
                if drop_invalid:
                    self._remove(key)
                return default
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Store ``value`` as the most recently used, then drop the oldest beyond the bounds."""
        with self._lock:
            if key in self._entries:
                self._remove(key)
            self._entries[key] = value
            self._weight += self._weigh(value)
            while len(self._entries) > self.max_entries or (
                len(self._entries) > 1 and self.max_weight is not None and self._weight > self.max_weight
            ):
                _, dropped = self._entries.popitem(last=False)
                self._weight -= self._weigh(dropped)

    def discard_if(self, doomed: Callable[[K, V], bool]) -> None:
        """Drop every entry for which ``doomed(key, value)`` is true."""
        with self._lock:
            for key in [k for k, v in self._entries.items() if doomed(k, v)]:
                self._remove(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weight = 0

    def _remove(self, key: K) -> None:
        self._weight -= self._weigh(self._entries.pop(key))

    @property
    def weight(self) -> int:
        """The total weight of the values held now."""
        return self._weight

    def __iter__(self):
        """The keys, least recently used first (a snapshot)."""
        with self._lock:
            return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


# What one entry costs besides its body: the key tuple, the entry tuple, the
# value object and the map's own slot (tracemalloc: about 450 bytes for a project page's).
ENTRY_OVERHEAD = 512


def _entry_bytes(entry: tuple[int, Any]) -> int:
    body = getattr(entry[1], "body", None)
    return ENTRY_OVERHEAD + (len(body) if isinstance(body, bytes) else 0)


class PageCache:
    """A thread-safe, bounded LRU map from a key to (generation, value).

    A value is returned only while the change counter still has the value it
    was stored under. Used for rendered pages and for file records.
    ``max_bytes``: also bound the total size (bodies plus a fixed overhead per
    entry), for caches whose entry count alone says little about memory.
    """

    def __init__(self, max_entries: int = 4096, max_bytes: int | None = None):
        self.max_entries = max_entries
        self._pages: BoundedLRU[Hashable, tuple[int, Any]] = BoundedLRU(
            max_entries, max_weight=max_bytes, weight=_entry_bytes
        )

    def get(self, key: Hashable, generation: int) -> Any:
        # A value of another generation is left in place: a request that read an
        # older counter must not evict what a newer one stored.
        entry = self._pages.get(key, valid=lambda e: e[0] == generation, drop_invalid=False)
        return None if entry is None else entry[1]

    def put(self, key: Hashable, generation: int, value: Any) -> None:
        self._pages.put(key, (generation, value))

    def clear(self) -> None:
        self._pages.clear()
