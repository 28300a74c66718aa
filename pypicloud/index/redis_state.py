"""Signed URLs, local projects, shared counters and the intent log of the Redis index,
mixed into :class:`pypicloud.index.redis.RedisIndex`.

Keys (under ``db.prefix``): ``url:<storage key>`` (a cached signed URL, expiring by
itself), ``local-projects``, ``counter:<name>``, ``intents`` and ``repair-lock``; see
the key list in :mod:`pypicloud.index.redis`.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import redis

from .base import Intent

# How long the repair lock outlives a process that died holding it.
REPAIR_LOCK_SECONDS = 600
# Deletes the lock only if it is still ours (it may have expired and been taken).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class RedisState:
    """``get_url``/``set_url``, ``mark_local``/``was_local``, ``counter``/``incr_counter``
    and the intent log (``begin_intent``, ``end_intent``, ``open_intents``, ``repair_lock``)."""

    if TYPE_CHECKING:
        client: Any  # a redis.Redis

        def _k(self, *parts: str) -> str: ...

        def _call(self, fn: Callable[[], Any]) -> Any: ...

    def get_url(self, key: str) -> tuple[str, datetime] | None:
        value = self._call(lambda: self.client.get(self._k("url", key)))
        if value is None:
            return None
        data = json.loads(value)
        return data["url"], datetime.fromisoformat(data["expires_at"])

    def set_url(self, key: str, url: str, expires_at: datetime) -> None:
        ttl = int((expires_at - datetime.now(UTC)).total_seconds())
        if ttl <= 0:
            return
        value = json.dumps({"url": url, "expires_at": expires_at.astimezone(UTC).isoformat()})
        self._call(lambda: self.client.set(self._k("url", key), value, ex=ttl))

    def mark_local(self, project: str) -> None:
        # Not one of the data keys: a rebuild (replace_all) keeps it.
        self._call(lambda: self.client.sadd(self._k("local-projects"), project))

    def was_local(self, project: str) -> bool:
        return bool(self._call(lambda: self.client.sismember(self._k("local-projects"), project)))

    def counter(self, name: str) -> int:
        value = self._call(lambda: self.client.get(self._k("counter", name)))
        return int(value) if value is not None else 0

    def incr_counter(self, name: str, amount: int = 1, ttl: int | None = None) -> int:
        def run():
            with self.client.pipeline(transaction=True) as pipe:
                pipe.incrby(self._k("counter", name), amount)
                if ttl is not None:
                    pipe.expire(self._k("counter", name), ttl)
                else:
                    pipe.persist(self._k("counter", name))
                return pipe.execute()[0]

        return int(self._call(run))

    # Intent log ---------------------------------------------------------
    def begin_intent(self, op: str, project: str, filename: str) -> str | None:
        intent_id = uuid.uuid4().hex
        value = json.dumps(
            {
                "op": op,
                "project": project,
                "filename": filename,
                "created": datetime.now(UTC).isoformat(),
            }
        )
        self._call(lambda: self.client.hset(self._k("intents"), intent_id, value))
        return intent_id

    def end_intent(self, intent_id: str) -> None:
        self._call(lambda: self.client.hdel(self._k("intents"), intent_id))

    def open_intents(self, older_than: datetime) -> list[Intent]:
        raw = self._call(lambda: self.client.hgetall(self._k("intents")))
        found = []
        for key, value in raw.items():
            data = json.loads(value)
            created = datetime.fromisoformat(data["created"])
            if created <= older_than:
                found.append(
                    Intent(
                        id=key.decode(),
                        op=data["op"],
                        project=data["project"],
                        filename=data["filename"],
                        created=created,
                    )
                )
        return sorted(found, key=lambda i: (i.created, i.id))

    @contextlib.contextmanager
    def repair_lock(self) -> Iterator[bool]:
        """A key set with NX and an expiry, so a process killed while holding it
        blocks the others for REPAIR_LOCK_SECONDS at most."""
        token = uuid.uuid4().hex
        key = self._k("repair-lock")
        got = bool(self._call(lambda: self.client.set(key, token, nx=True, ex=REPAIR_LOCK_SECONDS)))
        try:
            yield got
        finally:
            if got:
                try:
                    self.client.eval(_RELEASE, 1, key, token)
                except redis.RedisError:
                    pass  # it expires by itself
