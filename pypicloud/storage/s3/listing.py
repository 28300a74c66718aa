"""Listing the bucket (index rebuilds and migrations) with as few requests as possible.

A ListObjectsV2 page gives each object's key, size, last-modified time and
ETag, but no user metadata. So an object whose metadata the caller does not
need (``metadata_for`` says so: the companion ``.metadata`` files of a
rebuild) is described from the listing alone, and only the others cost a
HeadObject (never a GET of the body). Those HEADs run on a bounded thread
pool while the next listing page is fetched, so a rebuild is not one
sequential round trip per object and never waits for a page's slowest HEAD
before listing on.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from ...models import StoredObject
from .errors import translate_errors
from .keys import our_entries
from .metadata import listed_object


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


def list_objects(storage, metadata_for: Callable[[str], bool] | None = None) -> Iterator[StoredObject]:
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
                while len(in_flight) >= limit:
                    found = in_flight.popleft().result()
                    if found is not None:  # None: deleted while we listed
                        yield found
                in_flight.append(pool.submit(storage.stat_key, project, filename, entry["Key"]))
        while in_flight:
            found = in_flight.popleft().result()
            if found is not None:
                yield found
