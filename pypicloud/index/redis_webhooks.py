"""The webhook delivery queue of the Redis index.

Keys (under the index's ``db.prefix``):

- ``webhook:<id>``: a hash, one delivery's fields
- ``webhooks:due``: sorted set, id -> when it is due (pending, not claimed)
- ``webhooks:leased``: sorted set, id -> when its claim ends
- ``webhooks:failed``: sorted set, id -> when it was created

Every change that must be atomic (a claim, settling a claim, a redelivery) is
one Lua script, so Redis runs it without any other command in between.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .webhook_queue import FAILED, PENDING, Delivery, short_error

# Claims lapsed back to due, then the earliest due taken (ZRANGEBYSCORE orders by time, then id).
_CLAIM = """
local now = tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], redis.call('HGET', ARGV[5] .. id, 'next_ts') or now, id)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do
  local key = ARGV[5] .. id
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[2], id)
  redis.call('HSET', key, 'owner', ARGV[3], 'lease_until', ARGV[7], 'last_attempt_at', ARGV[6])
  redis.call('HINCRBY', key, 'attempts', 1)
end
return ids
"""

# KEYS: item, leased, due, failed. ARGV: id, owner, mode, score, next_attempt_at, error.
_SETTLE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] or redis.call('HGET', KEYS[1], 'state') ~= 'pending' then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[3] == 'complete' then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
redis.call('HSET', KEYS[1], 'last_error', ARGV[6])
if ARGV[3] == 'retry' then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
  redis.call('HSET', KEYS[1], 'next_ts', ARGV[4], 'next_attempt_at', ARGV[5])
else
  redis.call('ZADD', KEYS[4], redis.call('HGET', KEYS[1], 'created_ts'), ARGV[1])
  redis.call('HSET', KEYS[1], 'state', 'failed')
end
return 1
"""

# KEYS: item, due, leased, failed. ARGV: id, now (score), now (ISO).
_REDELIVER = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local lease = redis.call('ZSCORE', KEYS[3], ARGV[1])
if lease and tonumber(lease) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'pending', 'attempts', 0, 'next_ts', ARGV[2], 'next_attempt_at', ARGV[3])
redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
return 1
"""

_TIMES = ("created", "next_attempt_at", "last_attempt_at", "lease_until")


def _score(when: datetime) -> float:
    return when.timestamp()


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def _fields(delivery: Delivery) -> dict[str, str | int | float]:
    fields: dict[str, str | int | float] = {
        "id": delivery.id,
        "webhook": delivery.webhook,
        "action": delivery.action,
        "body": delivery.body,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "created_ts": _score(delivery.created),
        "next_ts": _score(delivery.next_attempt_at),
    }
    for name in _TIMES:
        value = getattr(delivery, name)
        if value is not None:
            fields[name] = _iso(value)
    for name in ("last_error", "owner"):
        if getattr(delivery, name) is not None:
            fields[name] = getattr(delivery, name)
    return fields


def _delivery(raw: dict[bytes, bytes]) -> Delivery:
    data = {k.decode(): v.decode() for k, v in raw.items()}
    times = {n: datetime.fromisoformat(data[n]) if data.get(n) else None for n in _TIMES}
    return Delivery(
        id=data["id"],
        webhook=data["webhook"],
        action=data["action"],
        body=data["body"],
        state=data["state"],
        attempts=int(data["attempts"]),
        last_error=data.get("last_error"),
        owner=data.get("owner"),
        **times,  # type: ignore[arg-type]
    )


class RedisWebhookQueue:
    """Mixin of :class:`pypicloud.index.redis.RedisIndex` (uses its client, ``_k`` and ``_call``)."""

    if TYPE_CHECKING:
        client: Any

        def _k(self, *parts: str) -> str: ...

        def _call(self, fn: Callable[[], Any]) -> Any: ...

    def _queue_keys(self) -> tuple[str, str, str]:
        return self._k("webhooks", "due"), self._k("webhooks", "leased"), self._k("webhooks", "failed")

    def _load_deliveries(self, ids: Sequence[bytes | str]) -> list[Delivery]:
        def read():
            with self.client.pipeline(transaction=False) as pipe:
                for delivery_id in ids:
                    name = delivery_id.decode() if isinstance(delivery_id, bytes) else delivery_id
                    pipe.hgetall(self._k("webhook", name))
                return pipe.execute()

        return [_delivery(raw) for raw in self._call(read) if raw]

    def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        due, _, _ = self._queue_keys()

        def write():
            with self.client.pipeline(transaction=True) as pipe:
                for delivery in deliveries:
                    pipe.hset(self._k("webhook", delivery.id), mapping=_fields(delivery))
                    pipe.zadd(due, {delivery.id: _score(delivery.next_attempt_at)})
                pipe.execute()

        if deliveries:
            self._call(write)

    def claim_deliveries(self, owner: str, now: datetime, lease: float, limit: int) -> list[Delivery]:
        due, leased, _ = self._queue_keys()
        until = now.timestamp() + lease
        args = (now.timestamp(), until, owner, limit, self._k("webhook", ""), _iso(now))
        until_iso = _iso(datetime.fromtimestamp(until, UTC))
        ids = self._call(lambda: self.client.eval(_CLAIM, 2, due, leased, *args, until_iso))
        taken = [d for d in self._load_deliveries(ids) if d.owner == owner]
        return sorted(taken, key=lambda d: (d.next_attempt_at, d.id))

    def _settle(self, delivery_id: str, owner: str, mode: str, when: datetime | None, error: str) -> bool:
        due, leased, failed = self._queue_keys()
        score = _score(when) if when is not None else 0
        iso = _iso(when) if when is not None else ""
        keys = (self._k("webhook", delivery_id), leased, due, failed)
        args = (delivery_id, owner, mode, score, iso, short_error(error) or "")
        return bool(self._call(lambda: self.client.eval(_SETTLE, 4, *keys, *args)))

    def complete_delivery(self, delivery_id: str, owner: str) -> bool:
        return self._settle(delivery_id, owner, "complete", None, "")

    def retry_delivery(self, delivery_id: str, owner: str, next_attempt_at: datetime, error: str) -> bool:
        return self._settle(delivery_id, owner, "retry", next_attempt_at, error)

    def fail_delivery(self, delivery_id: str, owner: str, error: str) -> bool:
        return self._settle(delivery_id, owner, "fail", None, error)

    def list_deliveries(self, state: str, limit: int) -> list[Delivery]:
        due, leased, failed = self._queue_keys()
        if state == FAILED:
            ids = self._call(lambda: self.client.zrevrange(failed, 0, max(limit - 1, 0)))
            return self._load_deliveries(ids)[:limit]
        if state != PENDING:
            return []
        ids = self._call(lambda: self.client.zrange(due, 0, -1) + self.client.zrange(leased, 0, -1))
        found = [d for d in self._load_deliveries(ids) if d.state == PENDING]
        return sorted(found, key=lambda d: (d.created, d.id), reverse=True)[:limit]

    def count_deliveries(self, state: str) -> int:
        due, leased, failed = self._queue_keys()
        if state == FAILED:
            return int(self._call(lambda: self.client.zcard(failed)))
        if state != PENDING:
            return 0
        return int(self._call(lambda: self.client.zcard(due) + self.client.zcard(leased)))

    def redeliver(self, delivery_id: str, now: datetime) -> bool:
        due, leased, failed = self._queue_keys()
        keys = (self._k("webhook", delivery_id), due, leased, failed)
        return bool(
            self._call(lambda: self.client.eval(_REDELIVER, 4, *keys, delivery_id, _score(now), _iso(now)))
        )
