"""The webhook delivery queue of the SQL index (table ``ppc_webhook_deliveries``).

A claim is one conditional UPDATE per candidate row, each in its own short
transaction: the row is taken only if it is still due and unclaimed when the
UPDATE runs. PostgreSQL (read committed) re-checks the condition on a row
another transaction just changed, InnoDB updates read the current row, SQLite
serialises writers: on all three, one caller's UPDATE matches and the other's
matches nothing. One row per transaction means no lock-order deadlocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .schema import webhook_deliveries as table
from .webhook_queue import FAILED, PENDING, Delivery, short_error

_FIELDS = (
    "id",
    "webhook",
    "action",
    "body",
    "state",
    "attempts",
    "created",
    "next_attempt_at",
    "last_attempt_at",
    "last_error",
    "owner",
    "lease_until",
)


def _delivery(row) -> Delivery:
    return Delivery(**{f: row._mapping[f] for f in _FIELDS})


def _unclaimed(now: datetime):
    return sa.or_(table.c.lease_until.is_(None), table.c.lease_until <= now)


class SQLWebhookQueue:
    """Mixin of :class:`pypicloud.index.sql.SQLIndex` (uses its ``_run``)."""

    if TYPE_CHECKING:

        def _run(self, fn: Callable[[Connection], Any]) -> Any:
            """SQLIndex._run: ``fn(conn)`` in one transaction."""

    def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        rows = [{f: getattr(d, f) for f in _FIELDS} for d in deliveries]
        if rows:
            self._run(lambda conn: conn.execute(table.insert(), rows))

    def claim_deliveries(self, owner: str, now: datetime, lease: float, limit: int) -> list[Delivery]:
        due = sa.and_(table.c.state == PENDING, table.c.next_attempt_at <= now, _unclaimed(now))
        candidates = self._run(
            lambda conn: (
                conn.execute(
                    sa.select(table.c.id)
                    .where(due)
                    .order_by(table.c.next_attempt_at, table.c.id)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
        )
        until = now + timedelta(seconds=lease)
        taken = []
        for delivery_id in candidates:
            claim = (
                table.update()
                .where(table.c.id == delivery_id, due)
                .values(owner=owner, lease_until=until, last_attempt_at=now, attempts=table.c.attempts + 1)
            )
            if self._changed(claim):
                taken.append(delivery_id)
        if not taken:
            return []
        rows = self._run(
            lambda conn: conn.execute(
                sa.select(table).where(table.c.id.in_(taken), table.c.owner == owner)
            ).all()
        )
        return sorted((_delivery(r) for r in rows), key=lambda d: (d.next_attempt_at, d.id))

    def _changed(self, statement) -> bool:
        """Run one UPDATE or DELETE in its own transaction: did it match a row?"""
        return bool(self._run(lambda conn: conn.execute(statement).rowcount))

    def _settle(self, delivery_id: str, owner: str, statement) -> bool:
        held = sa.and_(table.c.id == delivery_id, table.c.owner == owner, table.c.state == PENDING)
        return self._changed(statement.where(held))

    def complete_delivery(self, delivery_id: str, owner: str) -> bool:
        return self._settle(delivery_id, owner, table.delete())

    def retry_delivery(self, delivery_id: str, owner: str, next_attempt_at: datetime, error: str) -> bool:
        return self._settle(
            delivery_id,
            owner,
            table.update().values(
                next_attempt_at=next_attempt_at, last_error=short_error(error), owner=None, lease_until=None
            ),
        )

    def fail_delivery(self, delivery_id: str, owner: str, error: str) -> bool:
        return self._settle(
            delivery_id,
            owner,
            table.update().values(state=FAILED, last_error=short_error(error), owner=None, lease_until=None),
        )

    def list_deliveries(self, state: str, limit: int) -> list[Delivery]:
        rows = self._run(
            lambda conn: conn.execute(
                sa.select(table)
                .where(table.c.state == state)
                .order_by(table.c.created.desc(), table.c.id.desc())
                .limit(limit)
            ).all()
        )
        return [_delivery(r) for r in rows]

    def count_deliveries(self, state: str) -> int:
        return int(
            self._run(
                lambda conn: conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(table.c.state == state)
                ).scalar_one()
            )
        )

    def redeliver(self, delivery_id: str, now: datetime) -> bool:
        statement = (
            table.update()
            .where(
                table.c.id == delivery_id,
                sa.or_(table.c.state == FAILED, sa.and_(table.c.state == PENDING, _unclaimed(now))),
            )
            .values(state=PENDING, next_attempt_at=now, attempts=0, owner=None, lease_until=None)
        )
        return self._changed(statement)
