"""The metadata index in Redis (``pypi.db = redis``), for shared deployments.

Keys (all under ``db.prefix``, default ``pypicloud:``, so several deployments
can share one Redis):

- ``file:<filename>``: the file's record as JSON
- ``files``: set of every filename
- ``project:<project>``: set of the project's filenames
- ``projects``: hash project -> JSON summary (display name, summary, last upload)
- ``generation``: the change counter (INCR); after every change the writer publishes
  the new value on the channel ``<prefix>generation@<db>``, which each process's
  listener (``push.py``) follows so that warm pages read the counter from memory
- ``url:<storage key>``: a cached signed URL as JSON, expiring by itself
- ``local-projects``: set of projects that ever had a file published here (kept by rebuilds)
- ``counter:<name>``: shared counters (failed logins, web session generations)
- ``intents``: hash id -> JSON of an unfinished write (the intent log of the
  write protocol, docs/architecture.md)
- ``repair-lock``: held (SET NX with a time limit) by the one process repairing
- ``events:*``: the audit log (redis_events.py)

Every write runs as a WATCH/MULTI transaction that also increments the counter,
so readers in any process see either the old or the new state.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

import redis

from ..errors import BackendUnavailable, ConfigError
from ..models import FileRecord, ProjectSummary
from .base import MetadataIndex
from .listeners import RedisListener, redis_channel
from .redis_events import RedisEventLog
from .redis_state import _RELEASE, REPAIR_LOCK_SECONDS, RedisState
from .redis_webhooks import RedisWebhookQueue

# The names this module held before it was split (tests and tools import them).
__all__ = ["REPAIR_LOCK_SECONDS", "_RELEASE", "RedisIndex"]

log = logging.getLogger(__name__)

_FIELDS = (
    "project",
    "name",
    "version",
    "filename",
    "size",
    "sha256",
    "md5",
    "requires_python",
    "summary",
    "uploader",
    "yanked",
    "yanked_reason",
    "metadata_sha256",
    "key",
    "storage_tag",
)


def _dump(record: FileRecord) -> str:
    data = {f: getattr(record, f) for f in _FIELDS}
    data["upload_time"] = record.upload_time.astimezone(UTC).isoformat()
    return json.dumps(data, separators=(",", ":"))


def _load(text: bytes | str) -> FileRecord:
    data = json.loads(text)
    data["upload_time"] = datetime.fromisoformat(data["upload_time"])
    return FileRecord(**data)


def _summary_of(records: list[FileRecord]) -> str | None:
    if not records:
        return None
    newest = max(records, key=lambda r: (r.upload_time, r.filename))
    return json.dumps(
        {
            "name": newest.name,
            "summary": newest.summary,
            "last_modified": newest.upload_time.astimezone(UTC).isoformat(),
        }
    )


class RedisIndex(RedisState, RedisEventLog, RedisWebhookQueue, MetadataIndex):
    """Metadata index in Redis."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "pypicloud:",
        client: redis.Redis | None = None,
        socket_timeout: float = 5.0,
        listen: bool = True,
    ):
        # One client: redis-py clients hold a thread-safe connection pool.
        self.client = client or redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=30,
        )
        self.prefix = prefix
        self._channel = redis_channel(self.client, prefix)
        self._publish_failed = False
        self._push: RedisListener | None = None
        if listen:
            kwargs = self.client.connection_pool.connection_kwargs
            server = (kwargs.get("host"), kwargs.get("port"), kwargs.get("path"), kwargs.get("db", 0))
            self._push = RedisListener((server, prefix), self.client, self._k("generation"), self._channel)

    @classmethod
    def from_settings(cls, settings) -> RedisIndex:
        url = settings.get_str("db.url") or "redis://127.0.0.1:6379/0"
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("db.url", url, "a redis:// or rediss:// URL when pypi.db = redis")
        index = cls(
            url,
            prefix=settings.get_str("db.prefix", "pypicloud:"),
            listen=settings.get_bool("db.listen", True),
        )
        try:
            index.client.ping()
        except redis.RedisError as exc:
            raise ConfigError("db.url", url, f"cannot reach Redis: {exc}") from None
        return index

    # Keys ---------------------------------------------------------------
    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _call(self, fn):
        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BackendUnavailable(f"The metadata index (Redis) is unavailable: {exc}") from None

    def _bump(self, pipe) -> None:
        """Queue the counter's increment: always the last command of a write."""
        pipe.incr(self._k("generation"))

    def _transact(self, txn, *watches: str):
        """Run ``txn`` as a WATCH/MULTI transaction; announce the counter it committed."""
        outcome: list = [None]

        def run(pipe):
            outcome[0] = txn(pipe)

        results = self._call(lambda: self.client.transaction(run, *watches))
        self._announce(results)
        return outcome[0]

    def _announce(self, results) -> None:
        """Tell every process the counter a transaction committed (it ended with the bump).

        PUBLISH runs after EXEC, not inside it: in the MULTI a refused PUBLISH (an ACL
        user without channel rights) would abort the write itself. The write has
        happened whatever becomes of the message; a message that never goes out is
        made good by the listeners' periodic check (push.py) within a second.
        """
        if not results:
            return  # nothing changed, nothing to tell
        value = int(results[-1])
        try:
            self.client.publish(self._channel, value)
        except redis.RedisError as exc:
            if not self._publish_failed:
                log.warning(
                    "cannot publish index changes on %s (%s): other processes see them within a second",
                    self._channel,
                    exc,
                )
            self._publish_failed = True
        if self._push is not None:
            self._push.announce(value)

    def _project_records(
        self, pipe, project: str, skip: str | None = None, extra: FileRecord | None = None
    ) -> list[FileRecord]:
        names = [n.decode() for n in pipe.smembers(self._k("project", project))]
        names = [n for n in names if n != skip and (extra is None or n != extra.filename)]
        values = pipe.mget([self._k("file", n) for n in names]) if names else []
        records = [_load(v) for v in values if v is not None]
        return records + ([extra] if extra is not None else [])

    def _write_summary(self, pipe, project: str, records: list[FileRecord]) -> None:
        summary = _summary_of(records)
        if summary is None:
            pipe.hdel(self._k("projects"), project)
        else:
            pipe.hset(self._k("projects"), project, summary)

    # Contract -----------------------------------------------------------
    def add(self, record: FileRecord) -> None:
        file_key = self._k("file", record.filename)

        def txn(pipe):
            old = pipe.get(file_key)
            old_project = _load(old).project if old is not None else None
            pipe.watch(self._k("project", record.project))
            records = self._project_records(pipe, record.project, extra=record)
            old_records = None
            if old_project and old_project != record.project:
                pipe.watch(self._k("project", old_project))
                old_records = self._project_records(pipe, old_project, skip=record.filename)
            pipe.multi()
            pipe.set(file_key, _dump(record))
            pipe.sadd(self._k("files"), record.filename)
            pipe.sadd(self._k("project", record.project), record.filename)
            self._write_summary(pipe, record.project, records)
            if old_records is not None:
                pipe.srem(self._k("project", old_project), record.filename)
                self._write_summary(pipe, old_project, old_records)
            self._bump(pipe)

        self._transact(txn, file_key)

    def get(self, filename: str) -> FileRecord | None:
        value = self._call(lambda: self.client.get(self._k("file", filename)))
        return _load(value) if value is not None else None

    def remove(self, filename: str) -> bool:
        file_key = self._k("file", filename)

        def txn(pipe):
            old = pipe.get(file_key)
            if old is None:
                pipe.multi()
                return False
            project = _load(old).project
            pipe.watch(self._k("project", project))
            records = self._project_records(pipe, project, skip=filename)
            pipe.multi()
            pipe.delete(file_key)
            pipe.srem(self._k("files"), filename)
            pipe.srem(self._k("project", project), filename)
            self._write_summary(pipe, project, records)
            self._bump(pipe)
            return True

        return self._transact(txn, file_key)

    def files(self, project: str) -> list[FileRecord]:
        def read():
            names = sorted(n.decode() for n in self.client.smembers(self._k("project", project)))
            if not names:
                return []
            values = self.client.mget([self._k("file", n) for n in names])
            return [_load(v) for v in values if v is not None]

        return self._call(read)

    def projects(self) -> list[ProjectSummary]:
        raw = self._call(lambda: self.client.hgetall(self._k("projects")))
        result = []
        for project, value in sorted(raw.items()):
            data = json.loads(value)
            result.append(
                ProjectSummary(
                    project=project.decode(),
                    name=data["name"],
                    summary=data["summary"],
                    last_modified=datetime.fromisoformat(data["last_modified"]),
                )
            )
        return result

    def set_yanked(self, filename: str, yanked: bool, reason: str | None = None) -> bool:
        file_key = self._k("file", filename)

        def txn(pipe):
            old = pipe.get(file_key)
            if old is None:
                pipe.multi()
                return False
            record = _load(old).replace(yanked=yanked, yanked_reason=reason if yanked else None)
            pipe.multi()
            pipe.set(file_key, _dump(record))
            self._bump(pipe)
            return True

        return self._transact(txn, file_key)

    def generation(self) -> int:
        push = self._push
        if push is not None:
            value = push.current()
            if value is not None:
                return value
        return int(self._call(lambda: self.client.get(self._k("generation"))) or 0)

    def all_records(self) -> Iterable[FileRecord]:
        def read():
            names = sorted(n.decode() for n in self.client.smembers(self._k("files")))
            records = []
            for start in range(0, len(names), 1000):
                chunk = names[start : start + 1000]
                values = self.client.mget([self._k("file", n) for n in chunk])
                records.extend(_load(v) for v in values if v is not None)
            return records

        return self._call(read)

    def _data_keys(self) -> list[bytes]:
        keys: list[bytes] = []
        for pattern in ("file:*", "project:*", "url:*"):
            keys.extend(self.client.scan_iter(match=self.prefix + pattern, count=1000))
        return keys + [self._k("files").encode(), self._k("projects").encode()]

    def replace_all(self, records: Iterable[FileRecord]) -> None:
        records = list(records)
        by_project: dict[str, list[FileRecord]] = {}
        for record in records:
            by_project.setdefault(record.project, []).append(record)

        def work():
            old_keys = self._data_keys()
            with self.client.pipeline(transaction=True) as pipe:
                for start in range(0, len(old_keys), 1000):
                    pipe.delete(*old_keys[start : start + 1000])
                for record in records:
                    pipe.set(self._k("file", record.filename), _dump(record))
                if records:
                    pipe.sadd(self._k("files"), *[r.filename for r in records])
                for project, group in by_project.items():
                    pipe.sadd(self._k("project", project), *[r.filename for r in group])
                    pipe.hset(self._k("projects"), project, _summary_of(group))
                self._bump(pipe)
                return pipe.execute()

        self._announce(self._call(work))

    def count(self) -> int:
        return int(self._call(lambda: self.client.scard(self._k("files"))))

    def check_health(self) -> None:
        self._call(self.client.ping)

    def close(self) -> None:
        push, self._push = self._push, None
        if push is not None:
            push.close()
        self.client.close()
