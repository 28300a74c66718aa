"""The webhook delivery queue of the DynamoDB index.

One item per delivery in the state table (``PypicloudState``), key
``delivery:<id>``. Finding due deliveries is a filtered scan of that table (it
also holds the signed-URL cache; a deployment with very many cached URLs pays
for reading them once per poll, see docs/webhooks.md); taking one is a
conditional UpdateItem that succeeds only while it is still due and unclaimed,
so two processes never take the same one. (A transaction would not do: moto's
transactions are not atomic under concurrency; a conditional update is.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from .webhook_queue import FAILED, PENDING, Delivery, short_error

DELIVERY = "delivery:"
_NAMES = {"#k": "key", "#s": "state", "#n": "next", "#l": "lease", "#o": "owner"}


def _number(when: datetime) -> Decimal:
    from .dynamo import _to_number

    return _to_number(when)


def _time(value) -> datetime | None:
    from .dynamo import _from_number

    return _from_number(value) if value is not None else None


def _item(delivery: Delivery) -> dict:
    return {
        "key": DELIVERY + delivery.id,
        "webhook": delivery.webhook,
        "action": delivery.action,
        "body": delivery.body,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "created": _number(delivery.created),
        "next": _number(delivery.next_attempt_at),
    }


def _delivery(item: dict) -> Delivery:
    return Delivery(
        id=item["key"][len(DELIVERY) :],
        webhook=item["webhook"],
        action=item["action"],
        body=item["body"],
        state=item["state"],
        attempts=int(item.get("attempts", 0)),
        created=_time(item["created"]),  # type: ignore[arg-type]
        next_attempt_at=_time(item["next"]),  # type: ignore[arg-type]
        last_attempt_at=_time(item.get("last_attempt")),
        last_error=item.get("last_error"),
        owner=item.get("owner"),
        lease_until=_time(item.get("lease")),
    )


def _conditional_failed(exc: botocore.exceptions.ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoWebhookQueue:
    """Mixin of :class:`pypicloud.index.dynamo.DynamoIndex` (its client, state table and helpers)."""

    if TYPE_CHECKING:
        client: Any
        state_table: str

        def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

        def _pages(self, operation: str, **kwargs: Any) -> Iterable[dict]: ...

    def _dump(self, values: dict) -> dict:
        from .dynamo import _dump

        return _dump(values)

    def _update(self, delivery_id: str, expression: str, condition: str, values: dict, **extra) -> Any:
        """One conditional UpdateItem; None when the condition did not hold."""
        names = {k: v for k, v in _NAMES.items() if k in expression or k in condition}
        try:
            return self._call(
                self.client.update_item,
                TableName=self.state_table,
                Key=self._dump({"key": DELIVERY + delivery_id}),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=self._dump(values),
                **extra,
            )
        except botocore.exceptions.ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise

    def _scan(self, state: str, extra_filter: str = "", values: dict | None = None) -> list[Delivery]:
        condition = "begins_with(#k, :p) AND #s = :state" + extra_filter
        items = self._pages(
            "scan",
            TableName=self.state_table,
            ConsistentRead=True,
            FilterExpression=condition,
            ExpressionAttributeNames={k: v for k, v in _NAMES.items() if k in condition},
            ExpressionAttributeValues=self._dump({":p": DELIVERY, ":state": state, **(values or {})}),
        )
        return [_delivery(i) for i in items]

    def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._call(self.client.put_item, TableName=self.state_table, Item=self._dump(_item(delivery)))

    def claim_deliveries(self, owner: str, now: datetime, lease: float, limit: int) -> list[Delivery]:
        due = " AND #n <= :now AND (attribute_not_exists(#l) OR #l <= :now)"
        candidates = self._scan(PENDING, due + " AND attribute_exists(#n)", {":now": _number(now)})
        candidates.sort(key=lambda d: (d.next_attempt_at, d.id))
        taken = []
        for candidate in candidates[:limit]:
            answer = self._update(
                candidate.id,
                "SET #o = :owner, #l = :until, last_attempt = :now ADD attempts :one",
                "#s = :pending AND #n <= :now AND (attribute_not_exists(#l) OR #l <= :now)",
                {
                    ":owner": owner,
                    ":until": _number(now) + Decimal(str(lease)),
                    ":now": _number(now),
                    ":one": 1,
                    ":pending": PENDING,
                },
                ReturnValues="ALL_NEW",
            )
            if answer is not None:
                from .dynamo import _load

                taken.append(_delivery(_load(answer["Attributes"])))
        return taken

    def complete_delivery(self, delivery_id: str, owner: str) -> bool:
        try:
            self._call(
                self.client.delete_item,
                TableName=self.state_table,
                Key=self._dump({"key": DELIVERY + delivery_id}),
                ConditionExpression="#o = :owner AND #s = :pending",
                ExpressionAttributeNames={"#o": "owner", "#s": "state"},
                ExpressionAttributeValues=self._dump({":owner": owner, ":pending": PENDING}),
            )
        except botocore.exceptions.ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def retry_delivery(self, delivery_id: str, owner: str, next_attempt_at: datetime, error: str) -> bool:
        answer = self._update(
            delivery_id,
            "SET #n = :next, last_error = :error REMOVE #o, #l",
            "#o = :owner AND #s = :pending",
            {
                ":next": _number(next_attempt_at),
                ":error": short_error(error),
                ":owner": owner,
                ":pending": PENDING,
            },
        )
        return answer is not None

    def fail_delivery(self, delivery_id: str, owner: str, error: str) -> bool:
        answer = self._update(
            delivery_id,
            "SET #s = :failed, last_error = :error REMOVE #o, #l",
            "#o = :owner AND #s = :pending",
            {":failed": FAILED, ":error": short_error(error), ":owner": owner, ":pending": PENDING},
        )
        return answer is not None

    def list_deliveries(self, state: str, limit: int) -> list[Delivery]:
        found = self._scan(state)
        return sorted(found, key=lambda d: (d.created, d.id), reverse=True)[:limit]

    def count_deliveries(self, state: str) -> int:
        return len(self._scan(state))

    def redeliver(self, delivery_id: str, now: datetime) -> bool:
        answer = self._update(
            delivery_id,
            "SET #s = :pending, #n = :now, attempts = :zero REMOVE #o, #l",
            "attribute_exists(#k) AND (#s = :failed OR attribute_not_exists(#l) OR #l <= :now)",
            {":pending": PENDING, ":failed": FAILED, ":now": _number(now), ":zero": 0},
        )
        return answer is not None
