"""The S3 key layout (pypicloud 1.x's, shared with GCS and Azure).

Every object lives under ``storage.prefix`` (plain string concatenation, so
use ``packages/`` rather than ``packages`` for a folder)::

    <prefix><hash>/<project>/<filename>     (storage.prepend_hash = true, the default)
    <prefix><project>/<filename>            (storage.prepend_hash = false)

``<hash>`` is the first 4 hex characters of the MD5 digest of the UTF-8
filename. It only spreads keys over S3's partitions; MD5 is used (not for
security) because it is the layout pypicloud 1.x wrote, so a bucket filled by
1.x keeps working. Listing skips every key that does not parse into this
layout (including a hash segment that does not match the filename), so
foreign objects in the bucket are never taken for packages.

The layout itself lives in :mod:`pypicloud.storage.objectstore`; this module
names it for the S3 package and parses listing pages with it.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..objectstore import KeyLayout, key_hash

__all__ = ["KeyLayout", "key_hash", "our_entries"]


def our_entries(layout: KeyLayout, entries) -> Iterator[tuple[str, str, dict]]:
    """``(project, filename, entry)`` for each ListObjectsV2 entry that is one of our keys."""
    for entry in entries:
        parsed = layout.parse(entry["Key"])
        if parsed is not None:
            yield (*parsed, entry)
