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

import random
import threading
import time
from collections.abc import Iterable

import boto3
import botocore.config
import botocore.exceptions

from ..errors import BackendUnavailable
from ..models import FileRecord, ProjectSummary
from .base import MetadataIndex
from .dynamo_events import DynamoEventLog
from .dynamo_items import (
    _NETWORK_ERRORS,
    _OUTAGE_CODES,
    COUNTER,
    FORMAT,
    GENERATION,
    INTENT,
    LOCAL,
    MAX_ATTEMPTS,
    NAME_INDEX,
    REPAIR_LOCK,
    REPAIR_LOCK_SECONDS,
    URL,
    _dump,
    _file_item,
    _from_number,
    _load,
    _now,
    _record,
    _summary_item,
    _to_number,
)
from .dynamo_state import DynamoState
from .dynamo_tables import DynamoTables
from .dynamo_webhooks import DynamoWebhookQueue

# The names this module held before it was split (tests, tools and the
# dynamo_webhooks mixin import them).
__all__ = [
    "COUNTER",
    "FORMAT",
    "INTENT",
    "LOCAL",
    "REPAIR_LOCK",
    "REPAIR_LOCK_SECONDS",
    "_now",
    "_to_number",
    "DynamoCache",
    "DynamoIndex",
]


def _newest(records: Iterable[FileRecord]) -> FileRecord | None:
    return max(records, key=lambda r: (r.upload_time, r.filename), default=None)


class _Retry(Exception):
    """Another writer moved the counter first: compute the change again."""


class DynamoIndex(DynamoTables, DynamoState, DynamoEventLog, DynamoWebhookQueue, MetadataIndex):
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

    def check_health(self) -> None:
        self._generation_item()

    def close(self) -> None:
        self.client.close()


# pypicloud 1.x's class name, for inis that name it with a dotted path.
DynamoCache = DynamoIndex
