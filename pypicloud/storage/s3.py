"""Package files in an S3 bucket (or any S3-compatible object store).

Key layout
----------
Every object lives under ``storage.prefix`` (plain string concatenation, so
use ``packages/`` rather than ``packages`` for a folder)::

    <prefix><hash>/<project>/<filename>     (storage.prepend_hash = true, the default)
    <prefix><project>/<filename>            (storage.prepend_hash = false)

``<hash>`` is the first 4 hex characters of the MD5 digest of the UTF-8
filename (``hashlib.md5(filename.encode()).hexdigest()[:4]``). It only spreads
keys over S3's partitions; MD5 is used (not for security) because it is the
layout pypicloud 1.x wrote, so a bucket filled by 1.x keeps working.
:meth:`S3Storage.list` skips every key that does not parse into this layout
(including a hash segment that does not match the filename), so foreign objects
in the bucket are never taken for packages.

Metadata
--------
The metadata dict is stored as S3 user metadata (``x-amz-meta-<key>``), which
must be ASCII. A value that is printable ASCII without leading, trailing or
doubled spaces is stored unchanged; any other value (non-ASCII, control
characters, empty, or one that itself looks like an encoded value) is stored as
an RFC 2047 encoded word ``=?UTF-8?B?<base64 of the UTF-8 bytes>?=``, which is
also the form S3 itself uses for non-ASCII metadata. Decoding reverses this, so
every ``str`` round-trips exactly. Keys must match
:data:`pypicloud.storage.base.METADATA_KEY` (lowercase), because S3 lower-cases
metadata names. S3 limits user metadata to 2 KB in total; a larger dict is
refused with InvalidUpload before anything is sent. ``storage.metadata.<name>``
values are written on every object and are left out of the metadata returned by
:meth:`stat` and :meth:`list` when the stored value equals the configured one.
Metadata pypicloud 1.x wrote (``hash-sha256``, ``hash-md5``, ``uploader`` ...)
is returned under our names (:func:`.legacy_layout.from_v1`), so a bucket 1.x
filled is indexed from HEADs alone.

Writes
------
``put(..., overwrite=False)`` is a conditional write: ``If-None-Match: *`` on
PutObject (bodies up to ``multipart_threshold``) or on CompleteMultipartUpload
(larger bodies, streamed in parts of ``multipart_chunksize`` with a few parts
in flight). S3 makes the object visible only on completion and refuses it with
412 when the name exists, so of two concurrent uploads exactly one wins
(StorageConflict for the other). boto3's transfer manager cannot send
``If-None-Match``, so this path uses its own bounded multipart writer; the
``overwrite=True`` path uses the transfer manager (``upload_fileobj``). Both
abort the multipart upload when the stream fails, leaving no object.

Signed URLs
-----------
:meth:`download_url` returns a presigned GET URL (``expires_at`` = UTC time it
stops working) or, with ``public_url``, the plain unsigned object URL
(``expires_at`` None). The service caches a signed URL in the index and reuses
it while :meth:`url_is_fresh` holds (more than ``buffer_time`` seconds left).
"""

from __future__ import annotations

import collections
import logging
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

import boto3
import botocore.exceptions as bexc
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from ..errors import (
    BackendUnavailable,
    ConfigError,
    FileNotFound,
    InvalidUpload,
    PypicloudError,
    StorageConflict,
)
from ..models import Redirect, StoredObject
from . import legacy_layout
from .base import METADATA_KEY, Storage

# The metadata encoding and key layout live in objectstore (shared with GCS and
# Azure); they are imported here under their old names, which stay importable.
from .objectstore import (  # noqa: F401
    BodyReader,
    KeyLayout,
    check_metadata,
    check_metadata_size,
    check_range,
    decode_metadata_value,
    encode_metadata_value,
    key_hash,
)
from .objectstore import read_full as _read_full

LOG = logging.getLogger(__name__)

MB = 1024 * 1024
CHUNK = MB
#: Largest object CopyObject can copy in one request; larger ones use multipart copy.
MAX_SINGLE_COPY = 5 * 1024 * MB
#: S3's limit on user metadata: keys plus values, in UTF-8 bytes.
MAX_METADATA_BYTES = 2048
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

_UNAVAILABLE_CODES = {
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
}
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidClientTokenId",
}
_NETWORK_ERRORS = (
    bexc.ConnectionError,
    bexc.HTTPClientError,
    bexc.NoCredentialsError,
    bexc.PartialCredentialsError,
)


def _verify_option(settings) -> bool | str | None:
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


def _error_code(exc: bexc.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _error_status(exc: bexc.ClientError) -> int:
    try:
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    except (TypeError, ValueError):
        return 0


def _is_missing(exc: bexc.ClientError) -> bool:
    return _error_code(exc) in ("404", "NoSuchKey", "NotFound") or _error_status(exc) == 404


def _is_precondition_failure(exc: bexc.ClientError) -> bool:
    # 412 when the name exists; 409 ConditionalRequestConflict when another
    # conditional write of the same name is completing at the same moment.
    code = _error_code(exc)
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412") or _error_status(exc) == 412


class _CountingReader:
    """A read-only, non-seekable view of a stream that counts the bytes read."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data


def _read_error(exc: BaseException) -> BackendUnavailable | None:
    if isinstance(exc, _NETWORK_ERRORS):
        return BackendUnavailable(f"S3 is unavailable: reading an object failed: {exc}")
    return None


class S3Reader(BodyReader):
    """The body of a GET: a binary, closeable, iterable file-like object.

    Read errors (connection lost, read timeout) become BackendUnavailable.
    """

    def __init__(self, body=None):
        super().__init__(body, _read_error)

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - best effort at garbage collection
            pass


class S3Storage(Storage):
    """Storage in an S3 bucket (``pypi.storage = s3``).

    ``__init__`` only builds the client (one thread-safe boto3 client and one
    TransferConfig); :meth:`from_settings` also checks (and maybe creates) the
    bucket via :meth:`ensure_bucket`.
    """

    def __init__(
        self,
        bucket: str,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        credentials: dict[str, str | None] | None = None,
        prefix: str = "",
        prepend_hash: bool = True,
        expire_after: int = 86400,
        buffer_time: int = 600,
        redirect_urls: bool = True,
        public_url: bool = False,
        storage_class: str | None = None,
        server_side_encryption: str | None = None,
        sse_kms_key_id: str | None = None,
        object_acl: str | None = None,
        metadata: dict[str, str] | None = None,
        signature_version: str | None = "s3v4",
        addressing_style: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_pool_connections: int | None = None,
        max_attempts: int | None = None,
        create_bucket: bool = True,
        read_only: bool = False,
        multipart_threshold: int = 8 * MB,
        multipart_chunksize: int = 8 * MB,
        max_concurrency: int = 4,
        list_workers: int = 16,
        health_timeout: float = 5.0,
        verify: bool | str | None = None,
        multipart_grace: int = 86400,
    ):
        """Plain keyword arguments, already validated by :meth:`from_settings`.

        ``credentials`` takes ``aws_access_key_id``, ``aws_secret_access_key``
        and ``aws_session_token``; without them boto3's default chain is used
        (environment, shared profile, instance role). ``object_acl`` defaults
        to ``public-read`` when ``public_url`` is set; ``"none"`` sends no ACL
        at all (buckets with ACLs disabled, made public by a bucket policy).
        ``verify`` is boto3's: False skips TLS certificate checks, a path names
        a CA bundle, None uses the default.
        """
        if not bucket:
            raise ValueError("bucket is required")
        self.bucket = bucket
        self.region_name = region_name or None
        self.endpoint_url = endpoint_url or None
        self._credentials = {k: v for k, v in (credentials or {}).items() if v}
        self.prefix = prefix or ""
        self.prepend_hash = prepend_hash
        self.expire_after = int(expire_after)
        self.buffer_time = int(buffer_time)
        self.redirect_urls = redirect_urls
        self.public_url = public_url
        self.storage_class = storage_class or None
        self.server_side_encryption = server_side_encryption or None
        self.sse_kms_key_id = sse_kms_key_id or None
        if object_acl is None and public_url:
            object_acl = "public-read"
        self.object_acl = None if (object_acl or "none").lower() == "none" else object_acl
        self.extra_metadata = dict(metadata or {})
        for name, value in self.extra_metadata.items():
            if not METADATA_KEY.match(name) or not isinstance(value, str):
                raise ValueError(f"invalid extra metadata {name!r}: {value!r}")
        self.signature_version = signature_version or None
        self.addressing_style = addressing_style or None
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_pool_connections = max_pool_connections or max(32, list_workers * 2)
        self.max_attempts = max_attempts
        self.create_bucket = create_bucket
        self.read_only = read_only
        self.multipart_threshold = max(int(multipart_threshold), 5 * MB)
        self.multipart_chunksize = max(int(multipart_chunksize), 5 * MB)
        self.max_concurrency = max(1, int(max_concurrency))
        self.list_workers = max(1, int(list_workers))
        self.health_timeout = health_timeout
        self.verify = verify
        self.transfer_config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_chunksize,
            max_concurrency=self.max_concurrency,
            use_threads=True,
        )
        # Bound what one overwrite upload of a non-seekable stream buffers.
        self.transfer_config.max_in_memory_upload_chunks = self.max_concurrency + 1
        # Unfinished multipart uploads of ours older than this are aborted at
        # start-up (0: never); the bucket this server creates also gets a
        # lifecycle rule that aborts them after a day.
        self.multipart_grace = max(0, int(multipart_grace))
        self._health_pool: ThreadPoolExecutor | None = None
        # One pool for the parts of every multipart upload: a pool per upload
        # made threads (and their malloc arenas) come and go with each upload.
        self._upload_pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.client = self._make_client(self.region_name)

    def __repr__(self) -> str:
        return f"<S3Storage bucket={self.bucket!r} prefix={self.prefix!r}>"

    def _make_client(self, region_name: str | None):
        options: dict = {}
        if self.signature_version:
            options["signature_version"] = self.signature_version
        if self.addressing_style:
            options["s3"] = {"addressing_style": self.addressing_style}
        if self.connect_timeout is not None:
            options["connect_timeout"] = self.connect_timeout
        if self.read_timeout is not None:
            options["read_timeout"] = self.read_timeout
        if self.max_attempts is not None:
            options["retries"] = {"total_max_attempts": int(self.max_attempts)}
        if self.endpoint_url:
            # S3-compatible services often reject the checksums newer botocore
            # adds to every upload by default; send them only where required.
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        config = Config(
            max_pool_connections=self.max_pool_connections, user_agent_extra="pypicloud", **options
        )
        session = boto3.session.Session(**self._credentials)
        extra = {} if self.verify is None else {"verify": self.verify}
        return session.client(
            "s3", region_name=region_name, endpoint_url=self.endpoint_url, config=config, **extra
        )

    # Settings -------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings) -> S3Storage:
        storage = cls(**cls.options_from_settings(settings))
        try:
            storage.ensure_bucket()
            if not storage.read_only and storage.multipart_grace:
                storage.abort_stale_uploads(storage.multipart_grace)
        except BaseException:
            storage.close()
            raise
        return storage

    @staticmethod
    def options_from_settings(settings) -> dict:
        """Read and validate every ``storage.*`` key; the keyword arguments of ``__init__``."""
        bucket = settings.get_str("storage.bucket")
        if bucket is None:
            raise ConfigError("storage.bucket", None, "required when pypi.storage = s3")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]", bucket):
            raise ConfigError(
                "storage.bucket", bucket, "a bucket name: 3-255 letters, digits, '.', '-' or '_'"
            )

        endpoint_url = settings.get_str("storage.endpoint_url")
        if endpoint_url is not None and not re.match(r"^https?://[^/\s]+", endpoint_url):
            raise ConfigError(
                "storage.endpoint_url",
                endpoint_url,
                "a URL such as http://127.0.0.1:9000 or https://s3.example.com",
            )

        key_id = settings.get_str("storage.aws_access_key_id")
        secret = settings.get_str("storage.aws_secret_access_key")
        token = settings.get_str("storage.aws_session_token")
        if bool(key_id) != bool(secret):
            missing = "storage.aws_secret_access_key" if key_id else "storage.aws_access_key_id"
            raise ConfigError(
                missing,
                None,
                "set both storage.aws_access_key_id and storage.aws_secret_access_key, or neither",
            )
        if token and not key_id:
            raise ConfigError(
                "storage.aws_session_token",
                None,
                "needs storage.aws_access_key_id and storage.aws_secret_access_key",
            )
        credentials = {
            "aws_access_key_id": key_id,
            "aws_secret_access_key": secret,
            "aws_session_token": token,
        }

        public_url = settings.get_bool("storage.public_url", False)
        signature_version = settings.get_str("storage.signature_version", "s3v4")
        signature_version = {"v4": "s3v4", "sigv4": "s3v4"}.get(
            signature_version.lower(), signature_version.lower()
        )
        if signature_version not in SIGNATURE_VERSIONS:
            raise ConfigError(
                "storage.signature_version", signature_version, "one of " + ", ".join(SIGNATURE_VERSIONS)
            )

        expire_after = settings.get_int("storage.expire_after", 86400, minimum=1)
        if signature_version == "s3v4" and not public_url and expire_after > MAX_SIGV4_EXPIRY:
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

        storage_class = settings.get_str("storage.storage_class")
        if storage_class is not None:
            storage_class = storage_class.upper()
            if storage_class in ARCHIVE_CLASSES:
                raise ConfigError(
                    "storage.storage_class",
                    storage_class,
                    "archive classes cannot be read without a restore; one of " + ", ".join(STORAGE_CLASSES),
                )
            if storage_class not in STORAGE_CLASSES:
                raise ConfigError(
                    "storage.storage_class", storage_class, "one of " + ", ".join(STORAGE_CLASSES)
                )
        if settings.get_bool("storage.reduced_redundancy", False):
            if storage_class not in (None, "REDUCED_REDUNDANCY"):
                raise ConfigError(
                    "storage.reduced_redundancy",
                    "true",
                    f"conflicts with storage.storage_class = {storage_class}",
                )
            storage_class = "REDUCED_REDUNDANCY"

        sse = settings.get_str("storage.server_side_encryption")
        kms_key = settings.get_str("storage.sse_kms_key_id")
        if sse is not None:
            canonical = {v.lower(): v for v in SSE_VALUES}.get(sse.lower())
            if canonical is None:
                raise ConfigError("storage.server_side_encryption", sse, "one of " + ", ".join(SSE_VALUES))
            sse = canonical
        if kms_key is not None:
            if sse is None:
                sse = "aws:kms"
            elif not sse.startswith("aws:kms"):
                raise ConfigError(
                    "storage.sse_kms_key_id", kms_key, "needs storage.server_side_encryption = aws:kms"
                )

        object_acl = settings.get_str("storage.object_acl")
        if object_acl is not None:
            object_acl = object_acl.lower()
            if object_acl not in CANNED_ACLS + ("none",):
                raise ConfigError(
                    "storage.object_acl",
                    object_acl,
                    "a canned ACL: one of " + ", ".join(CANNED_ACLS) + " (or none to send no ACL)",
                )
            if public_url and object_acl not in PUBLIC_ACLS + ("none",):
                raise ConfigError(
                    "storage.object_acl",
                    object_acl,
                    "storage.public_url = true needs public-read objects "
                    "(public-read, public-read-write, or none when a bucket "
                    "policy makes them public)",
                )

        metadata: dict[str, str] = {}
        for name, value in settings.with_prefix("storage.metadata.").items():
            if not METADATA_KEY.match(name):
                raise ConfigError(
                    f"storage.metadata.{name}",
                    value,
                    "metadata names are lowercase letters, digits, '-' and '_'",
                )
            metadata[name] = value

        addressing_style = settings.get_str("storage.addressing_style")
        if addressing_style is not None:
            addressing_style = addressing_style.lower()
            if addressing_style not in ADDRESSING_STYLES:
                raise ConfigError(
                    "storage.addressing_style", addressing_style, "one of " + ", ".join(ADDRESSING_STYLES)
                )

        timeouts = {}
        for name in ("connect_timeout", "read_timeout"):
            value = settings.get_float(f"storage.{name}")
            if value is not None and value <= 0:
                raise ConfigError(f"storage.{name}", str(value), "a number of seconds above 0")
            timeouts[name] = value

        return dict(
            bucket=bucket,
            verify=_verify_option(settings),
            region_name=settings.get_str("storage.region_name"),
            endpoint_url=endpoint_url,
            credentials=credentials,
            prefix=settings.get_str("storage.prefix", "") or "",
            prepend_hash=settings.get_bool("storage.prepend_hash", True),
            expire_after=expire_after,
            buffer_time=buffer_time,
            redirect_urls=settings.get_bool("storage.redirect_urls", True),
            public_url=public_url,
            storage_class=storage_class,
            server_side_encryption=sse,
            sse_kms_key_id=kms_key,
            object_acl=object_acl,
            metadata=metadata,
            signature_version=signature_version,
            addressing_style=addressing_style,
            max_pool_connections=settings.get_int("storage.max_pool_connections", None, minimum=1),
            create_bucket=settings.get_bool("storage.create_bucket", True),
            read_only=settings.get_bool("storage.read_only", False),
            multipart_grace=settings.get_int("storage.multipart_grace", 86400, minimum=0),
            **timeouts,
        )

    # Bucket -----------------------------------------------------------------
    def ensure_bucket(self) -> None:
        """Check the bucket at start-up; create it when missing and allowed.

        Raises ConfigError (naming the key) for a missing bucket that may not be
        created, a bucket in another region than ``storage.region_name``, bad
        credentials or denied access; BackendUnavailable when S3 cannot be reached.
        """
        try:
            response = self.client.head_bucket(Bucket=self.bucket)
        except _NETWORK_ERRORS as exc:
            raise self._unavailable("checking the bucket", exc) from exc
        except bexc.ClientError as exc:
            status = _error_status(exc)
            if status == 404 or _error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
                self._create_missing_bucket()
                return
            if status in (301, 307, 400) and self._bucket_region(exc.response):
                self._check_region(self._bucket_region(exc.response))
                return
            if status == 403:
                raise self._diagnose_forbidden() from exc
            if status >= 500:
                raise self._unavailable("checking the bucket", exc) from exc
            raise
        self._check_region(self._bucket_region(response))

    @staticmethod
    def _bucket_region(response: dict) -> str | None:
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
        return response.get("BucketRegion") or headers.get("x-amz-bucket-region")

    def _check_region(self, actual: str | None) -> None:
        if not actual:
            return
        if self.region_name:
            if actual != self.region_name:
                raise ConfigError(
                    "storage.region_name",
                    self.region_name,
                    f"bucket {self.bucket} is in region {actual}; set storage.region_name = {actual}",
                )
            return
        if actual != self.client.meta.region_name:
            # No region configured: follow the bucket, so signed URLs carry the right one.
            LOG.info("S3 bucket %s is in region %s; using that region", self.bucket, actual)
            old, self.client = self.client, self._make_client(actual)
            self.region_name = actual
            old.close()

    def _create_missing_bucket(self) -> None:
        if not self.create_bucket or self.read_only:
            why = "storage.read_only = true" if self.read_only else "storage.create_bucket = false"
            raise ConfigError(
                "storage.bucket", self.bucket, f"the bucket does not exist and {why}: create it first"
            )
        region = self.region_name or self.client.meta.region_name
        args: dict = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        LOG.info("Creating S3 bucket %s in region %s", self.bucket, region or "us-east-1")
        try:
            self.client.create_bucket(**args)
            self._add_abort_rule()
        except _NETWORK_ERRORS as exc:
            raise self._unavailable("creating the bucket", exc) from exc
        except bexc.ClientError as exc:
            code = _error_code(exc)
            if code == "BucketAlreadyOwnedByYou":
                return  # another process created it at the same moment
            if code == "BucketAlreadyExists":
                raise ConfigError(
                    "storage.bucket", self.bucket, "the name is taken by another account; choose another"
                ) from exc
            if code in ("IllegalLocationConstraintException", "InvalidLocationConstraint"):
                raise ConfigError(
                    "storage.region_name", region, f"cannot create the bucket there: {exc}"
                ) from exc
            if _error_status(exc) == 403:
                raise self._diagnose_forbidden("create the bucket") from exc
            raise self._unavailable("creating the bucket", exc) from exc

    def _add_abort_rule(self) -> None:
        """On a bucket we just created: abort unfinished multipart uploads after a day.

        A process killed during a large upload leaves its parts behind (billed
        until aborted). Best effort: a bucket without the rule still works.
        """
        rule = {
            "ID": "pypicloud-abort-incomplete-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": self.prefix},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
        try:
            self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": [rule]}
            )
        except bexc.ClientError as exc:
            LOG.warning("could not set a lifecycle rule on bucket %s: %s", self.bucket, exc)

    def abort_stale_uploads(self, older_than: float) -> int:
        """Abort our unfinished multipart uploads (under the prefix) started more
        than ``older_than`` seconds ago. Returns how many; never raises for S3 errors."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        aborted = 0
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for upload in page.get("Uploads", ()):
                    if self.parse_key(upload["Key"]) is None or upload["Initiated"] > cutoff:
                        continue
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        except (bexc.ClientError, *_NETWORK_ERRORS) as exc:
            LOG.warning("could not abort stale multipart uploads in bucket %s: %s", self.bucket, exc)
        if aborted:
            LOG.info(
                "aborted %d unfinished multipart uploads older than %gs in bucket %s",
                aborted,
                older_than,
                self.bucket,
            )
        return aborted

    def _diagnose_forbidden(self, action: str = "use the bucket") -> PypicloudError:
        """Tell bad credentials from denied access (HEAD answers carry no error code)."""
        code = ""
        try:
            self.client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except bexc.ClientError as exc:
            code = _error_code(exc)
        except _NETWORK_ERRORS as exc:
            return self._unavailable("checking the bucket", exc)
        if code == "InvalidAccessKeyId":
            return ConfigError(
                "storage.aws_access_key_id",
                None,
                "S3 does not know this access key id (InvalidAccessKeyId): check the credentials",
            )
        if code == "SignatureDoesNotMatch":
            return ConfigError(
                "storage.aws_secret_access_key",
                None,
                "S3 rejected the signature (SignatureDoesNotMatch): the secret access key is wrong",
            )
        if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
            return ConfigError("storage.aws_session_token", None, f"S3 rejected the session token ({code})")
        return ConfigError(
            "storage.bucket",
            self.bucket,
            f"access denied ({code or '403'}): the credentials may not {action} "
            "(or the bucket belongs to another account)",
        )

    # Keys ---------------------------------------------------------------------
    def key_for(self, project: str, filename: str) -> str:
        return KeyLayout(self.prefix, self.prepend_hash).key(project, filename)

    def parse_key(self, key: str) -> tuple[str, str] | None:
        """``(project, filename)`` for one of our keys, None for anything else."""
        return KeyLayout(self.prefix, self.prepend_hash).parse(key)

    # Errors -----------------------------------------------------------------
    def _unavailable(self, action: str, exc: BaseException) -> BackendUnavailable:
        if isinstance(exc, (bexc.NoCredentialsError, bexc.PartialCredentialsError)):
            return BackendUnavailable(
                f"S3 is unavailable: {action} failed: no usable AWS credentials ({exc}); set "
                "storage.aws_access_key_id/storage.aws_secret_access_key or AWS_* variables"
            )
        where = self.endpoint_url or "AWS"
        return BackendUnavailable(
            f"S3 is unavailable: {action} in bucket {self.bucket} at {where} failed: {exc}"
        )

    @contextmanager
    def _s3(self, action: str):
        """Turn connection problems and S3 server errors into BackendUnavailable."""
        try:
            yield
        except _NETWORK_ERRORS as exc:
            raise self._unavailable(action, exc) from exc
        except bexc.ClientError as exc:
            code, status = _error_code(exc), _error_status(exc)
            if status >= 500 or code in _UNAVAILABLE_CODES or code in _CREDENTIAL_CODES:
                raise self._unavailable(action, exc) from exc
            if code == "NoSuchBucket":
                raise self._unavailable(action, exc) from exc
            if code == "MetadataTooLarge":
                raise InvalidUpload(f"metadata is too large for S3: {exc}") from exc
            if code == "AccessControlListNotSupported":
                raise BackendUnavailable(
                    f"S3 refused the object ACL {self.object_acl!r}: the bucket has ACLs "
                    "disabled; set storage.object_acl = none"
                ) from exc
            raise

    # Metadata -------------------------------------------------------------
    def _encode_metadata(self, metadata: dict[str, str]) -> dict[str, str]:
        check_metadata(metadata)
        merged = {**self.extra_metadata, **metadata}
        encoded = {k: encode_metadata_value(v) for k, v in merged.items()}
        check_metadata_size(
            sum(len(k.encode()) + len(v.encode()) for k, v in encoded.items()), MAX_METADATA_BYTES, "S3"
        )
        return encoded

    def _decode_metadata(self, raw: dict[str, str] | None) -> dict[str, str]:
        result = {}
        for key, value in (raw or {}).items():
            key = key.lower()
            value = decode_metadata_value(value)
            if self.extra_metadata.get(key) == value:
                continue
            result[key] = value
        return result

    def _write_args(self, metadata: dict[str, str] | None) -> dict:
        """Arguments applied on every write: metadata, class, encryption, ACL.

        ``metadata`` None leaves Metadata out (a copy that keeps the source's).
        """
        args: dict = {}
        if metadata is not None:
            args["Metadata"] = self._encode_metadata(metadata)
        if self.storage_class:
            args["StorageClass"] = self.storage_class
        if self.server_side_encryption:
            args["ServerSideEncryption"] = self.server_side_encryption
        if self.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.sse_kms_key_id
        if self.object_acl:
            args["ACL"] = self.object_acl
        return args

    def _stored(self, project: str, filename: str, key: str, head: dict) -> StoredObject:
        return StoredObject(
            project=project,
            filename=filename,
            size=int(head.get("ContentLength", 0)),
            metadata=legacy_layout.from_v1(
                self._decode_metadata(head.get("Metadata")), last_modified=head.get("LastModified")
            ),
            key=key,
            last_modified=head.get("LastModified"),
        )

    def _head(self, key: str) -> dict | None:
        with self._s3("reading object metadata"):
            try:
                return self.client.head_object(Bucket=self.bucket, Key=key)
            except bexc.ClientError as exc:
                if _is_missing(exc):
                    return None
                raise

    # Contract ---------------------------------------------------------------
    def put(self, project, filename, stream, metadata, *, overwrite=False):
        self.check_writable()
        key = self.key_for(project, filename)
        args = self._write_args(metadata)
        if overwrite:
            reader = _CountingReader(stream)
            with self._s3("uploading " + filename):
                self.client.upload_fileobj(
                    reader, self.bucket, key, ExtraArgs=args, Config=self.transfer_config
                )
            size = reader.count
        else:
            # Fail early (before sending the body) when the name is taken; the
            # conditional write below settles races between concurrent uploads.
            if self._head(key) is not None:
                raise StorageConflict(f"{filename} is already stored")
            size = self._put_new(key, filename, stream, args)
        return StoredObject(
            project=project,
            filename=filename,
            size=size,
            metadata=dict(metadata),
            key=key,
            last_modified=datetime.now(UTC),
        )

    def _put_new(self, key: str, filename: str, stream: BinaryIO, args: dict) -> int:
        """Conditional (If-None-Match: *) upload; returns the size written."""
        # The first block decides: one PutObject, or a multipart upload. It is
        # kept in a list so the multipart writer can take it over (no other
        # reference keeps it alive while later parts are read).
        head = [_read_full(stream, self.multipart_threshold + 1)]
        if len(head[0]) > self.multipart_threshold:
            return self._multipart_new(key, filename, head, stream, args)
        with self._s3("uploading " + filename):
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=head[0], IfNoneMatch="*", **args)
            except bexc.ClientError as exc:
                if _is_precondition_failure(exc):
                    raise StorageConflict(f"{filename} is already stored") from None
                raise
        return len(head[0])

    def _part_size(self, number: int) -> int:
        # Grow parts as the upload goes on so 10,000 parts reach terabytes.
        return self.multipart_chunksize * (1 + (number - 1) // 1000)

    def _multipart_new(self, key, filename, head: list[bytes], stream, args) -> int:
        with self._s3("starting the upload of " + filename):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **args)["UploadId"]
        completed = False
        total = 0

        def send(number: int, body: bytes) -> dict:
            with self._s3("uploading " + filename):
                part = self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                )
            return {"ETag": part["ETag"], "PartNumber": number}

        with self._lock:
            if self._upload_pool is None:
                self._upload_pool = ThreadPoolExecutor(
                    self.max_concurrency * 2, thread_name_prefix="s3-upload"
                )
            pool = self._upload_pool
        # Each upload keeps at most max_concurrency parts in flight.
        in_flight: collections.deque = collections.deque()
        try:
            parts: list[dict] = []
            pending = head.pop()
            number = 1
            while pending:
                size = self._part_size(number)
                body, pending = pending[:size], pending[size:]
                if len(body) < size:
                    body += _read_full(stream, size - len(body))
                if not body:
                    break
                total += len(body)
                if len(in_flight) >= self.max_concurrency:
                    parts.append(in_flight.popleft().result())
                in_flight.append(pool.submit(send, number, body))
                del body
                number += 1
                if not pending:
                    pending = _read_full(stream, self._part_size(number))
            while in_flight:
                parts.append(in_flight.popleft().result())
            with self._s3("completing the upload of " + filename):
                try:
                    self.client.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                        IfNoneMatch="*",
                    )
                except bexc.ClientError as exc:
                    if _is_precondition_failure(exc):
                        raise StorageConflict(f"{filename} is already stored") from None
                    raise
            completed = True
        finally:
            if not completed:
                # Parts still being sent would outlive an abort: wait for them.
                for future in in_flight:
                    try:
                        future.result()
                    except Exception:
                        pass
                try:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                except Exception:  # best effort; a lifecycle rule cleans up the rest
                    LOG.warning("Could not abort multipart upload %s of %s", upload_id, key)
        return total

    def open(self, project, filename, offset=0, length=None):
        key = self.key_for(project, filename)
        check_range(offset, length)
        if length == 0:
            if self._head(key) is None:
                raise FileNotFound(f"No such file: {filename}")
            return S3Reader(None)
        args: dict = {"Bucket": self.bucket, "Key": key}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            args["Range"] = f"bytes={offset}-{end}"
        with self._s3("reading " + filename):
            try:
                response = self.client.get_object(**args)
            except bexc.ClientError as exc:
                if _is_missing(exc):
                    raise FileNotFound(f"No such file: {filename}") from None
                if _error_code(exc) == "InvalidRange" or _error_status(exc) == 416:
                    return S3Reader(None)  # offset at or past the end: nothing to read
                raise
        return S3Reader(response["Body"])

    def stat(self, project, filename):
        key = self.key_for(project, filename)
        head = self._head(key)
        if head is None:
            return None
        return self._stored(project, filename, key, head)

    def delete(self, project, filename):
        self.check_writable()
        key = self.key_for(project, filename)
        if self._head(key) is None:
            return False
        with self._s3("deleting " + filename):
            self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def _copy_object(self, source_key: str, dest_key: str, size: int, args: dict) -> None:
        source = {"Bucket": self.bucket, "Key": source_key}
        if size <= MAX_SINGLE_COPY:
            self.client.copy_object(Bucket=self.bucket, Key=dest_key, CopySource=source, **args)
            return
        # Multipart copy: the transfer manager does not carry metadata over by
        # itself, so the caller always passes Metadata explicitly here.
        args = {k: v for k, v in args.items() if k != "MetadataDirective"}
        self.client.copy(source, self.bucket, dest_key, ExtraArgs=args, Config=self.transfer_config)

    def copy(self, project, filename, dest_project, dest_filename, metadata=None):
        self.check_writable()
        source_key = self.key_for(project, filename)
        dest_key = self.key_for(dest_project, dest_filename)
        head = self._head(source_key)
        if head is None:
            raise FileNotFound(f"No such file: {filename}")
        if metadata is None and source_key == dest_key:
            return self._stored(project, filename, source_key, head)
        size = int(head.get("ContentLength", 0))
        if metadata is None:
            # Keep the stored metadata byte for byte (it is already S3-safe).
            args = self._write_args(None)
            if size <= MAX_SINGLE_COPY:
                args["MetadataDirective"] = "COPY"
            else:
                args["Metadata"] = dict(head.get("Metadata") or {})
            result_metadata = self._decode_metadata(head.get("Metadata"))
        else:
            args = self._write_args(metadata)
            args["MetadataDirective"] = "REPLACE"
            for name in ("ContentType", "ContentEncoding", "ContentDisposition", "CacheControl"):
                if head.get(name):
                    args[name] = head[name]
            result_metadata = dict(metadata)
        with self._s3(f"copying {filename} to {dest_filename}"):
            self._copy_object(source_key, dest_key, size, args)
        return StoredObject(
            project=dest_project,
            filename=dest_filename,
            size=size,
            metadata=result_metadata,
            key=dest_key,
            last_modified=datetime.now(UTC),
        )

    def update_metadata(self, project, filename, metadata):
        self.check_writable()
        key = self.key_for(project, filename)
        head = self._head(key)
        if head is None:
            raise FileNotFound(f"No such file: {filename}")
        args = self._write_args(metadata)
        args["MetadataDirective"] = "REPLACE"
        # A copy onto itself resets what it is not told: keep the object's own
        # storage class, encryption and content headers (the ACL is the configured one).
        args["StorageClass"] = head.get("StorageClass") or "STANDARD"
        if head.get("ServerSideEncryption"):
            args["ServerSideEncryption"] = head["ServerSideEncryption"]
            if head.get("SSEKMSKeyId"):
                args["SSEKMSKeyId"] = head["SSEKMSKeyId"]
            else:
                args.pop("SSEKMSKeyId", None)
        for name in ("ContentType", "ContentEncoding", "ContentDisposition", "CacheControl"):
            if head.get(name):
                args[name] = head[name]
        size = int(head.get("ContentLength", 0))
        with self._s3("updating the metadata of " + filename):
            self._copy_object(key, key, size, args)
        return StoredObject(
            project=project,
            filename=filename,
            size=size,
            metadata=dict(metadata),
            key=key,
            last_modified=datetime.now(UTC),
        )

    def list(self, metadata_for=None) -> Iterator[StoredObject]:
        """Every object under the prefix: one listing page, then its HEADs in parallel.

        Objects whose metadata the caller does not need (``metadata_for``)
        are described from the listing alone, without a HEAD.
        """
        paginator = self.client.get_paginator("list_objects_v2")
        args: dict = {"Bucket": self.bucket}
        if self.prefix:
            args["Prefix"] = self.prefix

        def describe(item: tuple[str, str, str, dict]) -> StoredObject | None:
            key, project, filename, entry = item
            if metadata_for is not None and not metadata_for(filename):
                return StoredObject(
                    project=project,
                    filename=filename,
                    size=entry["Size"],
                    metadata={},
                    key=key,
                    last_modified=entry["LastModified"],
                )
            head = self._head(key)
            return None if head is None else self._stored(project, filename, key, head)

        with ThreadPoolExecutor(self.list_workers, thread_name_prefix="s3-list") as pool:
            pages = iter(paginator.paginate(**args))
            while True:
                with self._s3("listing the bucket"):
                    page = next(pages, None)
                if page is None:
                    return
                items = []
                for entry in page.get("Contents", ()):
                    parsed = self.parse_key(entry["Key"])
                    if parsed is not None:
                        items.append((entry["Key"], *parsed, entry))
                for found in pool.map(describe, items):
                    if found is not None:  # None: deleted while we listed
                        yield found

    def download_url(self, project, filename, expires_in=None) -> Redirect:
        """A presigned GET URL valid ``expires_in`` seconds, or the public URL.

        ``expires_at`` is when the signed URL stops working (UTC, rounded down
        to the second); None for a public URL, which never expires.
        """
        key = self.key_for(project, filename)
        expires_in = int(expires_in or self.expire_after)
        now = datetime.now(UTC).replace(microsecond=0)
        with self._s3("signing a URL"):
            url = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )
        if self.public_url:
            # Same host and path botocore would use, without the signature.
            return Redirect(url=url.split("?", 1)[0], expires_at=None)
        return Redirect(url=url, expires_at=now + timedelta(seconds=expires_in))

    def url_is_fresh(self, redirect: Redirect | None, now: datetime | None = None) -> bool:
        """Whether a cached :meth:`download_url` answer may still be handed out.

        True while it has more than ``buffer_time`` seconds left (always for a
        public URL, which has no expiry).
        """
        if redirect is None:
            return False
        if redirect.expires_at is None:
            return True
        now = now or datetime.now(UTC)
        return redirect.expires_at - now > timedelta(seconds=self.buffer_time)

    def check_health(self) -> None:
        with self._lock:
            if self._health_pool is None:
                self._health_pool = ThreadPoolExecutor(2, thread_name_prefix="s3-health")
            pool = self._health_pool
        future = pool.submit(self.client.head_bucket, Bucket=self.bucket)
        try:
            future.result(timeout=self.health_timeout)
        except FutureTimeout:
            raise BackendUnavailable(
                f"S3 is unavailable: bucket {self.bucket} did not answer "
                f"within {self.health_timeout:g} seconds"
            ) from None
        except _NETWORK_ERRORS as exc:
            raise self._unavailable("checking health", exc) from exc
        except bexc.ClientError as exc:
            status = _error_status(exc)
            if status == 404:
                raise BackendUnavailable(f"S3 bucket {self.bucket} does not exist") from exc
            if status == 403:
                raise BackendUnavailable(
                    f"S3 denies access to bucket {self.bucket} (check the credentials)"
                ) from exc
            raise self._unavailable("checking health", exc) from exc

    def close(self) -> None:
        with self._lock:
            pools = (self._health_pool, self._upload_pool)
            self._health_pool = self._upload_pool = None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        try:
            self.client.close()
        except Exception:  # pragma: no cover - closing twice
            pass
