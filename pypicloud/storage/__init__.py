"""Storage backends: where package files live (SPEC section 6)."""

from __future__ import annotations

from ..plugins import build
from .base import Storage, check_name

ALIASES = {
    "file": "pypicloud.storage.file.FileStorage",
    "s3": "pypicloud.storage.s3.S3Storage",
    # pypicloud 1.x's dotted names
    "pypicloud.storage.filestorage": "pypicloud.storage.file.FileStorage",
    "pypicloud.storage.s3storage": "pypicloud.storage.s3.S3Storage",
    "pypicloud.storage.files.filestorage": "pypicloud.storage.file.FileStorage",
    "pypicloud.storage.s3.s3storage": "pypicloud.storage.s3.S3Storage",
}


def storage_from_settings(settings) -> Storage:
    """Build the storage backend named by ``pypi.storage`` (default ``file``)."""
    return build(settings, "pypi.storage", "file", ALIASES, Storage)


__all__ = ["Storage", "check_name", "storage_from_settings", "ALIASES"]
