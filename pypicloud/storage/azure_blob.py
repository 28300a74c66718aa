"""Package files in an Azure Blob Storage container (``pypi.storage = azure-blob``).

Needs the ``azure`` extra (``pip install 'pypicloud[azure]'``; ``[azure-blob]``,
pypicloud 1.x's name, is the same).

Names: ``<prefix>[<hash>/]<project>/<filename>``. ``storage.prepend_hash``
defaults to false here, the layout pypicloud 1.x wrote into containers.

Metadata: Azure metadata names must be C# identifiers, so a name with a ``-``
(or starting with a digit, or with our escape prefix) is stored as ``ppcx_`` +
the hex of its UTF-8 bytes; values are ASCII headers and use the same reversible
encoding as S3 (:func:`pypicloud.storage.s3.encode_metadata_value`). Listing
asks for metadata in the listing itself, so it needs no request per blob.

Writes: a body up to 8 MB is one Put Blob; a larger one is staged as blocks (a
few in flight) and published by Put Block List. Without ``overwrite`` both carry
``If-None-Match: *``, so of two concurrent uploads of one name exactly one wins;
block ids are random per upload so two uploads never mix their blocks. A failed
upload leaves only uncommitted blocks, which are invisible and which Azure
discards by itself (after a week, or at the next commit of that name).

Download URLs are read-only SAS URLs valid ``storage.expire_after`` seconds,
signed with the account key; the service caches them in the index and reuses
them while more than ``storage.buffer_time`` seconds are left. Without an account
key (a connection string holding a SAS token) the server streams the files.

The SDK details (client, outage errors, metadata names, copies, SAS tokens) are in
``azure_client.py``; settings, container bootstrap and block uploads in
``azure_options.py``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import UTC, datetime

from ..errors import BackendUnavailable, ConfigError, FileNotFound, StorageConflict
from ..models import Redirect, StoredObject
from .azure_client import (  # noqa: F401 - names this module held before
    _ESCAPE,
    _IDENTIFIER,
    decode_name,
    encode_name,
    is_outage,
    read_only_sas,
    service_client,
    wait_for_copy,
)
from .azure_options import _CONTAINER, _code, _status, ensure_container, options_from_settings, put_blocks  # noqa: F401
from .objectstore import (
    ChunkReader,
    KeyLayout,
    ObjectStore,
    check_range,
    expiry_settings,
    read_full,
    require_sdk,
    reraise,
    signed_until,
)

try:
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
    )
    from azure.storage.blob import BlobServiceClient  # noqa: F401 - the SDK is installed
except ImportError as exc:  # the extra is not installed: from_settings says which
    _MISSING = exc
else:
    _MISSING = None

LOG = logging.getLogger(__name__)

MB = 1024 * 1024
#: Azure's limit on metadata: names plus values.
MAX_METADATA_BYTES = 8192
EXTRA_HINT = "install the extra: pip install 'pypicloud[azure]'"


class AzureBlobStorage(ObjectStore):
    """Storage in an Azure Blob Storage container (pypicloud 1.x's ``azure-blob``)."""

    SETTINGS_KEYS = frozenset(
        """
        storage.storage_account_name storage.storage_account_key storage.storage_account_url
        storage.storage_container_name storage.storage_connection_string storage.connection_string
        storage.prefix storage.prepend_hash storage.expire_after storage.buffer_time
        storage.create_bucket storage.read_only
        """.split()
    )

    SERVICE = "Azure"
    MAX_METADATA_BYTES = MAX_METADATA_BYTES

    def __init__(
        self,
        container: str,
        *,
        account_url: str | None = None,
        account_name: str | None = None,
        account_key: str | None = None,
        connection_string: str | None = None,
        prefix: str = "",
        prepend_hash: bool = False,
        expire_after: int = 86400,
        buffer_time: int = 600,
        create_container: bool = True,
        read_only: bool = False,
        block_size: int = 8 * MB,
        max_concurrency: int = 4,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        retries: int = 2,
    ):
        """Plain keyword arguments; either ``connection_string`` or ``account_url`` with name and key."""
        if _MISSING is not None:
            raise ConfigError(
                "pypi.storage", "azure-blob", f"the Azure SDK is not installed ({_MISSING}); {EXTRA_HINT}"
            )
        self.container = container
        self.layout = KeyLayout(prefix, prepend_hash)
        self.prefix = self.layout.prefix
        self.prepend_hash = prepend_hash
        self.expire_after = int(expire_after)
        self.buffer_time = int(buffer_time)
        self.create_container = create_container
        self.read_only = read_only
        self.block_size = max(int(block_size), MB)
        self.max_concurrency = max(1, int(max_concurrency))
        options = dict(
            retry_total=retries,
            connection_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_single_put_size=self.block_size,
            max_block_size=self.block_size,
            max_single_get_size=4 * MB,
            max_chunk_get_size=4 * MB,
        )
        self.service = service_client(connection_string, account_url, account_name, account_key, options)
        self.account_name = self.service.account_name or account_name
        cred = self.service.credential
        self._account_key = getattr(cred, "account_key", None) or account_key
        self.client = self.service.get_container_client(container)

    def location(self) -> tuple:
        return (type(self).__name__, self.service.url or "", self.container, self.prefix)

    def _describe(self) -> dict[str, str]:
        return {"container": self.container}

    # Settings -------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings) -> AzureBlobStorage:
        require_sdk(settings, _MISSING, "the Azure SDK (azure-storage-blob)", EXTRA_HINT)
        options = options_from_settings(settings)
        connection_string = options["connection_string"]
        expire_after, buffer_time = expiry_settings(settings)
        try:
            storage = cls(
                **options,
                prefix=settings.get_str("storage.prefix", "") or "",
                prepend_hash=settings.get_bool("storage.prepend_hash", False),
                expire_after=expire_after,
                buffer_time=buffer_time,
                create_container=settings.get_bool("storage.create_bucket", True),
                read_only=settings.get_bool("storage.read_only", False),
            )
        except ValueError as exc:  # a malformed connection string or URL
            key = "storage.storage_connection_string" if connection_string else "storage.storage_account_url"
            raise ConfigError(key, None, str(exc)) from None
        try:
            storage.ensure_container()
        except BaseException:
            storage.close()
            raise
        return storage

    def ensure_container(self) -> None:
        """Check the container at start-up (and the credentials with it); create it if allowed."""
        ensure_container(self)

    # Errors -----------------------------------------------------------------
    def _unavailable(self, action: str, exc: BaseException) -> BackendUnavailable:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return BackendUnavailable(
            f"Azure Blob Storage is unavailable: {action} in container "
            f"{self.container} at {self.service.url} failed: {detail}"
        )

    def _wrap(self, exc: BaseException, action: str) -> BaseException | None:
        return self._unavailable(action, exc) if is_outage(exc) else None

    @contextmanager
    def _azure(self, action: str):
        try:
            yield
        except AzureError as exc:
            reraise(exc, self._wrap(exc, action))

    # Metadata (encoding: ObjectStore; names must be C# identifiers) ----------
    _encode_name = staticmethod(encode_name)
    _decode_name = staticmethod(decode_name)

    def _stored(self, project, filename, key, props) -> StoredObject:
        return StoredObject(
            project=project,
            filename=filename,
            size=int(props.size or 0),
            metadata=self._decode_metadata(props.metadata),
            key=key,
            last_modified=props.last_modified,
        )

    def _props(self, key: str):
        with self._azure("reading blob properties"):
            try:
                return self.client.get_blob_client(key).get_blob_properties()
            except ResourceNotFoundError as exc:
                if _code(exc) == "ContainerNotFound":
                    raise
                return None

    # Contract ---------------------------------------------------------------
    def put(self, project, filename, stream, metadata, *, overwrite=False):
        self.check_writable()
        key = self.key_for(project, filename)
        encoded = self._encode_metadata(metadata)
        blob = self.client.get_blob_client(key)
        if not overwrite and self._props(key) is not None:
            raise StorageConflict(f"{filename} is already stored")
        head = [read_full(stream, self.block_size + 1)]
        try:
            with self._azure("uploading " + filename):
                if len(head[0]) <= self.block_size:
                    size = len(head[0])
                    blob.upload_blob(head.pop(), length=size, overwrite=overwrite, metadata=encoded)
                else:
                    size = self._put_blocks(blob, filename, head, stream, encoded, overwrite)
        except (ResourceExistsError, StorageConflict):
            raise StorageConflict(f"{filename} is already stored") from None
        except HttpResponseError as exc:
            if not overwrite and (
                _status(exc) in (409, 412)
                or (_code(exc) == "InvalidBlockList" and self._props(key) is not None)
            ):
                # 412/409: the name exists; InvalidBlockList: another upload of
                # the name committed first and Azure dropped our staged blocks.
                raise StorageConflict(f"{filename} is already stored") from None
            raise
        return StoredObject(
            project=project,
            filename=filename,
            size=size,
            metadata=dict(metadata),
            key=key,
            last_modified=datetime.now(UTC),
        )

    def _put_blocks(self, blob, filename, head, stream, encoded, overwrite) -> int:
        """Stage blocks (a few in flight) and commit them; returns the size written."""
        return put_blocks(self, blob, filename, head, stream, encoded, overwrite)

    def open(self, project, filename, offset=0, length=None):
        key = self.key_for(project, filename)
        check_range(offset, length)
        if length == 0:
            if self._props(key) is None:
                raise FileNotFound(f"No such file: {filename}")
            return ChunkReader(None)
        blob = self.client.get_blob_client(key)
        with self._azure("reading " + filename):
            try:
                downloader = blob.download_blob(offset=offset, length=length, max_concurrency=1)
            except ResourceNotFoundError as exc:
                if _code(exc) == "ContainerNotFound":
                    raise
                raise FileNotFound(f"No such file: {filename}") from None
            except HttpResponseError as exc:
                if _status(exc) == 416:
                    return ChunkReader(None)  # offset at or past the end
                raise
        return ChunkReader(downloader.chunks(), wrap_error=lambda exc: self._wrap(exc, "reading " + filename))

    def stat(self, project, filename):
        key = self.key_for(project, filename)
        props = self._props(key)
        return None if props is None else self._stored(project, filename, key, props)

    def delete(self, project, filename):
        self.check_writable()
        key = self.key_for(project, filename)
        with self._azure("deleting " + filename):
            try:
                self.client.get_blob_client(key).delete_blob(delete_snapshots="include")
            except ResourceNotFoundError as exc:
                if _code(exc) == "ContainerNotFound":
                    raise
                return False
        return True

    def copy(self, project, filename, dest_project, dest_filename, metadata=None):
        source_key, dest_key, encoded = self._copy_keys(
            project, filename, dest_project, dest_filename, metadata
        )
        props = self._props(source_key)
        if props is None:
            raise FileNotFound(f"No such file: {filename}")
        if source_key == dest_key:
            if encoded is not None:
                return self.update_metadata(project, filename, metadata)
            return self._stored(project, filename, source_key, props)
        source = self.client.get_blob_client(source_key)
        dest = self.client.get_blob_client(dest_key)
        with self._azure(f"copying {filename} to {dest_filename}"):
            # A copy inside one account: Azure finishes it server side, usually
            # at once; a pending copy is waited for (bounded).
            dest.start_copy_from_url(source.url, metadata=encoded or None)
            self._wait_for_copy(dest, dest_filename)
            if encoded == {}:
                dest.set_blob_metadata({})  # "no metadata" in the copy means "keep the source's"
        result = self._decode_metadata(props.metadata) if metadata is None else dict(metadata)
        return StoredObject(
            project=dest_project,
            filename=dest_filename,
            size=int(props.size),
            metadata=result,
            key=dest_key,
            last_modified=datetime.now(UTC),
        )

    def _wait_for_copy(self, dest, name: str, attempts: int = 600) -> None:
        wait_for_copy(dest, name, attempts)

    def update_metadata(self, project, filename, metadata):
        self.check_writable()
        key = self.key_for(project, filename)
        encoded = self._encode_metadata(metadata)
        with self._azure("updating the metadata of " + filename):
            try:
                self.client.get_blob_client(key).set_blob_metadata(encoded)
            except ResourceNotFoundError as exc:
                if _code(exc) == "ContainerNotFound":
                    raise
                raise FileNotFound(f"No such file: {filename}") from None
        props = self._props(key)
        if props is None:
            raise FileNotFound(f"No such file: {filename}")
        return StoredObject(
            project=project,
            filename=filename,
            size=int(props.size),
            metadata=dict(metadata),
            key=key,
            last_modified=props.last_modified,
        )

    def list(self, metadata_for=None):
        """Every blob under the prefix, its metadata included by the listing itself."""
        pages = self.client.list_blobs(name_starts_with=self.prefix or None, include=["metadata"]).by_page()
        while True:
            with self._azure("listing the container"):
                page = next(pages, None)
                items = list(page) if page is not None else None
            if items is None:
                return
            for item in items:
                found = self._listed(item.name, item.size, item.metadata, item.last_modified, metadata_for)
                if found is not None:
                    yield found

    def check_health(self) -> None:
        try:
            self.client.get_container_properties(timeout=5)
        except ResourceNotFoundError:
            raise BackendUnavailable(f"Azure container {self.container} does not exist") from None
        except ClientAuthenticationError as exc:
            raise BackendUnavailable(
                f"Azure rejects the credentials for container "
                f"{self.container} ({_code(exc) or 'AuthenticationFailed'})"
            ) from exc
        except AzureError as exc:
            raise self._unavailable("checking health", exc) from exc

    def download_url(self, project, filename, expires_in=None) -> Redirect | None:
        """A read-only SAS URL valid ``expires_in`` seconds; None (stream) without an account key."""
        if not self._account_key:
            return None
        key = self.key_for(project, filename)
        expires_at = signed_until(expires_in or self.expire_after)
        token = read_only_sas(self.account_name, self.container, key, self._account_key, expires_at)
        url = self.client.get_blob_client(key).url
        return Redirect(url=f"{url}?{token}", expires_at=expires_at)

    def close(self) -> None:
        try:
            self.client.close()
            self.service.close()
        except Exception:  # pragma: no cover - closing twice
            pass
