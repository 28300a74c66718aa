"""The Azure SDK calls behind :class:`pypicloud.storage.azure_blob.AzureBlobStorage`.

How the service client is made (a connection string, or an account URL with
name and key), which SDK errors mean "Azure is unavailable" (rather than an
answer about one blob), how a metadata name becomes a C# identifier and back,
the bounded wait for a server-side copy, and the read-only SAS token of a
download URL. The storage class keeps the contract; these keep the SDK details.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

from ..errors import BackendUnavailable
from .azure_options import _code, _status

try:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas
except ImportError:  # the extra is not installed: azure_blob.py says so
    pass

_ESCAPE = "ppcx_"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def encode_name(name: str) -> str:
    """A metadata name Azure accepts: itself if a C# identifier, else escaped as hex."""
    if _IDENTIFIER.match(name) and not name.startswith(_ESCAPE):
        return name
    return _ESCAPE + name.encode("utf-8").hex()


def decode_name(name: str) -> str:
    """The metadata name :func:`encode_name` was given (Azure lower-cases names)."""
    name = name.lower()
    if name.startswith(_ESCAPE):
        try:
            return bytes.fromhex(name[len(_ESCAPE) :]).decode("utf-8")
        except (ValueError, UnicodeError):
            return name
    return name


def service_client(connection_string, account_url, account_name, account_key, options: dict):
    """The SDK's service client, from a connection string or an account URL (default from the name)."""
    if connection_string:
        return BlobServiceClient.from_connection_string(connection_string, **options)
    if not account_url:
        account_url = f"https://{account_name}.blob.core.windows.net"
    credential = {"account_name": account_name, "account_key": account_key} if account_key else None
    return BlobServiceClient(account_url=account_url, credential=credential, **options)


def is_outage(exc: BaseException) -> bool:
    """Whether an SDK error means Azure (or the container) is unavailable, not a missing blob."""
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, ClientAuthenticationError)):
        return True
    if isinstance(exc, HttpResponseError):
        return _status(exc) >= 500 or _status(exc) in (403, 429) or _code(exc) == "ContainerNotFound"
    return False


def wait_for_copy(dest, name: str, attempts: int = 600) -> None:
    """Wait (bounded) until a server-side copy to the blob client ``dest`` has finished."""
    for _ in range(attempts):
        status = dest.get_blob_properties().copy.status
        if status in (None, "success"):
            return
        if status != "pending":
            raise BackendUnavailable(f"Azure could not copy {name}: copy status {status}")
        time.sleep(0.5)
    raise BackendUnavailable(f"Azure did not finish copying {name} in time")


def read_only_sas(account_name: str, container: str, key: str, account_key: str, expires_at: datetime) -> str:
    """The query string of a read-only SAS URL of one blob, valid until ``expires_at``."""
    return generate_blob_sas(
        account_name=account_name,
        container_name=container,
        blob_name=key,
        account_key=account_key,
        permission=BlobSasPermissions(read=True),
        expiry=expires_at,
    )
