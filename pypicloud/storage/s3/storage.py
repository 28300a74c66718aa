"""The S3 storage backend: the :class:`~pypicloud.storage.base.Storage` contract on a bucket.

Options, errors, metadata, keys, bucket bootstrap, conditional uploads and
listing each live in their own module of this package; this one holds the
contract methods and the state they share (one thread-safe boto3 client, a
TransferConfig, and the thread pools).

Signed URLs: :meth:`S3Storage.download_url` returns a presigned GET URL
(``expires_at`` = UTC time it stops working) or, with ``public_url``, the plain
unsigned object URL (``expires_at`` None). The service caches a signed URL in
the index and reuses it while it has more than ``buffer_time`` seconds left
(:meth:`S3Storage.url_lifetime`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import botocore.exceptions as bexc
from boto3.s3.transfer import TransferConfig

from ...errors import BackendUnavailable, FileNotFound, StorageConflict
from ...models import Redirect, StoredObject
from ..base import METADATA_KEY, WHOLE_OBJECTS, Storage
from ..objectstore import check_range
from . import bucket as _bucket
from . import metadata as _metadata
from .client import make_client
from .errors import (
    error_code,
    error_status,
    is_missing,
    translate_errors,
    unavailable,
)
from .keys import KeyLayout
from .listing import list_objects
from .manifest_io import read_manifest, write_manifest
from .multipart import ConditionalUpload, CountingReader
from .options import SETTINGS_KEYS, options_from_settings
from .reader import S3Reader
from .writes import copy_args, copy_object, update_args, write_args

MB = 1024 * 1024


class S3Storage(Storage):
    """Storage in an S3 bucket (``pypi.storage = s3``).

    ``__init__`` only builds the client (one thread-safe boto3 client and one
    TransferConfig); :meth:`from_settings` also checks (and maybe creates) the
    bucket via :meth:`ensure_bucket`.
    """

    SETTINGS_KEYS = SETTINGS_KEYS
    hands_out_urls = True

    # Over 60 lines (a listed exception, tests/unit/test_sizes.py): its length is
    # the keyword list (every option, validated by options_from_settings) and its
    # docstring; the body only stores them.
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
        # Unfinished multipart uploads of ours older than this are aborted at
        # start-up (0: never); the bucket this server creates also gets a
        # lifecycle rule that aborts them after a day.
        self.multipart_grace = max(0, int(multipart_grace))
        self._init_runtime()

    def _init_runtime(self) -> None:
        """The transfer configuration, the (lazily made) pools and the client."""
        self.transfer_config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_chunksize,
            max_concurrency=self.max_concurrency,
            use_threads=True,
        )
        # Bound what one overwrite upload of a non-seekable stream buffers.
        self.transfer_config.max_in_memory_upload_chunks = self.max_concurrency + 1
        self._health_pool: ThreadPoolExecutor | None = None
        # One pool for the parts of every multipart upload: a pool per upload
        # made threads (and their malloc arenas) come and go with each upload.
        self._upload_pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.client = make_client(self, self.region_name)

    def __repr__(self) -> str:
        return f"<S3Storage bucket={self.bucket!r} prefix={self.prefix!r}>"

    def upload_pool(self) -> ThreadPoolExecutor:
        """The pool that sends multipart upload parts (made on first use)."""
        with self._lock:
            if self._upload_pool is None:
                self._upload_pool = ThreadPoolExecutor(
                    self.max_concurrency * 2, thread_name_prefix="s3-upload"
                )
            return self._upload_pool

    def use_region(self, region_name: str) -> None:
        """Talk to the bucket's own region from now on (a new client; the old one is closed)."""
        old, self.client = self.client, make_client(self, region_name)
        self.region_name = region_name
        old.close()

    # Settings and bucket ------------------------------------------------------
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
        return options_from_settings(settings)

    def ensure_bucket(self) -> None:
        """Check the bucket at start-up; create it when missing and allowed (see :mod:`.bucket`)."""
        _bucket.ensure_bucket(self)

    def abort_stale_uploads(self, older_than: float) -> int:
        """Abort our multipart uploads started more than ``older_than`` seconds ago; how many."""
        return _bucket.abort_stale_uploads(self, older_than)

    # Keys, errors, metadata ---------------------------------------------------
    @property
    def layout(self) -> KeyLayout:
        return KeyLayout(self.prefix, self.prepend_hash)

    def key_for(self, project: str, filename: str) -> str:
        return self.layout.key(project, filename)

    def parse_key(self, key: str) -> tuple[str, str] | None:
        """``(project, filename)`` for one of our keys, None for anything else."""
        return self.layout.parse(key)

    def _unavailable(self, action: str, exc: BaseException) -> BackendUnavailable:
        return unavailable(action, exc, self.bucket, self.endpoint_url)

    def _s3(self, action: str):
        """Turn connection problems and S3 server errors into BackendUnavailable."""
        return translate_errors(self, action)

    def _head(self, key: str) -> dict | None:
        with self._s3("reading object metadata"):
            try:
                return self.client.head_object(Bucket=self.bucket, Key=key)
            except bexc.ClientError as exc:
                if is_missing(exc):
                    return None
                raise

    def _stored(self, project: str, filename: str, key: str, head: dict) -> StoredObject:
        return _metadata.stored_object(project, filename, key, head, self.extra_metadata)

    def stat_key(self, project: str, filename: str, key: str) -> StoredObject | None:
        """What a HEAD of ``key`` tells (None when there is no such object)."""
        head = self._head(key)
        return None if head is None else self._stored(project, filename, key, head)

    # The listing's (listing.py) HEAD and its reading, apart.
    head_key = _head
    stored_from_head = _stored

    def _write_args(self, metadata: dict[str, str] | None) -> dict:
        return write_args(self, metadata)

    # Contract ---------------------------------------------------------------
    def put(self, project, filename, stream, metadata, *, overwrite=False):
        self.check_writable()
        key = self.key_for(project, filename)
        args = self._write_args(metadata)
        if overwrite:
            reader = CountingReader(stream)
            with self._s3("uploading " + filename):
                self.client.upload_fileobj(
                    reader, self.bucket, key, ExtraArgs=args, Config=self.transfer_config
                )
            size = reader.count
        else:
            # Fail early (before sending the body) when the name is taken; the
            # conditional write settles races between concurrent uploads.
            if self._head(key) is not None:
                raise StorageConflict(f"{filename} is already stored")
            size = ConditionalUpload(self, key, filename, args).run(stream)
        return StoredObject(
            project=project,
            filename=filename,
            size=size,
            metadata=dict(metadata),
            key=key,
            last_modified=datetime.now(UTC),
        )

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
                if is_missing(exc):
                    raise FileNotFound(f"No such file: {filename}") from None
                if error_code(exc) == "InvalidRange" or error_status(exc) == 416:
                    return S3Reader(None)  # offset at or past the end: nothing to read
                raise
        return S3Reader(response["Body"])

    def stat(self, project, filename):
        return self.stat_key(project, filename, self.key_for(project, filename))

    def content_token(self, project, filename):
        return WHOLE_OBJECTS  # objects are replaced whole: no HEAD (base.WHOLE_OBJECTS)

    def delete(self, project, filename):
        self.check_writable()
        key = self.key_for(project, filename)
        if self._head(key) is None:
            return False
        with self._s3("deleting " + filename):
            self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

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
        args = copy_args(self, head, metadata)
        if metadata is None:
            result_metadata = _metadata.decode(head.get("Metadata"), self.extra_metadata)
        else:
            result_metadata = dict(metadata)
        with self._s3(f"copying {filename} to {dest_filename}"):
            copy_object(self, source_key, dest_key, size, args)
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
        size = int(head.get("ContentLength", 0))
        with self._s3("updating the metadata of " + filename):
            copy_object(self, key, key, size, update_args(self, head, metadata))
        return StoredObject(
            project=project,
            filename=filename,
            size=size,
            metadata=dict(metadata),
            key=key,
            last_modified=datetime.now(UTC),
        )

    def list(self, metadata_for=None) -> Iterator[StoredObject]:
        """Every object under the prefix: a HEAD only where the metadata is wanted (see :mod:`.listing`)."""
        return list_objects(self, metadata_for)

    def list_reusing(self, known, metadata_for=None) -> Iterator[StoredObject]:
        """:meth:`list` without a HEAD for the objects ``known`` with their current tag."""
        return list_objects(self, metadata_for, known)

    # One object below the prefix, never listed (see :mod:`.manifest_io`).
    read_manifest = read_manifest
    write_manifest = write_manifest

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

    def url_lifetime(self) -> tuple[int, int]:
        return (self.expire_after, self.buffer_time)

    def location(self) -> tuple:
        return ("s3", self.endpoint_url or "", self.bucket, self.prefix)

    def check_health(self) -> None:
        """HEAD the bucket within ``health_timeout`` seconds (see :func:`.bucket.check_health`)."""
        with self._lock:
            if self._health_pool is None:
                self._health_pool = ThreadPoolExecutor(2, thread_name_prefix="s3-health")
            pool = self._health_pool
        _bucket.check_health(self, pool)

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
