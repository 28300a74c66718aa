"""Signed URLs, local projects, shared counters and the intent log of the DynamoDB
index, mixed into :class:`pypicloud.index.dynamo.DynamoIndex`.

All are items of the state table, told apart by key prefix (``url:``, ``local:``,
``counter:``, ``intent:``, and the ``repair-lock`` item); see
:mod:`pypicloud.index.dynamo`. Times are read through ``dynamo_items._now``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from ..errors import BackendUnavailable
from .base import Intent
from .dynamo_items import (
    _NETWORK_ERRORS,
    COUNTER,
    INTENT,
    LOCAL,
    MAX_ATTEMPTS,
    REPAIR_LOCK,
    REPAIR_LOCK_SECONDS,
    URL,
    _dump,
    _from_number,
    _load,
    _now,
    _to_number,
)


class DynamoState:
    """``get_url``/``set_url``, ``mark_local``/``was_local``, ``counter``/``incr_counter``
    and the intent log (``begin_intent``, ``end_intent``, ``open_intents``, ``repair_lock``)."""

    if TYPE_CHECKING:
        client: Any  # a boto3 DynamoDB client
        state_table: str

        def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

        def _get(self, table: str, key: dict) -> dict | None: ...

        def _pages(self, operation: str, **kwargs: Any) -> Iterable[dict]: ...

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
