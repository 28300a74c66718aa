"""Reading and checking the ``storage.*`` settings of the S3 backend.

:func:`options_from_settings` returns the keyword arguments of
:class:`~pypicloud.storage.s3.S3Storage`; each group of related keys is read
by one small function, which raises ConfigError naming the key for a bad
value, so start-up stops with a message an admin can act on.
"""

from __future__ import annotations

import os
import re

from ...errors import ConfigError
from ..base import METADATA_KEY

#: Longest lifetime S3 accepts for a SigV4 presigned URL (7 days).
MAX_SIGV4_EXPIRY = 7 * 24 * 3600

STORAGE_CLASSES = (
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "OUTPOSTS",
    "SNOW",
    "EXPRESS_ONEZONE",
)
#: Classes whose objects cannot be read without a restore: useless for an index.
ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
SSE_VALUES = ("AES256", "aws:kms", "aws:kms:dsse")
CANNED_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
PUBLIC_ACLS = ("public-read", "public-read-write")
SIGNATURE_VERSIONS = ("s3v4", "s3")
ADDRESSING_STYLES = ("auto", "path", "virtual")

#: Every setting the S3 backend reads (``storage.metadata.<name>`` besides).
SETTINGS_KEYS = frozenset(
    """
    storage.bucket storage.region_name storage.endpoint_url storage.verify
    storage.aws_access_key_id storage.aws_secret_access_key storage.aws_session_token
    storage.prefix storage.prepend_hash storage.expire_after storage.buffer_time
    storage.redirect_urls storage.public_url storage.storage_class
    storage.reduced_redundancy storage.server_side_encryption storage.sse_kms_key_id
    storage.object_acl storage.signature_version storage.addressing_style
    storage.connect_timeout storage.read_timeout storage.max_pool_connections
    storage.create_bucket storage.read_only storage.multipart_grace
    """.split()
)


def one_of(values) -> str:
    return "one of " + ", ".join(values)


def verify_option(settings) -> bool | str | None:
    """``storage.verify`` as pypicloud 1.x read it: a boolean, or the path of a CA bundle."""
    raw = settings.get_str("storage.verify")
    if raw is None or not raw.strip():
        return None
    if raw.strip().lower() in ("false", "no", "off", "0", "f", "n"):
        return False
    if raw.strip().lower() in ("true", "yes", "on", "1", "t", "y"):
        return True
    path = settings.path(raw.strip())
    if not os.path.isfile(path):
        raise ConfigError("storage.verify", raw, "true, false, or the path of a CA bundle file (not found)")
    return path


def bucket_option(settings) -> str:
    bucket = settings.get_str("storage.bucket")
    if bucket is None:
        raise ConfigError("storage.bucket", None, "required when pypi.storage = s3")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]", bucket):
        raise ConfigError("storage.bucket", bucket, "a bucket name: 3-255 letters, digits, '.', '-' or '_'")
    return bucket


def endpoint_option(settings) -> str | None:
    endpoint_url = settings.get_str("storage.endpoint_url")
    if endpoint_url is not None and not re.match(r"^https?://[^/\s]+", endpoint_url):
        raise ConfigError(
            "storage.endpoint_url",
            endpoint_url,
            "a URL such as http://127.0.0.1:9000 or https://s3.example.com",
        )
    return endpoint_url


def credentials_option(settings) -> dict[str, str | None]:
    """The access key pair and session token: both of the pair or neither; a token needs the pair."""
    key_id = settings.get_str("storage.aws_access_key_id")
    secret = settings.get_str("storage.aws_secret_access_key")
    token = settings.get_str("storage.aws_session_token")
    if bool(key_id) != bool(secret):
        missing = "storage.aws_secret_access_key" if key_id else "storage.aws_access_key_id"
        raise ConfigError(
            missing, None, "set both storage.aws_access_key_id and storage.aws_secret_access_key, or neither"
        )
    if token and not key_id:
        raise ConfigError(
            "storage.aws_session_token",
            None,
            "needs storage.aws_access_key_id and storage.aws_secret_access_key",
        )
    return {"aws_access_key_id": key_id, "aws_secret_access_key": secret, "aws_session_token": token}


def signing_options(settings, public_url: bool) -> dict:
    """Signature version, URL lifetime and the buffer before expiry (SigV4 URLs live 7 days at most)."""
    version = settings.get_str("storage.signature_version", "s3v4").lower()
    version = {"v4": "s3v4", "sigv4": "s3v4"}.get(version, version)
    if version not in SIGNATURE_VERSIONS:
        raise ConfigError("storage.signature_version", version, one_of(SIGNATURE_VERSIONS))
    expire_after = settings.get_int("storage.expire_after", 86400, minimum=1)
    if version == "s3v4" and not public_url and expire_after > MAX_SIGV4_EXPIRY:
        raise ConfigError(
            "storage.expire_after",
            str(expire_after),
            f"signed URLs live at most {MAX_SIGV4_EXPIRY} seconds (7 days)",
        )
    buffer_time = settings.get_int("storage.buffer_time", 600, minimum=0)
    if buffer_time >= expire_after:
        raise ConfigError(
            "storage.buffer_time",
            str(buffer_time),
            f"must be less than storage.expire_after ({expire_after})",
        )
    return {"signature_version": version, "expire_after": expire_after, "buffer_time": buffer_time}


def storage_class_option(settings) -> str | None:
    """``storage.storage_class`` (no archive class), or 1.x's ``storage.reduced_redundancy``."""
    storage_class = settings.get_str("storage.storage_class")
    if storage_class is not None:
        storage_class = storage_class.upper()
        if storage_class in ARCHIVE_CLASSES:
            raise ConfigError(
                "storage.storage_class",
                storage_class,
                "archive classes cannot be read without a restore; " + one_of(STORAGE_CLASSES),
            )
        if storage_class not in STORAGE_CLASSES:
            raise ConfigError("storage.storage_class", storage_class, one_of(STORAGE_CLASSES))
    if settings.get_bool("storage.reduced_redundancy", False):
        if storage_class not in (None, "REDUCED_REDUNDANCY"):
            raise ConfigError(
                "storage.reduced_redundancy",
                "true",
                f"conflicts with storage.storage_class = {storage_class}",
            )
        storage_class = "REDUCED_REDUNDANCY"
    return storage_class


def encryption_options(settings) -> dict:
    """Server-side encryption; a KMS key id alone means ``aws:kms``."""
    sse = settings.get_str("storage.server_side_encryption")
    kms_key = settings.get_str("storage.sse_kms_key_id")
    if sse is not None:
        canonical = {v.lower(): v for v in SSE_VALUES}.get(sse.lower())
        if canonical is None:
            raise ConfigError("storage.server_side_encryption", sse, one_of(SSE_VALUES))
        sse = canonical
    if kms_key is not None:
        if sse is None:
            sse = "aws:kms"
        elif not sse.startswith("aws:kms"):
            raise ConfigError(
                "storage.sse_kms_key_id", kms_key, "needs storage.server_side_encryption = aws:kms"
            )
    return {"server_side_encryption": sse, "sse_kms_key_id": kms_key}


def acl_option(settings, public_url: bool) -> str | None:
    """A canned ACL or ``none``; public URLs need objects anyone may read."""
    object_acl = settings.get_str("storage.object_acl")
    if object_acl is None:
        return None
    object_acl = object_acl.lower()
    if object_acl not in CANNED_ACLS + ("none",):
        raise ConfigError(
            "storage.object_acl",
            object_acl,
            "a canned ACL: " + one_of(CANNED_ACLS) + " (or none to send no ACL)",
        )
    if public_url and object_acl not in PUBLIC_ACLS + ("none",):
        raise ConfigError(
            "storage.object_acl",
            object_acl,
            "storage.public_url = true needs public-read objects "
            "(public-read, public-read-write, or none when a bucket "
            "policy makes them public)",
        )
    return object_acl


def extra_metadata_option(settings) -> dict[str, str]:
    """``storage.metadata.<name> = value``: metadata written on every object."""
    metadata: dict[str, str] = {}
    for name, value in settings.with_prefix("storage.metadata.").items():
        if not METADATA_KEY.match(name):
            raise ConfigError(
                f"storage.metadata.{name}", value, "metadata names are lowercase letters, digits, '-' and '_'"
            )
        metadata[name] = value
    return metadata


def connection_options(settings) -> dict:
    """Addressing style and timeouts."""
    style = settings.get_str("storage.addressing_style")
    if style is not None:
        style = style.lower()
        if style not in ADDRESSING_STYLES:
            raise ConfigError("storage.addressing_style", style, one_of(ADDRESSING_STYLES))
    options: dict = {"addressing_style": style}
    for name in ("connect_timeout", "read_timeout"):
        value = settings.get_float(f"storage.{name}")
        if value is not None and value <= 0:
            raise ConfigError(f"storage.{name}", str(value), "a number of seconds above 0")
        options[name] = value
    return options


def options_from_settings(settings) -> dict:
    """Read and validate every ``storage.*`` key; the keyword arguments of ``S3Storage``.

    The keys are checked in a fixed order, so of several bad ones the same is named first.
    """
    public_url = settings.get_bool("storage.public_url", False)
    options: dict = {"bucket": bucket_option(settings), "endpoint_url": endpoint_option(settings)}
    options["credentials"] = credentials_option(settings)
    options.update(public_url=public_url, **signing_options(settings, public_url))
    options["storage_class"] = storage_class_option(settings)
    options.update(encryption_options(settings))
    options["object_acl"] = acl_option(settings, public_url)
    options["metadata"] = extra_metadata_option(settings)
    options.update(connection_options(settings))
    options.update(
        verify=verify_option(settings),
        region_name=settings.get_str("storage.region_name"),
        prefix=settings.get_str("storage.prefix", "") or "",
        prepend_hash=settings.get_bool("storage.prepend_hash", True),
        redirect_urls=settings.get_bool("storage.redirect_urls", True),
        max_pool_connections=settings.get_int("storage.max_pool_connections", None, minimum=1),
        create_bucket=settings.get_bool("storage.create_bucket", True),
        read_only=settings.get_bool("storage.read_only", False),
        multipart_grace=settings.get_int("storage.multipart_grace", 86400, minimum=0),
    )
    return options
