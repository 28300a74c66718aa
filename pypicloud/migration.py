"""Migration policy: what ``ppc-migrate`` copies, and what it does when the destination differs.

The rules, apart from the command line that reports them:

- an object missing at the destination is copied, streamed through a size and
  sha256 check (:class:`_VerifyingReader`), so damaged bytes are never stored;
- the same bytes (size and sha256) there: left alone, its metadata brought up to
  date when it differs;
- other bytes under the same name: a *conflict*, left untouched unless the run
  may overwrite;
- written by someone else while we copy: decided again, once.

Every decision is an :class:`Outcome`; :meth:`Migration.run_one` never raises.
:func:`run_concurrently` runs many, and stops starting new ones after a run of
failures (the destination is probably down).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import BinaryIO, cast

from .errors import BadSource, StorageConflict
from .hashing import CHUNK, HashingReader, sha256_of
from .models import StoredObject
from .storage.base import Storage

_SHA256 = frozenset("0123456789abcdef")


class _VerifyingReader(HashingReader):
    """Passes a stream through, checking its size and sha256 when it ends.

    Raising at the end of the stream (before the destination's put returns)
    makes the put abort, so a file with unexpected bytes is never stored.
    """

    def __init__(self, stream: BinaryIO, size: int, sha256: str | None):
        super().__init__(stream)
        self._size = size
        self._expected = sha256
        self.finished = False

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:  # "everything": still read (and check) in chunks
            parts = []
            while block := self.read(CHUNK):
                parts.append(block)
            return b"".join(parts)
        if size == 0:
            return b""
        data = super().read(size)
        if not data:
            self._check()
            return data
        if self.count > self._size:
            raise BadSource(
                f"the source holds more than the {self._size} bytes it lists (changed while copying?)"
            )
        return data

    def _check(self) -> None:
        if self.finished:
            return
        if self.count != self._size:
            raise BadSource(
                f"read {self.count} bytes, the source lists {self._size} (changed while copying?)"
            )
        if self._expected and self.hexdigest() != self._expected:
            raise BadSource(
                "the bytes do not match the sha256 in the source's metadata (the source file is damaged)"
            )
        self.finished = True

    def drain(self) -> None:
        """Read what the consumer left and check it (raises BadSource on a mismatch)."""
        super().drain()
        self._check()

    @property
    def sha256(self) -> str:
        return self.hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What happened to one source object."""

    kind: str  # copied | replaced | present | updated | conflict | failed (+ would-* in a dry run)
    obj: StoredObject
    detail: str = ""


def _listed_sha256(obj: StoredObject) -> str | None:
    value = (obj.metadata.get("sha256") or "").strip().lower()
    return value if len(value) == 64 and set(value) <= _SHA256 else None


def _hash_stored(storage: Storage, obj: StoredObject) -> str:
    with storage.open(obj.project, obj.filename) as stream:
        return sha256_of(stream)


def _name(obj: StoredObject) -> str:
    return f"{obj.project}/{obj.filename}"


class Migration:
    """Copies objects from ``source`` to ``dest`` (both Storage backends)."""

    def __init__(
        self,
        source: Storage,
        dest: Storage,
        existing: dict[tuple[str, str], StoredObject],
        *,
        overwrite: bool = False,
        dry_run: bool = False,
    ):
        self.source = source
        self.dest = dest
        self.existing = existing
        self.overwrite = overwrite
        self.dry_run = dry_run
        self._lock = threading.Lock()

    def same_bytes(self, src: StoredObject, dst: StoredObject) -> bool:
        """Same size and sha256 (taken from metadata, or hashed when metadata has none)."""
        if src.size != dst.size:
            return False
        ours = _listed_sha256(src) or _hash_stored(self.source, src)
        theirs = _listed_sha256(dst) or _hash_stored(self.dest, dst)
        return ours == theirs

    def run_one(self, obj: StoredObject) -> Outcome:
        """Bring one object to the destination. Never raises (failures are outcomes)."""
        try:
            return self._run_one(obj)
        except Exception as exc:  # reported per file; the run goes on
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            return Outcome("failed", obj, message)

    def _run_one(self, obj: StoredObject, retry: bool = True) -> Outcome:
        there = self.existing.get((obj.project, obj.filename))
        if there is None:
            if self.dry_run:
                return Outcome("would-copy", obj)
            try:
                self._copy(obj, overwrite=False)
            except StorageConflict:
                # Written by someone else since we listed the destination: decide again.
                there = self.dest.stat(obj.project, obj.filename)
                if there is None or not retry:
                    raise
                with self._lock:
                    self.existing[(obj.project, obj.filename)] = there
                return self._run_one(obj, retry=False)
            return Outcome("copied", obj)
        if self.same_bytes(obj, there):
            if there.metadata == obj.metadata:
                return Outcome("present", obj)
            if self.dry_run:
                return Outcome("would-update", obj, "metadata differs")
            self.dest.update_metadata(obj.project, obj.filename, dict(obj.metadata))
            return Outcome("updated", obj, "metadata brought up to date")
        why = (
            f"the destination holds other bytes ({there.size} bytes, source {obj.size})"
            if there.size != obj.size
            else "the destination holds other bytes (sha256 differs)"
        )
        if not self.overwrite:
            return Outcome("conflict", obj, why)
        if self.dry_run:
            return Outcome("would-replace", obj, why)
        self._copy(obj, overwrite=True)
        return Outcome("replaced", obj, why)

    def _copy(self, obj: StoredObject, *, overwrite: bool) -> None:
        with self.source.open(obj.project, obj.filename) as stream:
            reader = _VerifyingReader(stream, obj.size, _listed_sha256(obj))
            # The destination reads it like a file (read(size) until b"").
            self.dest.put(
                obj.project, obj.filename, cast(BinaryIO, reader), dict(obj.metadata), overwrite=overwrite
            )
            try:
                reader.drain()  # a backend that stopped reading early: check the rest too
            except BadSource:
                if not overwrite:
                    self.dest.delete(obj.project, obj.filename)
                raise


def identity(storage: Storage) -> tuple[object, ...] | None:
    """What makes two storages the same place (None when we cannot tell)."""
    return storage.location()


def same_place(a: Storage, b: Storage) -> bool:
    """True when ``a`` and ``b`` are known to be the same storage (copying would do nothing)."""
    place = identity(a)
    return place is not None and place == identity(b)


def run_concurrently(
    migration: Migration,
    objects: list[StoredObject],
    jobs: int,
    on_outcome: Callable[[Outcome], None],
    *,
    max_failures: int,
    on_give_up: Callable[[int], None],
) -> bool:
    """Run every object through ``migration`` on ``jobs`` threads; False when it stopped early.

    Outcomes are handed to ``on_outcome`` on this thread, in name order within each
    batch. After ``max_failures`` failures in a row no new copy starts
    (``on_give_up`` is told how many).
    """
    failures_in_a_row = 0
    todo: Iterable[StoredObject] = iter(objects)
    pending: set[Future[Outcome]] = set()
    stopped = False
    with ThreadPoolExecutor(jobs, thread_name_prefix="ppc-migrate") as pool:
        try:
            while True:
                while not stopped and len(pending) < jobs * 2:
                    obj = next(todo, None)  # type: ignore[call-overload]
                    if obj is None:
                        break
                    pending.add(pool.submit(migration.run_one, obj))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: _name(f.result().obj)):
                    outcome = future.result()
                    on_outcome(outcome)
                    failures_in_a_row = failures_in_a_row + 1 if outcome.kind == "failed" else 0
                if failures_in_a_row >= max_failures and not stopped:
                    stopped = True
                    on_give_up(failures_in_a_row)
        except KeyboardInterrupt:
            for future in pending:
                future.cancel()
            raise
    return not stopped
