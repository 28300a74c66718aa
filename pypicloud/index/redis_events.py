"""The audit log of the Redis index, mixed into :class:`pypicloud.index.redis.RedisIndex`.

Keys (under ``db.prefix``; none is touched by a rebuild):

- ``events:data``: hash event id -> the event as JSON
- ``events:all``: sorted set of every event id, scored by its time (microseconds)
- ``events:action:<name>``: the same, per action and per dotted action prefix
  (``access.``, ``access.user.``, ``access.user.create``)
- ``events:actor:<actor>`` and ``events:project:<project>``: the same, per actor and project

A query walks the smallest sorted set its filters name, newest first, between
the scores its time filters give, in chunks of :data:`CHUNK`, and checks the
other filters on each event; one call reads at most :data:`MAX_SCAN` entries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..events import Event
from .eventlog import EventQuery, action_prefixes, event_from_text, event_to_text, micros

CHUNK = 200
MAX_SCAN = 20_000


class RedisEventLog:
    """``add_event``, ``list_events`` and ``prune_events`` in sorted sets."""

    if TYPE_CHECKING:
        client: Any  # a redis.Redis (its stubs type replies too loosely to help here)

        def _k(self, *parts: str) -> str: ...

        def _call(self, fn: Callable[[], Any]) -> Any: ...

    def _event_sets(self, event: Event) -> list[str]:
        keys = [self._k("events", "all")]
        keys += [self._k("events", "action", name) for name in action_prefixes(event.action)]
        if event.actor is not None:
            keys.append(self._k("events", "actor", event.actor))
        if event.project is not None:
            keys.append(self._k("events", "project", event.project))
        return keys

    def add_event(self, event: Event) -> None:
        score = micros(event.at)

        def write() -> None:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(self._k("events", "data"), event.id, event_to_text(event))
                for key in self._event_sets(event):
                    pipe.zadd(key, {event.id: score})
                pipe.execute()

        self._call(write)

    def _query_set(self, query: EventQuery) -> str:
        """The smallest sorted set that holds every event the query can match."""
        keys = [self._k("events", "all")]
        if query.action:
            keys.append(self._k("events", "action", query.action))
        if query.actor is not None:
            keys.append(self._k("events", "actor", query.actor))
        if query.project is not None:
            keys.append(self._k("events", "project", query.project))
        if len(keys) == 1:
            return keys[0]
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys[1:]:
                pipe.zcard(key)
            sizes = pipe.execute()
        return min(zip(sizes, keys[1:], strict=True))[1]

    def list_events(self, query: EventQuery) -> list[Event]:
        return list(self._call(lambda: self._list_events(query)))

    def _list_events(self, query: EventQuery) -> list[Event]:
        low: int | str = micros(query.since) if query.since is not None else "-inf"
        high: int | str = f"({micros(query.until)}" if query.until is not None else "+inf"
        skip_from: bytes | None = None  # on the cursor's own score: members from it on are not older
        cursor_score: float | None = None
        if query.before is not None:
            cursor_score = self.client.zscore(self._k("events", "all"), query.before)
            if cursor_score is None:
                return []
            skip_from = query.before.encode()
            if query.until is None or int(cursor_score) < micros(query.until):
                high = int(cursor_score)
        key = self._query_set(query)
        found: list[Event] = []
        offset = 0
        while len(found) < query.limit and offset < MAX_SCAN:
            entries = self.client.zrevrangebyscore(key, high, low, start=offset, num=CHUNK, withscores=True)
            if not entries:
                break
            offset += len(entries)
            ids = [
                member
                for member, score in entries
                if not (skip_from is not None and score == cursor_score and member >= skip_from)
            ]
            texts = self.client.hmget(self._k("events", "data"), ids) if ids else []
            for text in texts:
                if text is None:
                    continue  # pruned meanwhile
                event = event_from_text(text)
                if query.matches(event):
                    found.append(event)
                    if len(found) == query.limit:
                        break
        return found

    def prune_events(self, older_than: datetime) -> int:
        cutoff = f"({micros(older_than)}"

        def prune() -> int:
            removed = 0
            while True:
                ids = self.client.zrangebyscore(self._k("events", "all"), "-inf", cutoff, start=0, num=CHUNK)
                if not ids:
                    return removed
                texts = self.client.hmget(self._k("events", "data"), ids)
                with self.client.pipeline(transaction=True) as pipe:
                    for member, text in zip(ids, texts, strict=True):
                        keys = [self._k("events", "all")]
                        if text is not None:
                            keys = self._event_sets(event_from_text(text))
                            removed += 1
                        for key in keys:
                            pipe.zrem(key, member)
                    pipe.hdel(self._k("events", "data"), *ids)
                    pipe.execute()

        return int(self._call(prune))
