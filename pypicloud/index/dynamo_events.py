"""The audit log of the DynamoDB index, mixed into :class:`pypicloud.index.dynamo.DynamoIndex`.

Items of the state table (told apart by key prefix, as its other items are):

- ``event-seq``: the number of the last event (an atomic ``ADD``)
- ``event:<n>``: event number ``n``: its JSON (``event``) and time (``at``)
- ``event-id:<id>``: the number of the event with that id (for paging by id)
- ``event-floor``: no event below this number is left (pruning moves it up)

Numbers follow the order events were added, so a page is read newest first by
fetching ``event:<n>`` items downwards in batches of :data:`BATCH` (no scan
and no index needed). Filters are checked on each event; one call reads at most
:data:`MAX_SCAN` items, starts near the last event before ``until`` (found by a
binary search on the numbers) and stops once events are older than ``since``
(less :data:`SKEW`, for clocks of different servers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import botocore.exceptions
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from ..errors import BackendUnavailable
from ..events import Event
from .eventlog import EventQuery, event_from_text, event_to_text, micros

SEQ, FLOOR, EVENT, EVENT_ID = "event-seq", "event-floor", "event:", "event-id:"
BATCH = 100
MAX_SCAN = 5000
SKEW = timedelta(minutes=10)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _key(name: str) -> dict[str, Any]:
    return {"key": {"S": name}}


def _item(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in raw.items()}


class DynamoEventLog:
    """``add_event``, ``list_events`` and ``prune_events`` as numbered items."""

    if TYPE_CHECKING:
        client: Any
        state_table: str

        def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

        def _batch(self, table: str, requests: list[dict[str, Any]]) -> None: ...

    def _number(self, name: str) -> int:
        raw = self._call(
            self.client.get_item, TableName=self.state_table, Key=_key(name), ConsistentRead=True
        ).get("Item")
        return int(_item(raw).get("value", 0)) if raw else 0

    def add_event(self, event: Event) -> None:
        answer = self._call(
            self.client.update_item,
            TableName=self.state_table,
            Key=_key(SEQ),
            UpdateExpression="ADD #v :one",
            ExpressionAttributeNames={"#v": "value"},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        number = int(_item(answer["Attributes"])["value"])
        item = {"key": f"{EVENT}{number}", "event": event_to_text(event), "at": micros(event.at)}
        pointer = {"key": f"{EVENT_ID}{event.id}", "value": number}
        self._batch(
            self.state_table,
            [
                {"PutRequest": {"Item": {k: _serializer.serialize(v) for k, v in item.items()}}},
                {"PutRequest": {"Item": {k: _serializer.serialize(v) for k, v in pointer.items()}}},
            ],
        )

    def _fetch(self, numbers: list[int]) -> dict[int, dict[str, Any]]:
        """The event items of ``numbers`` that exist, by number (consistent reads)."""
        wanted = {"Keys": [_key(f"{EVENT}{n}") for n in numbers], "ConsistentRead": True}
        pending: dict[str, Any] = {self.state_table: wanted}
        found: dict[int, dict[str, Any]] = {}
        for attempt in range(20):
            answer = self._call(self.client.batch_get_item, RequestItems=pending)
            for raw in answer.get("Responses", {}).get(self.state_table, []):
                item = _item(raw)
                found[int(item["key"][len(EVENT) :])] = item
            pending = answer.get("UnprocessedKeys") or {}
            if not pending:
                return found
            time.sleep(min(1.0, 0.05 * 2**attempt))
        raise BackendUnavailable("The metadata index (DynamoDB) is too busy to read the audit log")

    def _downwards(self, top: int, floor: int, size: int) -> Iterator[tuple[int, dict[str, Any] | None]]:
        """(number, item or None) from ``top`` down to ``floor``, at most MAX_SCAN of them."""
        number = top
        while number >= max(floor, top - MAX_SCAN + 1):
            numbers = list(range(number, max(floor, number - size + 1) - 1, -1))
            items = self._fetch(numbers)
            for n in numbers:
                yield n, items.get(n)
            number -= size

    def list_events(self, query: EventQuery) -> list[Event]:
        top = self._number(SEQ)
        if query.before is not None:
            start = self._number(f"{EVENT_ID}{query.before}")
            if not start:
                return []
            top = start - 1
        floor = max(1, self._number(FLOOR))
        if query.until is not None and top >= floor:
            # Old events are reached by ``until`` without walking the newer ones.
            top = min(top, self._last_before(micros(query.until), floor, top) + BATCH)
        filtered = any(
            v is not None for v in (query.action, query.actor, query.project, query.since, query.until)
        )
        stop_at = micros(query.since - SKEW) if query.since is not None else None
        found: list[Event] = []
        for _, item in self._downwards(top, floor, BATCH if filtered else min(BATCH, query.limit)):
            if item is None:
                continue
            if stop_at is not None and int(item["at"]) < stop_at:
                break
            event = event_from_text(item["event"])
            if query.matches(event):
                found.append(event)
                if len(found) == query.limit:
                    break
        return found

    def _last_before(self, until: int, floor: int, top: int) -> int:
        """About the highest number whose event is older than ``until`` (a binary
        search by event number, whose order is that of the events' times)."""
        low, high = floor, top
        while low < high:
            middle = (low + high + 1) // 2
            numbers = list(range(middle, max(low, middle - 9) - 1, -1))
            items = self._fetch(numbers)
            near = next((items[n] for n in numbers if n in items), None)
            if near is None or int(near["at"]) < until:
                low = middle
            else:
                high = middle - 1
        return low

    def prune_events(self, older_than: datetime) -> int:
        cutoff = micros(older_than)
        top = self._number(SEQ)
        floor = max(1, self._number(FLOOR))
        removed, last_removed = 0, 0
        number = floor
        while number <= top:
            numbers = list(range(number, min(top, number + BATCH - 1) + 1))
            items = self._fetch(numbers)
            doomed: list[dict[str, Any]] = []
            newer = False
            for n in numbers:
                item = items.get(n)
                if item is None:
                    continue  # a gap (an event being written now, or a write that failed)
                if int(item["at"]) >= cutoff:
                    newer = True
                    break
                event_id = event_from_text(item["event"]).id
                for key in (f"{EVENT}{n}", f"{EVENT_ID}{event_id}"):
                    doomed.append({"DeleteRequest": {"Key": _key(key)}})
                removed, last_removed = removed + 1, n
            self._batch(self.state_table, doomed)
            if newer:
                break
            number += BATCH
        if last_removed:
            self._raise_floor(last_removed + 1)
        return removed

    def _raise_floor(self, value: int) -> None:
        """Move the floor up to ``value`` (never down: another process may have pruned further)."""
        try:
            self._call(
                self.client.update_item,
                TableName=self.state_table,
                Key=_key(FLOOR),
                UpdateExpression="SET #v = :f",
                ConditionExpression="attribute_not_exists(#v) OR #v < :f",
                ExpressionAttributeNames={"#v": "value"},
                ExpressionAttributeValues={":f": {"N": str(Decimal(value))}},
            )
        except botocore.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
