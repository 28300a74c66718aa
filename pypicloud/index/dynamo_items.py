"""Items of the DynamoDB index: the constants, the (de)serialisation and the time as
stored, shared by :mod:`pypicloud.index.dynamo` and its mixins
(:mod:`~pypicloud.index.dynamo_tables`, :mod:`~pypicloud.index.dynamo_state`).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import botocore.exceptions
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from ..models import FileRecord

FORMAT = 2  # the "ppc" attribute of items this module writes
GENERATION = "generation"
NAME_INDEX = "name-index"
MAX_ATTEMPTS = 200
# Key prefixes of the state table's other items (see the module docstring).
URL, LOCAL, COUNTER, INTENT = "url:", "local:", "counter:", "intent:"
REPAIR_LOCK = "repair-lock"
# How long the repair lock outlives a process that died holding it.
REPAIR_LOCK_SECONDS = 600

_OUTAGE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "ResourceNotFoundException",
}
_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "MissingAuthenticationTokenException",
    "SignatureDoesNotMatch",
}
_NETWORK_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionError,
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _dump(item: dict) -> dict:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def _load(item: dict) -> dict:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _to_number(when: datetime) -> Decimal:
    """Seconds since the epoch, exact to the microsecond (1.x stored a number too)."""
    when = when.astimezone(UTC)
    return Decimal(calendar.timegm(when.timetuple())) + Decimal(when.microsecond) / 1_000_000


def _from_number(value: Decimal) -> datetime:
    seconds = int(value)
    micros = int((value - seconds) * 1_000_000)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros)


def _file_item(record: FileRecord) -> dict:
    data = {
        "display_name": record.name,
        "size": record.size,
        "hash_sha256": record.sha256,
        "hash_md5": record.md5,
        "requires_python": record.requires_python,
        "uploader": record.uploader,
        "yanked": record.yanked,
        "yanked_reason": record.yanked_reason,
        "metadata_sha256": record.metadata_sha256,
        "storage_key": record.key,
        "storage_tag": record.storage_tag or None,
    }
    return {
        "filename": record.filename,
        "name": record.project,
        "version": record.version,
        "last_modified": _to_number(record.upload_time),
        "summary": record.summary,
        "data": {k: v for k, v in data.items() if v is not None},
        "ppc": FORMAT,
    }


def _record(item: dict) -> FileRecord:
    data = item.get("data", {})
    return FileRecord(
        project=item["name"],
        name=data.get("display_name", item["name"]),
        version=item["version"],
        filename=item["filename"],
        size=int(data.get("size", 0)),
        sha256=data.get("hash_sha256", ""),
        md5=data.get("hash_md5", ""),
        requires_python=data.get("requires_python"),
        summary=item.get("summary"),
        upload_time=_from_number(item["last_modified"]),
        uploader=data.get("uploader"),
        yanked=bool(data.get("yanked", False)),
        yanked_reason=data.get("yanked_reason"),
        metadata_sha256=data.get("metadata_sha256"),
        key=data.get("storage_key", ""),
        storage_tag=data.get("storage_tag", ""),
    )


def _summary_item(record: FileRecord) -> dict:
    return {
        "name": record.project,
        "display_name": record.name,
        "summary": record.summary,
        "last_modified": _to_number(record.upload_time),
        "filename": record.filename,
        "ppc": FORMAT,
    }


def _now() -> Decimal:
    """The time now as stored in items (read through ``datetime.now`` so tests can move it)."""
    return _to_number(datetime.now(UTC))
