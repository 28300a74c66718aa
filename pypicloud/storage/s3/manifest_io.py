"""The storage manifest of an S3 bucket (see :mod:`pypicloud.storage.manifest`).

One object, ``<prefix>.pypicloud/manifest.json.gz``, written by one PutObject
(so readers see the old manifest or the whole new one, never a mix) and read
by one GetObject. Its name begins with a dot below the prefix, which the key
layout never parses as ``<hash>/<project>/<filename>`` or
``<project>/<filename>``: it is never listed, rebuilt, migrated or kept by
retention as a package. It carries the bucket's storage class and encryption,
and the configured ACL unless that ACL is a public one (the manifest names
every file, it is no download).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import botocore.exceptions as bexc

from ...errors import PypicloudError
from ..manifest import MANIFEST_NAME, MAX_BYTES, ManifestEntry, decode, encode
from .errors import is_missing
from .options import PUBLIC_ACLS
from .writes import write_args

LOG = logging.getLogger("pypicloud.storage.s3")


def manifest_key(storage) -> str:
    """The manifest's key in ``storage``'s bucket (below its prefix)."""
    return storage.prefix + MANIFEST_NAME


def read_manifest(storage) -> dict[str, ManifestEntry] | None:
    """The bucket's manifest, or None when there is none or it cannot be used (then a warning)."""
    key = manifest_key(storage)
    try:
        with storage._s3("reading the manifest"):
            try:
                response = storage.client.get_object(Bucket=storage.bucket, Key=key)
            except bexc.ClientError as exc:
                if is_missing(exc):
                    return None
                raise
            if int(response.get("ContentLength") or 0) > MAX_BYTES:
                response["Body"].close()
                raise ValueError(f"larger than {MAX_BYTES} bytes")
            data = response["Body"].read()
        return decode(data)
    except (ValueError, PypicloudError, bexc.BotoCoreError, bexc.ClientError) as exc:
        # Without it a rebuild asks S3 about every object: slower, still right.
        LOG.warning("ignoring the manifest s3://%s/%s: %s", storage.bucket, key, exc)
        return None


def write_manifest(storage, entries: Mapping[str, ManifestEntry]) -> bool:
    """Replace the bucket's manifest with ``entries`` (one PutObject); False when read-only."""
    if storage.read_only:
        return False
    args = write_args(storage, None)
    if args.get("ACL") in PUBLIC_ACLS:
        del args["ACL"]
    body = encode(entries)
    with storage._s3("writing the manifest"):
        storage.client.put_object(
            Bucket=storage.bucket,
            Key=manifest_key(storage),
            Body=body,
            ContentType="application/gzip",
            **args,
        )
    return True
