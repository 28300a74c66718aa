"""The webhook delivery queue of tests/fakes.py's in-memory index (a mixin of MemoryIndex).

Deliveries live in a dict on the shared ``IndexStore``, so several MemoryIndex
instances over one store share one queue, as processes share a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pypicloud.index.webhook_queue import FAILED, PENDING, Delivery, short_error


class MemoryWebhookQueue:
    store: object  # the IndexStore (its ``lock`` guards every change)

    def _deliveries(self) -> dict[str, Delivery]:
        return self.store.__dict__.setdefault("webhook_deliveries", {})

    def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        with self.store.lock:
            for delivery in deliveries:
                self._deliveries()[delivery.id] = delivery

    def claim_deliveries(self, owner: str, now: datetime, lease: float, limit: int) -> list[Delivery]:
        with self.store.lock:
            due = sorted(
                (
                    d
                    for d in self._deliveries().values()
                    if d.state == PENDING
                    and d.next_attempt_at <= now
                    and (d.lease_until is None or d.lease_until <= now)
                ),
                key=lambda d: (d.next_attempt_at, d.id),
            )[:limit]
            taken = [
                d.replace(
                    owner=owner,
                    lease_until=now + timedelta(seconds=lease),
                    last_attempt_at=now,
                    attempts=d.attempts + 1,
                )
                for d in due
            ]
            for delivery in taken:
                self._deliveries()[delivery.id] = delivery
            return taken

    def _held(self, delivery_id: str, owner: str) -> Delivery | None:
        delivery = self._deliveries().get(delivery_id)
        if delivery is None or delivery.owner != owner or delivery.state != PENDING:
            return None
        return delivery

    def complete_delivery(self, delivery_id: str, owner: str) -> bool:
        with self.store.lock:
            if self._held(delivery_id, owner) is None:
                return False
            del self._deliveries()[delivery_id]
            return True

    def retry_delivery(self, delivery_id: str, owner: str, next_attempt_at: datetime, error: str) -> bool:
        with self.store.lock:
            delivery = self._held(delivery_id, owner)
            if delivery is None:
                return False
            self._deliveries()[delivery_id] = delivery.replace(
                next_attempt_at=next_attempt_at, last_error=short_error(error), owner=None, lease_until=None
            )
            return True

    def fail_delivery(self, delivery_id: str, owner: str, error: str) -> bool:
        with self.store.lock:
            delivery = self._held(delivery_id, owner)
            if delivery is None:
                return False
            self._deliveries()[delivery_id] = delivery.replace(
                state=FAILED, last_error=short_error(error), owner=None, lease_until=None
            )
            return True

    def list_deliveries(self, state: str, limit: int) -> list[Delivery]:
        with self.store.lock:
            found = [d for d in self._deliveries().values() if d.state == state]
        return sorted(found, key=lambda d: (d.created, d.id), reverse=True)[:limit]

    def count_deliveries(self, state: str) -> int:
        with self.store.lock:
            return sum(1 for d in self._deliveries().values() if d.state == state)

    def redeliver(self, delivery_id: str, now: datetime) -> bool:
        with self.store.lock:
            delivery = self._deliveries().get(delivery_id)
            if delivery is None:
                return False
            if delivery.state == PENDING and delivery.lease_until is not None and delivery.lease_until > now:
                return False
            self._deliveries()[delivery_id] = delivery.replace(
                state=PENDING, next_attempt_at=now, attempts=0, owner=None, lease_until=None
            )
            return True
