"""The object-metadata codec of the S3 backend.

The metadata dict is stored as S3 user metadata (``x-amz-meta-<key>``), which
must be ASCII: values go through the shared RFC 2047 codec
(:func:`~pypicloud.storage.objectstore.encode_metadata_value`). S3 lower-cases
names and limits user metadata to 2 KB in total, so a larger dict is refused
with InvalidUpload before anything is sent. ``storage.metadata.<name>`` values
(``extra``) are written on every object and left out of what is read back when
the stored value equals the configured one. Metadata pypicloud 1.x wrote
(``hash-sha256``, ``hash-md5`` ...) is read back under our names.
"""

from __future__ import annotations

from ...models import StoredObject
from .. import legacy_layout
from ..objectstore import check_metadata, check_metadata_size, decode_metadata_value, encode_metadata_value

#: S3's limit on user metadata: keys plus values, in UTF-8 bytes.
MAX_METADATA_BYTES = 2048


def encode(metadata: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """``metadata`` with the ``extra`` values added, encoded for S3; InvalidUpload when too large."""
    check_metadata(metadata)
    merged = {**extra, **metadata}
    encoded = {k: encode_metadata_value(v) for k, v in merged.items()}
    check_metadata_size(
        sum(len(k.encode()) + len(v.encode()) for k, v in encoded.items()), MAX_METADATA_BYTES, "S3"
    )
    return encoded


def decode(raw: dict[str, str] | None, extra: dict[str, str]) -> dict[str, str]:
    """Reverses :func:`encode` (the configured ``extra`` values are left out)."""
    result = {}
    for key, value in (raw or {}).items():
        key = key.lower()
        value = decode_metadata_value(value)
        if extra.get(key) == value:
            continue
        result[key] = value
    return result


def stored_object(project: str, filename: str, key: str, head: dict, extra: dict[str, str]) -> StoredObject:
    """A HeadObject answer as a StoredObject, with pypicloud 1.x's names mapped to ours."""
    return StoredObject(
        project=project,
        filename=filename,
        size=int(head.get("ContentLength", 0)),
        metadata=legacy_layout.from_v1(
            decode(head.get("Metadata"), extra), last_modified=head.get("LastModified")
        ),
        key=key,
        last_modified=head.get("LastModified"),
    )


def listed_object(project: str, filename: str, entry: dict) -> StoredObject:
    """A ListObjectsV2 entry as a StoredObject without metadata (a listing carries none)."""
    return StoredObject(
        project=project,
        filename=filename,
        size=entry["Size"],
        metadata={},
        key=entry["Key"],
        last_modified=entry["LastModified"],
    )
