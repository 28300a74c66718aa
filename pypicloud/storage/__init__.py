"""Storage backends: where package files live (SPEC section 6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..plugins import build, resolve
from .base import Storage, check_name

if TYPE_CHECKING:
    from ..settings import Settings

ALIASES = {
    "file": "pypicloud.storage.file.FileStorage",
    "s3": "pypicloud.storage.s3.S3Storage",
    "gcs": "pypicloud.storage.gcs.GoogleCloudStorage",
    "azure-blob": "pypicloud.storage.azure_blob.AzureBlobStorage",
    "cloudfront": "pypicloud.storage.cloudfront.CloudFrontS3Storage",
    "memory": "pypicloud.storage.memory.MemoryStorage",
    # pypicloud 1.x's dotted names
    "pypicloud.storage.filestorage": "pypicloud.storage.file.FileStorage",
    "pypicloud.storage.s3storage": "pypicloud.storage.s3.S3Storage",
    "pypicloud.storage.googlecloudstorage": "pypicloud.storage.gcs.GoogleCloudStorage",
    "pypicloud.storage.azureblobstorage": "pypicloud.storage.azure_blob.AzureBlobStorage",
    "pypicloud.storage.cloudfronts3storage": "pypicloud.storage.cloudfront.CloudFrontS3Storage",
    "pypicloud.storage.s3.cloudfronts3storage": "pypicloud.storage.cloudfront.CloudFrontS3Storage",
    "pypicloud.storage.files.filestorage": "pypicloud.storage.file.FileStorage",
    "pypicloud.storage.s3.s3storage": "pypicloud.storage.s3.S3Storage",
}


def storage_class(settings: Settings) -> type[Storage]:
    """The backend class ``pypi.storage`` names (ConfigError when it names none)."""
    return resolve("pypi.storage", settings.get_str("pypi.storage", "file"), ALIASES, Storage)


def storage_from_settings(settings: Settings) -> Storage:
    """Build the storage backend named by ``pypi.storage`` (default ``file``)."""
    return build(settings, "pypi.storage", "file", ALIASES, Storage)


__all__ = ["Storage", "check_name", "storage_class", "storage_from_settings", "ALIASES"]
