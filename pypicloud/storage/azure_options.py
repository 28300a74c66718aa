"""Settings, start-up and block uploads of the Azure Blob backend.

:func:`options_from_settings` reads the container and the account's
credentials (the caller has checked that the SDK, the ``azure`` extra, is
installed); :func:`ensure_container` checks the container and the credentials
at start-up and creates a missing container; :func:`put_blocks` uploads a large
body as blocks, a few in flight, committed with one Put Block List.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ..errors import ConfigError
from .objectstore import read_full

try:
    from azure.core import MatchConditions
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )
except ImportError:  # the extra is not installed: azure_blob.py says so
    pass

LOG = logging.getLogger("pypicloud.storage.azure_blob")
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")


def _status(exc: BaseException) -> int:
    return int(getattr(exc, "status_code", 0) or 0)


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", "") or "")


def options_from_settings(settings) -> dict:
    """The container and the credentials: a connection string, or an account name and key."""
    env = settings.environ
    container = settings.get_str("storage.storage_container_name")
    if container is None:
        raise ConfigError("storage.storage_container_name", None, "required when pypi.storage = azure-blob")
    if not _CONTAINER.match(container):
        raise ConfigError(
            "storage.storage_container_name",
            container,
            "3-63 lowercase letters, digits and single hyphens",
        )
    connection_string = (
        settings.get_str("storage.storage_connection_string")
        or settings.get_str("storage.connection_string")
        or env.get("AZURE_STORAGE_CONNECTION_STRING")
        or None
    )
    account_url = (
        settings.get_str("storage.storage_account_url") or env.get("AZURE_STORAGE_SERVICE_ENDPOINT") or None
    )
    account_name = (
        settings.get_str("storage.storage_account_name") or env.get("AZURE_STORAGE_ACCOUNT") or None
    )
    account_key = settings.get_str("storage.storage_account_key") or env.get("AZURE_STORAGE_KEY") or None
    if not connection_string:
        if account_name is None:
            raise ConfigError(
                "storage.storage_account_name",
                None,
                "required (or storage.storage_connection_string, or the AZURE_STORAGE_ACCOUNT variable)",
            )
        if account_key is None:
            raise ConfigError(
                "storage.storage_account_key",
                None,
                "required (or storage.storage_connection_string, or the AZURE_STORAGE_KEY variable)",
            )
        try:
            base64.b64decode(account_key, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(
                "storage.storage_account_key",
                "<hidden>",
                "an account key is base64 (key1 or key2 of the account)",
            ) from None
        if account_url is not None and not re.match(r"^https?://[^/\s]+", account_url):
            raise ConfigError(
                "storage.storage_account_url",
                account_url,
                "a URL such as https://<account>.blob.core.windows.net",
            )
    return dict(
        container=container,
        account_url=account_url,
        account_name=account_name,
        account_key=account_key,
        connection_string=connection_string,
    )


def ensure_container(storage) -> None:
    """Check the container at start-up (and the credentials with it); create it if allowed."""
    try:
        storage.client.get_container_properties()
        return
    except ResourceNotFoundError:
        pass
    except ClientAuthenticationError as exc:
        raise _bad_credentials(storage, exc) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise storage._unavailable("checking the container", exc) from exc
    except HttpResponseError as exc:
        if _status(exc) == 403:
            raise _bad_credentials(storage, exc) from None
        raise storage._unavailable("checking the container", exc) from exc
    if not storage.create_container or storage.read_only:
        raise storage._refuse_create("storage.storage_container_name", storage.container, "container")
    LOG.info("Creating Azure container %s", storage.container)
    try:
        storage.client.create_container()
    except ResourceExistsError:
        pass  # another process created it at the same moment
    except AzureError as exc:
        raise storage._unavailable("creating the container", exc) from exc


def _bad_credentials(storage, exc) -> ConfigError:
    return ConfigError(
        "storage.storage_account_key",
        None,
        f"Azure rejected the credentials for account {storage.account_name} "
        f"({_code(exc) or _status(exc) or 'AuthenticationFailed'}): check "
        "storage.storage_account_name / storage.storage_account_key "
        "(or the connection string)",
    )


def put_blocks(storage, blob, filename, head, stream, encoded, overwrite) -> int:
    """Stage blocks (a few in flight) and commit them; returns the size written."""
    upload = uuid.uuid4().hex  # random per upload: racing uploads never share block ids
    ids: list[str] = []
    total = 0

    def stage(block_id: str, body: bytes) -> None:
        with storage._azure("uploading " + filename):
            blob.stage_block(block_id, body, length=len(body))

    with ThreadPoolExecutor(storage.max_concurrency, thread_name_prefix="azure-upload") as pool:
        in_flight: deque = deque()
        pending = head.pop()
        while pending:
            body, pending = pending[: storage.block_size], pending[storage.block_size :]
            if len(body) < storage.block_size:
                body += read_full(stream, storage.block_size - len(body))
            if not body:
                break
            block_id = base64.b64encode(f"{upload}{len(ids):08d}".encode()).decode()
            ids.append(block_id)
            total += len(body)
            if len(in_flight) >= storage.max_concurrency:
                in_flight.popleft().result()
            in_flight.append(pool.submit(stage, block_id, body))
            del body
            if not pending:
                pending = read_full(stream, storage.block_size)
        while in_flight:
            in_flight.popleft().result()
    condition = {} if overwrite else {"match_condition": MatchConditions.IfMissing}
    with storage._azure("completing the upload of " + filename):
        blob.commit_block_list(ids, metadata=encoded, **condition)
    return total
