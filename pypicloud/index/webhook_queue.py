"""The webhook delivery queue: part of the metadata index contract (docs/webhooks.md).

Every process of a deployment shares the index, so the queue lives there: it
survives a restart, and a delivery taken by one process (a *claim*, with a
lease) is not taken by another while the lease runs. A delivery that is never
settled (its process was killed) becomes claimable again once its lease ends.

States: ``pending`` (waiting for its next attempt, or claimed by a process that
is sending it) and ``failed`` (out of attempts; kept for the admin UI until it
is redelivered). A delivered delivery is removed from the queue.

Times are UTC datetimes; every method that depends on the time takes ``now``
so that callers (and the contract tests) decide what the time is.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

PENDING = "pending"
FAILED = "failed"
STATES = (PENDING, FAILED)
# The longest last error kept (a receiver's answer can be long).
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Delivery:
    """One event to be POSTed to one webhook.

    ``body`` is the exact JSON text sent on every attempt (the signature is
    computed over it at send time, with the webhook's current secret);
    ``attempts`` counts the attempts begun (a claim begins one);
    ``owner`` and ``lease_until`` are set while a process holds the claim.
    """

    id: str
    webhook: str
    action: str
    body: str
    created: datetime
    next_attempt_at: datetime
    state: str = PENDING
    attempts: int = 0
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    owner: str | None = None
    lease_until: datetime | None = None

    def replace(self, **changes: Any) -> Delivery:
        return replace(self, **changes)


def short_error(error: str | None) -> str | None:
    """``error`` cut to :data:`MAX_ERROR_CHARS` (what the backends store)."""
    if error is None:
        return None
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"


class WebhookQueue(abc.ABC):
    """The queue's methods, which every :class:`~pypicloud.index.base.MetadataIndex` implements.

    Implementations must be safe to call from many threads and from many
    processes sharing one index: :meth:`claim_deliveries` is the one place
    where two callers compete, and it must hand each delivery to one of them.
    """

    @abc.abstractmethod
    def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Store new ``pending`` deliveries (ids are new and unique), durably, before returning."""

    @abc.abstractmethod
    def claim_deliveries(self, owner: str, now: datetime, lease: float, limit: int) -> list[Delivery]:
        """Take up to ``limit`` deliveries that are due, for ``lease`` seconds, atomically.

        Due: ``pending``, ``next_attempt_at <= now`` and not claimed (or claimed
        with a lease that ended at or before ``now``). Each one taken gets
        ``owner``, ``lease_until = now + lease``, ``last_attempt_at = now`` and
        one more attempt; they are returned so changed, earliest due first.
        Two callers (threads or processes) never both take a delivery while
        its lease runs.
        """

    @abc.abstractmethod
    def complete_delivery(self, delivery_id: str, owner: str) -> bool:
        """The delivery was received: remove it. False (and nothing changes) when
        ``owner`` no longer holds it (the lease ended and another took it)."""

    @abc.abstractmethod
    def retry_delivery(self, delivery_id: str, owner: str, next_attempt_at: datetime, error: str) -> bool:
        """The attempt failed: release the claim, due again at ``next_attempt_at``,
        remembering ``error`` (cut to :data:`MAX_ERROR_CHARS`). False when ``owner``
        no longer holds it."""

    @abc.abstractmethod
    def fail_delivery(self, delivery_id: str, owner: str, error: str) -> bool:
        """The last attempt failed: release the claim and mark it ``failed`` with
        ``error``. False when ``owner`` no longer holds it."""

    @abc.abstractmethod
    def list_deliveries(self, state: str, limit: int) -> list[Delivery]:
        """Up to ``limit`` deliveries in ``state`` (``pending`` or ``failed``), newest first."""

    @abc.abstractmethod
    def count_deliveries(self, state: str) -> int:
        """How many deliveries are in ``state``."""

    @abc.abstractmethod
    def redeliver(self, delivery_id: str, now: datetime) -> bool:
        """Send again soon: a ``failed`` delivery, or a ``pending`` one not claimed
        right now, becomes ``pending``, due at ``now``, with its attempts counted
        from zero. False when there is no such delivery or it is claimed."""
