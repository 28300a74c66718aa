"""Building the boto3 S3 client from the backend's options."""

from __future__ import annotations

import boto3
from botocore.config import Config


def make_client(storage, region_name: str | None):
    """One thread-safe boto3 client for ``storage`` (an S3Storage) in ``region_name``."""
    options: dict = {}
    if storage.signature_version:
        options["signature_version"] = storage.signature_version
    if storage.addressing_style:
        options["s3"] = {"addressing_style": storage.addressing_style}
    if storage.connect_timeout is not None:
        options["connect_timeout"] = storage.connect_timeout
    if storage.read_timeout is not None:
        options["read_timeout"] = storage.read_timeout
    if storage.max_attempts is not None:
        options["retries"] = {"total_max_attempts": int(storage.max_attempts)}
    if storage.endpoint_url:
        # S3-compatible services often reject the checksums newer botocore
        # adds to every upload by default; send them only where required.
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    config = Config(
        max_pool_connections=storage.max_pool_connections, user_agent_extra="pypicloud", **options
    )
    session = boto3.session.Session(**storage._credentials)
    extra = {} if storage.verify is None else {"verify": storage.verify}
    return session.client(
        "s3", region_name=region_name, endpoint_url=storage.endpoint_url, config=config, **extra
    )
