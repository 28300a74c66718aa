"""The storage manifest: a snapshot of what the index knows of each object, kept in storage.

A rebuild into an empty index (a new server, a lost database) would otherwise
have to ask an object store for every object's metadata, one request each
(S3 lists keys, sizes and times but no user metadata). The manifest holds,
for each object key, the :attr:`~pypicloud.models.StoredObject.tag` the
metadata was read with and that metadata; an object that storage lists with
exactly that tag has not been written since, so its metadata is the
manifest's. An object listed with any other tag, or missing from the
manifest, is asked about as before: a stale manifest costs requests, never a
wrong index row.

The format is storage-agnostic (gzip-compressed JSON, one object)::

    {"format": "pypicloud-manifest", "version": 1, "written": "<ISO time>",
     "objects": {"<key>": ["<tag>", {"<metadata key>": "<value>", ...}], ...}}

:func:`decode` refuses (ValueError) anything else, so a truncated, foreign or
corrupt manifest is never half-used.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

#: The manifest's name below the storage prefix. It begins with a dot, so no
#: key layout takes it for a package (``check_name`` refuses such a name).
MANIFEST_NAME = ".pypicloud/manifest.json.gz"
FORMAT = "pypicloud-manifest"
VERSION = 1
#: Largest manifest read back, uncompressed (a corrupt or hostile object
#: must not exhaust memory); about a million files.
MAX_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class ManifestEntry:
    """One object in the manifest: the tag its metadata was read with, and that metadata."""

    tag: str
    metadata: dict[str, str]


def encode(entries: Mapping[str, ManifestEntry]) -> bytes:
    """The manifest of ``entries`` (object key to entry) as bytes; entries without a tag are left out."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "written": datetime.now(UTC).isoformat(),
        "objects": {key: [e.tag, e.metadata] for key, e in entries.items() if e.tag},
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    # mtime=0: the same index gives the same bytes (and the same ETag) every time.
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


def _inflate(data: bytes) -> bytes:
    """Decompress with a bound on the size (ValueError beyond :data:`MAX_BYTES`)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    try:
        text = inflater.decompress(data, MAX_BYTES + 1)
    except zlib.error as exc:
        raise ValueError(f"not gzip data: {exc}") from None
    if len(text) > MAX_BYTES or inflater.unconsumed_tail:
        raise ValueError(f"larger than {MAX_BYTES} bytes uncompressed")
    if not inflater.eof:
        raise ValueError("truncated")
    return text


def _entry(key: object, value: object) -> ManifestEntry:
    if not isinstance(key, str) or not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"bad entry for {key!r}")
    tag, metadata = value
    if not isinstance(tag, str) or not tag or not isinstance(metadata, dict):
        raise ValueError(f"bad entry for {key!r}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError(f"bad metadata for {key!r}")
    return ManifestEntry(tag, metadata)


def decode(data: bytes) -> dict[str, ManifestEntry]:
    """The entries of a manifest :func:`encode` wrote; ValueError for anything else."""
    try:
        document = json.loads(_inflate(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError("not a pypicloud manifest")
    if document.get("version") != VERSION:
        raise ValueError(f"manifest version {document.get('version')!r} is not {VERSION}")
    objects = document.get("objects")
    if not isinstance(objects, dict):
        raise ValueError("no objects")
    return {key: _entry(key, value) for key, value in objects.items()}
