"""Listing the bucket (index rebuilds and migrations) with as few requests as possible.

A ListObjectsV2 page gives each object's key, size, last-modified time and
ETag, but no user metadata. So an object whose metadata the caller does not
need (``metadata_for`` says so: the companion ``.metadata`` files of a
rebuild) is described from the listing alone, and only the others cost a
HeadObject (never a GET of the body). Those HEADs run on a bounded thread
pool while the next listing page is fetched, so a rebuild is not one
sequential round trip per object and never waits for a page's slowest HEAD
before listing on.

An object the caller already knows (``known``: key to the tag it read it
with, see ``Storage.list_reusing``) and listed with the same tag costs no HEAD
either: the tag is the listing's ETag, size and last-modified time. What a
HEAD told is also remembered (:class:`ListingMemo`) with the ETag, size and
last-modified time the listing showed: the next listing of this process
reuses it for every object whose three are unchanged, so a second rebuild of
an unchanged bucket sends no HEAD at all. Any write of an object (bytes or
metadata: a metadata update is a copy) gives it a new last-modified time;
only answers given at least two seconds after that time are remembered, so a
later write cannot share it (S3 times have one-second precision).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from ...models import StoredObject
from .errors import translate_errors
from .keys import our_entries
from .metadata import listed_object

#: How long after an object's last write a HEAD answer must come to be remembered.
SETTLED = timedelta(seconds=2)


def _fingerprint(entry: dict) -> str:
    """The object's tag: what changes in its listing entry whenever it is written (bytes or metadata)."""
    modified = entry.get("LastModified")
    return f"{entry.get('ETag')}/{entry.get('Size')}/{modified.isoformat() if modified else ''}"


def _settled(head: dict, last_modified: datetime | None) -> bool:
    """Did S3 answer the HEAD at least :data:`SETTLED` after the object's last write (its own clock)?"""
    date = head.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not date or last_modified is None:
        return False
    try:
        answered = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return False
    return answered - last_modified >= SETTLED


class ListingMemo:
    """The metadata HEADs told during the last complete listing, by key and listing fingerprint.

    Shared by the threads of one storage object; replaced as a whole at the end
    of each complete listing, so it never holds more than the bucket's objects.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, tuple[str, StoredObject]] = {}

    def get(self, entry: dict) -> StoredObject | None:
        with self._lock:
            found = self._known.get(entry["Key"])
        if found is None or found[0] != _fingerprint(entry):
            return None
        return found[1]

    def replace(self, known: dict[str, tuple[str, StoredObject]]) -> None:
        with self._lock:
            self._known = known


def _head(storage, project: str, filename: str, entry: dict, seen: dict) -> StoredObject | None:
    """HEAD one listed object (on a pool thread); remember its answer in ``seen`` when settled."""
    head = storage.head_key(entry["Key"])
    if head is None:
        return None  # deleted while we listed
    found = storage.stored_from_head(project, filename, entry["Key"], head)
    same = head.get("ETag") == entry.get("ETag") and int(head.get("ContentLength", -1)) == entry.get("Size")
    if same and _settled(head, entry.get("LastModified")):
        found = replace(found, tag=_fingerprint(entry))
        seen[entry["Key"]] = (found.tag, found)  # one key per thread: dict writes are atomic
    return found


def _pages(storage) -> Iterator[dict]:
    """The listing pages under the prefix, each request's errors translated."""
    args: dict = {"Bucket": storage.bucket}
    if storage.prefix:
        args["Prefix"] = storage.prefix
    pages = iter(storage.client.get_paginator("list_objects_v2").paginate(**args))
    while True:
        with translate_errors(storage, "listing the bucket"):
            page = next(pages, None)
        if page is None:
            return
        yield page


def _without_head(
    memo: ListingMemo, known: Mapping[str, str] | None, project: str, filename: str, entry: dict, seen: dict
) -> StoredObject | None:
    """The object when no HEAD is needed: known to the caller with this tag, or remembered."""
    tag = _fingerprint(entry)
    remembered = memo.get(entry)
    if remembered is not None:
        seen[entry["Key"]] = (tag, remembered)  # kept for the next listing
    if known is not None and known.get(entry["Key"]) == tag:
        return replace(listed_object(project, filename, entry), tag=tag)
    return remembered


def list_objects(
    storage, metadata_for: Callable[[str], bool] | None = None, known: Mapping[str, str] | None = None
) -> Iterator[StoredObject]:
    """Every object of ``storage`` (an S3Storage) under its prefix; see the module docstring.

    At most ``4 × list_workers`` HEADs are queued at a time, so memory stays
    bounded however large the bucket is.
    """
    limit = storage.list_workers * 4
    in_flight: collections.deque = collections.deque()
    memo: ListingMemo = storage.listing_memo
    seen: dict[str, tuple[str, StoredObject]] = {}
    with ThreadPoolExecutor(storage.list_workers, thread_name_prefix="s3-list") as pool:
        for page in _pages(storage):
            for project, filename, entry in our_entries(storage.layout, page.get("Contents", ())):
                if metadata_for is not None and not metadata_for(filename):
                    yield listed_object(project, filename, entry)
                    continue
                found = _without_head(memo, known, project, filename, entry, seen)
                if found is not None:
                    yield found
                    continue
                while len(in_flight) >= limit:
                    found = in_flight.popleft().result()
                    if found is not None:  # None: deleted while we listed
                        yield found
                in_flight.append(pool.submit(_head, storage, project, filename, entry, seen))
        while in_flight:
            found = in_flight.popleft().result()
            if found is not None:
                yield found
    memo.replace(seen)
