"""Package files in a Google Cloud Storage bucket (``pypi.storage = gcs``).

Needs the ``gcs`` extra (``pip install 'pypicloud[gcs]'``).

Names: ``<prefix>[<hash>/]<project>/<filename>``, S3's layout and pypicloud
1.x's (``storage.prepend_hash`` defaults to true, as in 1.x). Metadata is GCS
custom metadata, values in the same reversible ASCII encoding as S3's (values
written by 1.x, plain strings, read back unchanged). A listing carries each
object's metadata, so listing needs no request per object.

Writes: a body up to 8 MB is one upload; a larger one is a resumable upload in
8 MB chunks that becomes visible only when its last chunk is in. Without
``overwrite`` the upload carries ``ifGenerationMatch=0``: GCS creates the object
only if the name is free, so of two concurrent uploads exactly one wins. A failed
upload never finalises its resumable session, leaving no object (GCS drops the
session after a week).

Credentials: ``storage.gcp_service_account_json_filename`` (or
``GOOGLE_APPLICATION_CREDENTIALS``), else Application Default Credentials; with
``storage.gcp_api_endpoint`` (an emulator) and no key file, anonymous access.
Download URLs are V4 signed URLs (``GOOG4-RSA-SHA256``) valid
``storage.expire_after`` seconds (at most 7 days), signed with the service
account's key, or through the IAM signBlob API with ``storage.gcp_use_iam_signer``
(credentials without a key, e.g. on GCE/GKE). Without either the server streams
the files. The service caches signed URLs in the index and reuses them while
more than ``storage.buffer_time`` seconds are left.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from ..errors import BackendUnavailable, ConfigError, FileNotFound, StorageConflict
from ..models import Redirect, StoredObject
from .gcs_options import KEY_SETTING, MAX_V4_EXPIRY, ensure_bucket, options_from_settings  # noqa: F401
from .gcs_streams import GcsReader, _Counting
from .objectstore import (
    KeyLayout,
    ObjectStore,
    check_range,
    read_full,
    require_sdk,
    reraise,
    signed_until,
)

_MISSING: ImportError | None
try:
    import google.auth.exceptions as gauth_exc
    import requests.exceptions as req_exc
    from google.api_core import exceptions as gexc
    from google.api_core.client_options import ClientOptions
    from google.api_core.retry import Retry
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs
    from google.oauth2 import service_account
except ImportError as exc:  # the extra is not installed: from_settings says which
    _MISSING = exc
else:
    _MISSING = None

LOG = logging.getLogger(__name__)

MB = 1024 * 1024
#: GCS's limit on custom metadata: names plus values.
MAX_METADATA_BYTES = 8192
EXTRA_HINT = "install the extra: pip install 'pypicloud[gcs]'"


def _transient(exc: BaseException) -> bool:
    return isinstance(
        exc,
        (
            req_exc.ConnectionError,
            req_exc.Timeout,
            gexc.ServerError,
            gexc.TooManyRequests,
            gauth_exc.TransportError,
        ),
    )


class GoogleCloudStorage(ObjectStore):
    """Storage in a GCS bucket (pypicloud 1.x's ``gcs``)."""

    SETTINGS_KEYS = frozenset(
        """
        storage.bucket storage.prefix storage.prepend_hash storage.expire_after storage.buffer_time
        storage.public_url storage.storage_class storage.object_acl storage.server_side_encryption
        storage.region_name storage.create_bucket storage.read_only storage.project_id
        storage.gcp_project_id storage.gcp_api_endpoint storage.gcp_service_account_json_filename
        storage.gcp_use_iam_signer storage.iam_signer_service_account_email
        """.split()
    )

    SERVICE = "GCS"
    MAX_METADATA_BYTES = MAX_METADATA_BYTES

    def __init__(
        self,
        bucket: str,
        *,
        project_id: str | None = None,
        api_endpoint: str | None = None,
        credentials_file: str | None = None,
        credentials=None,
        prefix: str = "",
        prepend_hash: bool = True,
        expire_after: int = 86400,
        buffer_time: int = 600,
        region_name: str | None = None,
        storage_class: str | None = None,
        object_acl: str | None = None,
        create_bucket: bool = True,
        read_only: bool = False,
        use_iam_signer: bool = False,
        iam_signer_service_account_email: str | None = None,
        chunk_size: int = 8 * MB,
        timeout: float = 30.0,
        retry_timeout: float = 10.0,
    ):
        """Plain keyword arguments, already validated by :meth:`from_settings`."""
        if _MISSING is not None:
            raise ConfigError(
                "pypi.storage", "gcs", f"google-cloud-storage is not installed ({_MISSING}); {EXTRA_HINT}"
            )
        self.bucket_name = bucket
        self.layout = KeyLayout(prefix, prepend_hash)
        self.prefix = self.layout.prefix
        self.prepend_hash = prepend_hash
        self.expire_after = int(expire_after)
        self.buffer_time = int(buffer_time)
        self.region_name = region_name or None
        self.storage_class = storage_class or None
        self.object_acl = object_acl or None
        self.create_bucket = create_bucket
        self.read_only = read_only
        self.api_endpoint = api_endpoint or None
        self.use_iam_signer = use_iam_signer
        self.iam_signer_email = iam_signer_service_account_email
        # Resumable chunks must be multiples of 256 KiB.
        self.chunk_size = max(256 * 1024, int(chunk_size) // (256 * 1024) * (256 * 1024))
        self.timeout = timeout
        self.retry = Retry(timeout=retry_timeout, initial=0.2, maximum=2.0)
        if credentials is None and credentials_file:
            credentials = service_account.Credentials.from_service_account_file(
                credentials_file, scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
            )
        if credentials is None and self.api_endpoint:
            credentials = AnonymousCredentials()
            project_id = project_id or "pypicloud"
        self.credentials = credentials
        options = ClientOptions(api_endpoint=self.api_endpoint) if self.api_endpoint else None
        self.client = gcs.Client(project=project_id, credentials=credentials, client_options=options)
        self.project_id = project_id or self.client.project
        self.bucket = self.client.bucket(bucket)

    def location(self) -> tuple:
        return (type(self).__name__, self.api_endpoint or "", self.bucket_name, self.prefix)

    def _describe(self) -> dict[str, str]:
        return {"bucket": self.bucket_name}

    # Settings -------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings) -> GoogleCloudStorage:
        require_sdk(settings, _MISSING, "google-cloud-storage", EXTRA_HINT)
        storage = cls(**options_from_settings(settings))
        try:
            storage.ensure_bucket()
        except BaseException:
            storage.close()
            raise
        return storage

    def ensure_bucket(self) -> None:
        """Check the bucket (and the credentials) at start-up; create it if allowed."""
        ensure_bucket(self)

    # Errors -----------------------------------------------------------------
    def _unavailable(self, action: str, exc: BaseException) -> BackendUnavailable:
        where = self.api_endpoint or "Google Cloud Storage"
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return BackendUnavailable(
            f"GCS is unavailable: {action} in bucket {self.bucket_name} at {where} failed: {detail}"
        )

    def _wrap(self, exc: BaseException, action: str) -> BaseException | None:
        if _transient(exc) or isinstance(exc, (gexc.Unauthorized, gexc.Forbidden, gauth_exc.RefreshError)):
            return self._unavailable(action, exc)
        if isinstance(exc, gexc.RetryError):
            return self._unavailable(action, exc.cause or exc)
        return None

    def _call(self, action: str, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            reraise(exc, self._wrap(exc, action))

    # Metadata (encoding: ObjectStore) ---------------------------------------
    def _stored(self, project, filename, blob) -> StoredObject:
        return StoredObject(
            project=project,
            filename=filename,
            size=int(blob.size or 0),
            metadata=self._decode_metadata(blob.metadata),
            key=blob.name,
            last_modified=blob.updated,
        )

    def _get(self, key: str):
        return self._call(
            "reading object metadata", self.bucket.get_blob, key, timeout=self.timeout, retry=self.retry
        )

    # Contract ---------------------------------------------------------------
    def _new_blob(self, key: str, encoded: dict[str, str]):
        blob = self.bucket.blob(key, chunk_size=self.chunk_size)
        blob.metadata = encoded
        if self.storage_class:
            blob.storage_class = self.storage_class
        return blob

    def put(self, project, filename, stream, metadata, *, overwrite=False):
        self.check_writable()
        key = self.key_for(project, filename)
        encoded = self._encode_metadata(metadata)
        if not overwrite and self._get(key) is not None:
            raise StorageConflict(f"{filename} is already stored")
        blob = self._new_blob(key, encoded)
        condition = {} if overwrite else {"if_generation_match": 0}
        if self.object_acl:
            condition["predefined_acl"] = self.object_acl
        # Not retried: a retry of a conditional create could see its own first
        # attempt and report a conflict.
        upload_args = dict(
            content_type="application/octet-stream", timeout=self.timeout, retry=None, **condition
        )
        head = read_full(stream, self.chunk_size + 1)
        try:
            if len(head) <= self.chunk_size:
                size = len(head)
                self._call("uploading " + filename, blob.upload_from_string, head, **upload_args)
            else:
                body = _Counting(head, stream)
                del head
                self._call("uploading " + filename, blob.upload_from_file, body, size=None, **upload_args)
                size = body.count
        except (gexc.PreconditionFailed, gexc.Conflict):
            raise StorageConflict(f"{filename} is already stored") from None
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
        blob = self._get(key)
        if blob is None:
            raise FileNotFound(f"No such file: {filename}")
        if length == 0 or offset >= int(blob.size or 0):
            return GcsReader(None)
        reader = blob.open("rb", chunk_size=4 * MB, timeout=self.timeout, retry=self.retry)
        reader.seek(offset)
        return GcsReader(reader, length, wrap=lambda exc: self._wrap(exc, "reading " + filename))

    def stat(self, project, filename):
        key = self.key_for(project, filename)
        blob = self._get(key)
        return None if blob is None else self._stored(project, filename, blob)

    def delete(self, project, filename):
        self.check_writable()
        key = self.key_for(project, filename)
        try:
            self._call(
                "deleting " + filename, self.bucket.delete_blob, key, timeout=self.timeout, retry=self.retry
            )
        except gexc.NotFound:
            return False
        return True

    def copy(self, project, filename, dest_project, dest_filename, metadata=None):
        source_key, dest_key, encoded = self._copy_keys(
            project, filename, dest_project, dest_filename, metadata
        )
        source = self._get(source_key)
        if source is None:
            raise FileNotFound(f"No such file: {filename}")
        if source_key != dest_key:
            try:
                self._call(
                    f"copying {filename} to {dest_filename}",
                    self.bucket.copy_blob,
                    source,
                    self.bucket,
                    dest_key,
                    timeout=self.timeout,
                    retry=self.retry,
                )
            except gexc.NotFound:
                raise FileNotFound(f"No such file: {filename}") from None
        if encoded is not None:
            return self.update_metadata(dest_project, dest_filename, metadata)
        return StoredObject(
            project=dest_project,
            filename=dest_filename,
            size=int(source.size or 0),
            metadata=self._decode_metadata(source.metadata),
            key=dest_key,
            last_modified=datetime.now(UTC),
        )

    def update_metadata(self, project, filename, metadata):
        self.check_writable()
        key = self.key_for(project, filename)
        encoded = self._encode_metadata(metadata)
        blob = self._get(key)
        if blob is None:
            raise FileNotFound(f"No such file: {filename}")
        # A patch merges: keys to drop are sent as None.
        blob.metadata = {**{k: None for k in (blob.metadata or {}) if k not in encoded}, **encoded}
        try:
            self._call(
                "updating the metadata of " + filename, blob.patch, timeout=self.timeout, retry=self.retry
            )
        except gexc.NotFound:
            raise FileNotFound(f"No such file: {filename}") from None
        return StoredObject(
            project=project,
            filename=filename,
            size=int(blob.size or 0),
            metadata=dict(metadata),
            key=key,
            last_modified=blob.updated,
        )

    def list(self, metadata_for=None):
        """Every object under the prefix; each page of the listing carries the metadata."""
        pages = self.client.list_blobs(
            self.bucket, prefix=self.prefix or None, timeout=self.timeout, retry=self.retry
        ).pages
        while True:
            page = self._call("listing the bucket", lambda: list(next(pages, None) or []))
            if not page:
                return
            for blob in page:
                found = self._listed(blob.name, blob.size, blob.metadata, blob.updated, metadata_for)
                if found is not None:
                    yield found

    def check_health(self) -> None:
        try:
            self.bucket.reload(timeout=5, retry=None)
        except gexc.NotFound:
            raise BackendUnavailable(f"GCS bucket {self.bucket_name} does not exist") from None
        except Exception as exc:
            wrapped = self._wrap(exc, "checking health")
            raise (wrapped or self._unavailable("checking health", exc)) from exc

    def download_url(self, project, filename, expires_in=None) -> Redirect | None:
        """A V4 signed GET URL valid ``expires_in`` seconds; None (stream) when nothing can sign."""
        key = self.key_for(project, filename)
        expires_in = int(expires_in or self.expire_after)
        args: dict = {"version": "v4", "method": "GET", "expiration": timedelta(seconds=expires_in)}
        if self.api_endpoint:
            args["api_access_endpoint"] = self.api_endpoint
        if self.use_iam_signer:
            # Keyless credentials (GCE/GKE): GCS signs through IAM signBlob.
            from google.auth.transport.requests import Request

            if not self.credentials.valid:
                self._call("refreshing credentials", self.credentials.refresh, Request())
            email = self.iam_signer_email or getattr(self.credentials, "service_account_email", None)
            args.update(service_account_email=email, access_token=self.credentials.token)
        elif not hasattr(self.credentials, "sign_bytes") or isinstance(
            self.credentials, AnonymousCredentials
        ):
            return None
        expires_at = signed_until(expires_in)
        url = self._call("signing a URL", self.bucket.blob(key).generate_signed_url, **args)
        return Redirect(url=url, expires_at=expires_at)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # pragma: no cover - closing twice
            pass
