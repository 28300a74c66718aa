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
either. The tag is the listing's ETag, size and last-modified time: any write
of an object (bytes or metadata: a metadata update is a copy) gives it a new
last-modified time. A HEAD's answer gets a tag only when S3 gave it at least
two seconds after that time, so that no later write can share it (S3 times
have one-second precision); an answer without a tag is asked for again.
"""

from __future__ import annotations

import collections
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


def _head(storage, project: str, filename: str, entry: dict) -> StoredObject | None:
    """HEAD one listed object (on a pool thread); tagged when settled."""
    head = storage.head_key(entry["Key"])
    if head is None:
        return None  # deleted while we listed
    found = storage.stored_from_head(project, filename, entry["Key"], head)
    same = head.get("ETag") == entry.get("ETag") and int(head.get("ContentLength", -1)) == entry.get("Size")
    if same and _settled(head, entry.get("LastModified")):
        found = replace(found, tag=_fingerprint(entry))
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


def list_objects(
    storage, metadata_for: Callable[[str], bool] | None = None, known: Mapping[str, str] | None = None
) -> Iterator[StoredObject]:
    """Every object of ``storage`` (an S3Storage) under its prefix; see the module docstring.

    At most ``4 × list_workers`` HEADs are queued at a time, so memory stays
    bounded however large the bucket is.
    """
    limit = storage.list_workers * 4
    in_flight: collections.deque = collections.deque()
    with ThreadPoolExecutor(storage.list_workers, thread_name_prefix="s3-list") as pool:
        for page in _pages(storage):
            for project, filename, entry in our_entries(storage.layout, page.get("Contents", ())):
                if metadata_for is not None and not metadata_for(filename):
                    yield listed_object(project, filename, entry)
                    continue
                tag = _fingerprint(entry)
                if known is not None and known.get(entry["Key"]) == tag:
                    yield replace(listed_object(project, filename, entry), tag=tag)
                    continue
                while len(in_flight) >= limit:
                    found = in_flight.popleft().result()
                    if found is not None:  # None: deleted while we listed
                        yield found
                in_flight.append(pool.submit(_head, storage, project, filename, entry))
        while in_flight:
            found = in_flight.popleft().result()
            if found is not None:
                yield found
