"""The metadata index in DynamoDB (``pypi.db = dynamo``), as pypicloud 1.x had it.

Tables (names as 1.x made them: ``db.namespace`` + the model name, or
``db.tablenames``):

- ``DynamoPackage``: one item per file, hash key ``filename``, global secondary
  index ``name-index`` on ``name`` (the canonical project name). 1.x's
  attributes (``name``, ``version``, ``last_modified``, ``summary``, ``data``)
  keep their meaning; the rest of the record is in the ``data`` map.
- ``PackageSummary``: one item per project, hash key ``name``: the display name,
  summary and upload time of its newest file.
- ``PypicloudState`` (new in 2.x, a third name in ``db.tablenames``): the change
  counter (item ``generation``) and the shared signed-URL cache (items
  ``url:<storage key>``, removed by DynamoDB's TTL once expired where TTL is on).
  Beside them, told apart by key prefix: ``local:<project>`` (projects that ever
  had a file published here), ``counter:<name>`` (shared counters, with their
  own ``expires`` time), ``intent:<id>`` (the intent log of the write protocol)
  and ``repair-lock`` (held, with an expiry, by the one process repairing).
  A rebuild removes only the ``url:`` items. The audit log's ``event*`` items
  are described in dynamo_events.py.

Items written by 1.x lack the ``ppc`` attribute and are not read: a table that
holds only 1.x items looks empty, so the server rebuilds the index from
storage at start-up (1.x items never said which storage key a file has).

Writes are serialised through the change counter: each one reads the counter,
computes its change, and commits it in one transaction that also moves the
counter on, on the condition that nobody moved it meanwhile (else it starts
again). So two processes on one table set never interleave their summary
updates. Listing a project's files reads the global secondary index, which
DynamoDB keeps eventually consistent: a file added by another process shows
there within about a second.
"""

from __future__ import annotations

import calendar
import contextlib
import random
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import botocore.config
import botocore.exceptions
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from ..errors import BackendUnavailable, ConfigError
from ..models import FileRecord, ProjectSummary
from .base import Intent, MetadataIndex
from .dynamo_events import DynamoEventLog
from .dynamo_webhooks import DynamoWebhookQueue

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


def _newest(records: Iterable[FileRecord]) -> FileRecord | None:
    return max(records, key=lambda r: (r.upload_time, r.filename), default=None)


class _Retry(Exception):
    """Another writer moved the counter first: compute the change again."""


class DynamoIndex(DynamoEventLog, DynamoWebhookQueue, MetadataIndex):
    """Metadata index in DynamoDB tables (1.x's ``pypi.db = dynamo``)."""

    def __init__(
        self,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        namespace: str = "",
        tablenames: tuple[str, ...] = (),
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        profile_name: str | None = None,
        connect_timeout: float = 5,
        read_timeout: float = 10,
        create: bool = True,
    ):
        session = boto3.session.Session(
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            region_name=region_name,
            profile_name=profile_name,
        )
        # One client for every thread: boto3 clients are thread-safe.
        self.client = session.client(
            "dynamodb",
            endpoint_url=endpoint_url,
            config=botocore.config.Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=32,
            ),
        )
        names = list(tablenames) or [namespace + "DynamoPackage", namespace + "PackageSummary"]
        if len(names) == 2:
            names.append(namespace + "PypicloudState")
        self.files_table, self.summary_table, self.state_table = names
        self._write_lock = threading.Lock()
        if create:
            self.create_tables()

    @classmethod
    def from_settings(cls, settings) -> DynamoIndex:
        tablenames = tuple(settings.get_list("db.tablenames", ()))
        if tablenames and len(tablenames) not in (2, 3):
            raise ConfigError(
                "db.tablenames",
                " ".join(tablenames),
                "two table names (files, summaries) and optionally a third (change counter and signed URLs)",
            )
        endpoint = settings.get_str("db.endpoint_url")
        host = settings.get_str("db.host")
        if endpoint is None and host is not None:  # 1.x: db.host, db.port, db.secure
            scheme = "https" if settings.get_bool("db.secure", False) else "http"
            endpoint = f"{scheme}://{host}:{settings.get_int('db.port', 8000, minimum=1)}"
        region = settings.get_str("db.region_name")
        if region is None and endpoint is not None:
            region = "us-east-1"  # a local endpoint still needs a region to sign for
        kwargs = {
            k: settings.get_str(f"db.{k}")
            for k in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "profile_name")
        }
        try:
            index = cls(
                region_name=region,
                endpoint_url=endpoint,
                namespace=settings.get_str("db.namespace", ""),
                tablenames=tablenames,
                create=False,
                **kwargs,
            )
        except botocore.exceptions.ProfileNotFound as exc:
            raise ConfigError("db.profile_name", kwargs["profile_name"], str(exc)) from None
        if index.client.meta.region_name is None:
            raise ConfigError("db.region_name", None, "a region (or db.endpoint_url / db.host)")
        try:
            index.create_tables()
        except botocore.exceptions.NoCredentialsError:
            raise ConfigError(
                "db.aws_access_key_id",
                None,
                "no AWS credentials found (set "
                "db.aws_access_key_id and db.aws_secret_access_key, or "
                "give the process a role or profile)",
            ) from None
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _CREDENTIAL_CODES or status == 403 or code == "403":
                raise ConfigError(
                    "db.aws_access_key_id", None, f"DynamoDB refused the credentials: {exc}"
                ) from None
            raise ConfigError("pypi.db", "dynamo", f"cannot use the DynamoDB tables: {exc}") from None
        except _NETWORK_ERRORS as exc:
            raise ConfigError(
                "db.endpoint_url" if endpoint else "db.region_name",
                endpoint or region,
                f"cannot reach DynamoDB: {exc}",
            ) from None
        return index

    # Tables ---------------------------------------------------------------
    def create_tables(self) -> None:
        """Create the three tables where they are missing (as 1.x did at start-up)."""
        existing = set()
        for page in self.client.get_paginator("list_tables").paginate():
            existing.update(page["TableNames"])
        created = []
        if self.files_table not in existing:
            self.client.create_table(
                TableName=self.files_table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "filename", "AttributeType": "S"},
                    {"AttributeName": "name", "AttributeType": "S"},
                ],
                KeySchema=[{"AttributeName": "filename", "KeyType": "HASH"}],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": NAME_INDEX,
                        "KeySchema": [{"AttributeName": "name", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
            )
            created.append(self.files_table)
        for table, key in ((self.summary_table, "name"), (self.state_table, "key")):
            if table not in existing:
                self.client.create_table(
                    TableName=table,
                    BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                )
                created.append(table)
        waiter = self.client.get_waiter("table_exists")
        for table in created:
            waiter.wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        if self.state_table in created:
            try:
                self.client.update_time_to_live(
                    TableName=self.state_table,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
                )
            except botocore.exceptions.ClientError:
                pass  # only an optimisation: expired URLs are replaced anyway
        try:
            self.client.put_item(
                TableName=self.state_table,
                Item=_dump({"key": GENERATION, "value": 0}),
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": "key"},
            )
        except botocore.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def delete_tables(self) -> None:
        """Drop the three tables (tests, or dropping a deployment)."""
        for table in (self.files_table, self.summary_table, self.state_table):
            try:
                self.client.delete_table(TableName=table)
            except botocore.exceptions.ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise

    # Plumbing -------------------------------------------------------------
    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _NETWORK_ERRORS as exc:
            raise BackendUnavailable(f"The metadata index (DynamoDB) is unavailable: {exc}") from None
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _OUTAGE_CODES:
                raise BackendUnavailable(f"The metadata index (DynamoDB) is unavailable: {exc}") from None
            raise

    def _get(self, table: str, key: dict) -> dict | None:
        item = self._call(self.client.get_item, TableName=table, Key=_dump(key), ConsistentRead=True).get(
            "Item"
        )
        return _load(item) if item is not None else None

    def _get_file(self, filename: str) -> FileRecord | None:
        item = self._get(self.files_table, {"filename": filename})
        return _record(item) if item is not None and "ppc" in item else None

    def _pages(self, operation: str, **kwargs) -> Iterable[dict]:
        paginator = self.client.get_paginator(operation)
        for page in self._call(lambda: list(paginator.paginate(**kwargs))):
            for item in page.get("Items", []):
                yield _load(item)

    def _project_files(self, project: str) -> list[FileRecord]:
        items = self._pages(
            "query",
            TableName=self.files_table,
            IndexName=NAME_INDEX,
            KeyConditionExpression="#n = :n",
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues=_dump({":n": project}),
        )
        return [_record(i) for i in items if "ppc" in i]

    def _summary_changes(
        self, project: str, *, without: str | None = None, added: FileRecord | None = None
    ) -> list[dict]:
        """The summary write for ``project`` after dropping ``without`` / adding ``added``."""
        current = self._get(self.summary_table, {"name": project})
        if current is not None and "ppc" not in current:
            current = None
        put = lambda r: [
            {
                "Put": {
                    "TableName": self.summary_table,  # noqa: E731
                    "Item": _dump(_summary_item(r)),
                }
            }
        ]
        if added is not None:
            if current is None:
                return put(added)
            newest = (_from_number(current["last_modified"]), current["filename"])
            if (added.upload_time, added.filename) >= newest:
                return put(added)  # the newest file now
            if current["filename"] != added.filename:
                return []  # the summary stays with a newer file
        elif current is not None and current["filename"] != without:
            return []  # the removed file was not the newest one
        # The file the summary came from changes or goes: recompute from the project's files.
        records = [
            r
            for r in self._project_files(project)
            if r.filename != without and (added is None or r.filename != added.filename)
        ]
        latest = _newest(records + ([added] if added is not None else []))
        if latest is None:
            return [{"Delete": {"TableName": self.summary_table, "Key": _dump({"name": project})}}]
        return [{"Put": {"TableName": self.summary_table, "Item": _dump(_summary_item(latest))}}]

    def _generation_item(self) -> int:
        item = self._get(self.state_table, {"key": GENERATION})
        return int(item["value"]) if item is not None else 0

    def _commit(self, generation: int, changes: list[dict]) -> None:
        """Write ``changes`` and move the counter on, if nobody moved it since ``generation``."""
        counter = {
            "Update": {
                "TableName": self.state_table,
                "Key": _dump({"key": GENERATION}),
                "UpdateExpression": "SET #v = :next",
                "ConditionExpression": "#v = :seen",
                "ExpressionAttributeNames": {"#v": "value"},
                "ExpressionAttributeValues": _dump({":next": generation + 1, ":seen": generation}),
            }
        }
        try:
            self._call(self.client.transact_write_items, TransactItems=changes + [counter])
        except botocore.exceptions.ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("TransactionCanceledException", "TransactionConflictException"):
                raise _Retry() from None
            raise

    def _write(self, plan):
        """Run ``plan(generation) -> (changes, result)`` until it commits; None changes: nothing to do."""
        with self._write_lock:  # this process's writers take turns; others retry
            for attempt in range(MAX_ATTEMPTS):
                generation = self._generation_item()
                changes, result = plan()
                if changes is None:
                    return result
                try:
                    self._commit(generation, changes)
                    return result
                except _Retry:
                    time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** min(attempt, 6))))
        raise BackendUnavailable(
            "The metadata index (DynamoDB) is too busy: a write kept conflicting with other writers"
        )

    # Contract -------------------------------------------------------------
    def add(self, record: FileRecord) -> None:
        def plan():
            old = self._get_file(record.filename)
            changes = [{"Put": {"TableName": self.files_table, "Item": _dump(_file_item(record))}}]
            changes += self._summary_changes(record.project, added=record)
            if old is not None and old.project != record.project:
                changes += self._summary_changes(old.project, without=record.filename)
            return changes, None

        self._write(plan)

    def get(self, filename: str) -> FileRecord | None:
        return self._get_file(filename)

    def remove(self, filename: str) -> bool:
        def plan():
            old = self._get_file(filename)
            if old is None:
                return None, False  # the counter must not move for nothing
            changes = [{"Delete": {"TableName": self.files_table, "Key": _dump({"filename": filename})}}]
            changes += self._summary_changes(old.project, without=filename)
            return changes, True

        return self._write(plan)

    def files(self, project: str) -> list[FileRecord]:
        return sorted(self._project_files(project), key=lambda r: r.filename)

    def projects(self) -> list[ProjectSummary]:
        items = [
            i for i in self._pages("scan", TableName=self.summary_table, ConsistentRead=True) if "ppc" in i
        ]
        return [
            ProjectSummary(
                project=i["name"],
                name=i.get("display_name", i["name"]),
                summary=i.get("summary"),
                last_modified=_from_number(i["last_modified"]),
            )
            for i in sorted(items, key=lambda i: i["name"])
        ]

    def set_yanked(self, filename: str, yanked: bool, reason: str | None = None) -> bool:
        def plan():
            old = self._get_file(filename)
            if old is None:
                return None, False
            record = old.replace(yanked=yanked, yanked_reason=reason if yanked else None)
            return [{"Put": {"TableName": self.files_table, "Item": _dump(_file_item(record))}}], True

        return self._write(plan)

    def generation(self) -> int:
        return self._generation_item()

    def all_records(self) -> Iterable[FileRecord]:
        items = self._pages("scan", TableName=self.files_table, ConsistentRead=True)
        return sorted((_record(i) for i in items if "ppc" in i), key=lambda r: r.filename)

    def _delete_all(self, table: str, key: str, keep=lambda item: False) -> None:
        items = self._pages(
            "scan",
            TableName=table,
            ConsistentRead=True,
            ProjectionExpression="#k",
            ExpressionAttributeNames={"#k": key},
        )
        doomed = [{"DeleteRequest": {"Key": _dump({key: i[key]})}} for i in items if not keep(i)]
        self._batch(table, doomed)

    def _batch(self, table: str, requests: list[dict]) -> None:
        for start in range(0, len(requests), 25):
            pending = {table: requests[start : start + 25]}
            for attempt in range(20):
                answer = self._call(self.client.batch_write_item, RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))
            else:
                raise BackendUnavailable("The metadata index (DynamoDB) is too busy to rebuild")

    def replace_all(self, records: Iterable[FileRecord]) -> None:
        """Empty the tables and write ``records``.

        DynamoDB cannot do this in one transaction: readers may see the index
        half rebuilt while it runs (``db.graceful_reload`` avoids emptying).
        """
        records = list(records)
        with self._write_lock:
            self._delete_all(self.files_table, "filename")
            self._delete_all(self.summary_table, "name")
            # Only the URL cache goes: local marks, counters, intents and the
            # repair lock are not records and must survive a rebuild.
            self._delete_all(self.state_table, "key", keep=lambda i: not i["key"].startswith(URL))
            self._batch(self.files_table, [{"PutRequest": {"Item": _dump(_file_item(r))}} for r in records])
            newest: dict[str, FileRecord] = {}
            for r in records:
                best = newest.get(r.project)
                if best is None or (r.upload_time, r.filename) > (best.upload_time, best.filename):
                    newest[r.project] = r
            self._batch(
                self.summary_table,
                [{"PutRequest": {"Item": _dump(_summary_item(r))}} for r in newest.values()],
            )
            self._call(
                self.client.update_item,
                TableName=self.state_table,
                Key=_dump({"key": GENERATION}),
                UpdateExpression="ADD #v :one",
                ExpressionAttributeNames={"#v": "value"},
                ExpressionAttributeValues=_dump({":one": 1}),
            )

    def count(self) -> int:
        total = 0
        paginator = self.client.get_paginator("scan")
        pages = self._call(
            lambda: list(
                paginator.paginate(
                    TableName=self.files_table,
                    Select="COUNT",
                    ConsistentRead=True,
                    FilterExpression="attribute_exists(ppc)",
                )
            )
        )
        for page in pages:
            total += page["Count"]
        return total

    def get_url(self, key: str) -> tuple[str, datetime] | None:
        item = self._get(self.state_table, {"key": URL + key})
        if item is None:
            return None
        return item["url"], datetime.fromisoformat(item["expires_at"])

    def set_url(self, key: str, url: str, expires_at: datetime) -> None:
        expires_at = expires_at.astimezone(UTC)
        self._call(
            self.client.put_item,
            TableName=self.state_table,
            Item=_dump(
                {
                    "key": URL + key,
                    "url": url,
                    "expires_at": expires_at.isoformat(),
                    "ttl": int(expires_at.timestamp()) + 1,
                }
            ),
        )

    # Private projects --------------------------------------------------
    def mark_local(self, project: str) -> None:
        # An update, so that marking again keeps the time of the first mark.
        self._call(
            self.client.update_item,
            TableName=self.state_table,
            Key=_dump({"key": LOCAL + project}),
            UpdateExpression="SET #m = if_not_exists(#m, :now)",
            ExpressionAttributeNames={"#m": "marked"},
            ExpressionAttributeValues=_dump({":now": _now()}),
        )

    def was_local(self, project: str) -> bool:
        return self._get(self.state_table, {"key": LOCAL + project}) is not None

    # Shared counters -----------------------------------------------------
    def counter(self, name: str) -> int:
        item = self._get(self.state_table, {"key": COUNTER + name})
        if item is None or ("expires" in item and item["expires"] <= _now()):
            return 0  # DynamoDB's TTL deletes expired items days late, if at all
        return int(item.get("value", 0))

    def incr_counter(self, name: str, amount: int = 1, ttl: int | None = None) -> int:
        key = _dump({"key": COUNTER + name})
        names = {"#v": "value", "#e": "expires", "#t": "ttl"}
        for _ in range(MAX_ATTEMPTS):
            now = _now()
            values = {":a": amount, ":now": now}
            if ttl is not None:
                expires = now + ttl
                values.update({":e": expires, ":t": int(expires) + 1})
                add = "ADD #v :a SET #e = :e, #t = :t"
                reset = "SET #v = :a, #e = :e, #t = :t"
            else:
                add, reset = "ADD #v :a REMOVE #e, #t", "SET #v = :a REMOVE #e, #t"
            try:
                # ADD is atomic, and creates the item (from 0) when there is none.
                answer = self._call(
                    self.client.update_item,
                    TableName=self.state_table,
                    Key=key,
                    UpdateExpression=add,
                    ConditionExpression="attribute_not_exists(#e) OR #e > :now",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=_dump(values),
                    ReturnValues="UPDATED_NEW",
                )
                return int(_load(answer["Attributes"])["value"])
            except botocore.exceptions.ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
            # The counter has expired: it starts again from ``amount``, unless
            # another process restarted it meanwhile (then add to theirs).
            try:
                self._call(
                    self.client.update_item,
                    TableName=self.state_table,
                    Key=key,
                    UpdateExpression=reset,
                    ConditionExpression="#e <= :now",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=_dump(values),
                )
                return amount
            except botocore.exceptions.ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        raise BackendUnavailable(
            "The metadata index (DynamoDB) is too busy: a counter kept conflicting with other writers"
        )

    # Intent log ----------------------------------------------------------
    def begin_intent(self, op: str, project: str, filename: str) -> str | None:
        # An item of its own, outside the counter's transactions: the counter stays.
        intent_id = uuid.uuid4().hex
        self._call(
            self.client.put_item,
            TableName=self.state_table,
            Item=_dump(
                {
                    "key": INTENT + intent_id,
                    "op": op,
                    "project": project,
                    "filename": filename,
                    "created": _now(),
                }
            ),
        )
        return intent_id

    def end_intent(self, intent_id: str) -> None:
        self._call(
            self.client.delete_item, TableName=self.state_table, Key=_dump({"key": INTENT + intent_id})
        )

    def open_intents(self, older_than: datetime) -> list[Intent]:
        # A scan of the state table (no index needed); it runs once per repair.
        items = self._pages(
            "scan",
            TableName=self.state_table,
            ConsistentRead=True,
            FilterExpression="begins_with(#k, :p) AND #c <= :t",
            ExpressionAttributeNames={"#k": "key", "#c": "created"},
            ExpressionAttributeValues=_dump({":p": INTENT, ":t": _to_number(older_than)}),
        )
        found = [
            Intent(
                id=i["key"][len(INTENT) :],
                op=i["op"],
                project=i["project"],
                filename=i["filename"],
                created=_from_number(i["created"]),
            )
            for i in items
        ]
        return sorted(found, key=lambda i: (i.created, i.id))

    @contextlib.contextmanager
    def repair_lock(self) -> Iterator[bool]:
        """An item put on the condition that none is there or it has expired, so a
        process killed while holding it blocks the others for REPAIR_LOCK_SECONDS at most."""
        token = uuid.uuid4().hex
        now = _now()
        expires = now + REPAIR_LOCK_SECONDS
        try:
            self._call(
                self.client.put_item,
                TableName=self.state_table,
                Item=_dump({"key": REPAIR_LOCK, "token": token, "expires": expires, "ttl": int(expires) + 1}),
                ConditionExpression="attribute_not_exists(#k) OR #e <= :now",
                ExpressionAttributeNames={"#k": "key", "#e": "expires"},
                ExpressionAttributeValues=_dump({":now": now}),
            )
            got = True
        except botocore.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            got = False
        try:
            yield got
        finally:
            if got:
                try:
                    # Only our own lock: it may have lapsed and been taken by another.
                    self.client.delete_item(
                        TableName=self.state_table,
                        Key=_dump({"key": REPAIR_LOCK}),
                        ConditionExpression="#o = :token",
                        ExpressionAttributeNames={"#o": "token"},
                        ExpressionAttributeValues=_dump({":token": token}),
                    )
                except (botocore.exceptions.ClientError, *_NETWORK_ERRORS):
                    pass  # it lapses by itself

    def check_health(self) -> None:
        self._generation_item()

    def close(self) -> None:
        self.client.close()


# pypicloud 1.x's class name, for inis that name it with a dotted path.
DynamoCache = DynamoIndex
