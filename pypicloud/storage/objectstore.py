"""Pieces shared by the object-store backends other than S3 (GCS, Azure Blob).

Key layout is S3's (see :mod:`pypicloud.storage.s3`)::

    <prefix>[<hash>/]<project>/<filename>

so a bucket or container filled by pypicloud 1.x keeps working, and
:class:`KeyLayout.parse` skips every name that does not fit it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import BinaryIO

from ..errors import InvalidUpload
from .base import ReadStream, check_name
from .s3 import key_hash

_HASH_SEGMENT = re.compile(r"^[0-9a-f]{4}$")


class KeyLayout:
    """Object names for ``(project, filename)`` under a prefix, with or without a hash segment."""

    def __init__(self, prefix: str = "", prepend_hash: bool = True):
        self.prefix = prefix or ""
        self.prepend_hash = prepend_hash

    def key(self, project: str, filename: str) -> str:
        check_name(project, "project name")
        check_name(filename)
        if self.prepend_hash:
            return f"{self.prefix}{key_hash(filename)}/{project}/{filename}"
        return f"{self.prefix}{project}/{filename}"

    def parse(self, key: str) -> tuple[str, str] | None:
        """``(project, filename)`` for one of our names, None for anything else."""
        if not key.startswith(self.prefix):
            return None
        parts = key[len(self.prefix):].split("/")
        digest = None
        if self.prepend_hash:
            if len(parts) != 3 or not _HASH_SEGMENT.match(parts[0]):
                return None
            digest, project, filename = parts
        elif len(parts) == 2:
            project, filename = parts
        else:
            return None
        try:
            check_name(project, "project name")
            check_name(filename)
        except InvalidUpload:
            return None
        if digest is not None and digest != key_hash(filename):
            return None
        return project, filename


def read_full(stream: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads; fewer only at EOF."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        block = stream.read(left)
        if not block:
            break
        parts.append(block)
        left -= len(block)
    return b"".join(parts)


class ChunkReader(ReadStream):
    """A file-like object over an iterator of byte chunks (a streamed download).

    ``wrap_error`` turns an exception raised while reading into the one to
    raise (BackendUnavailable for a lost connection), or returns None to let
    it through.
    """

    def __init__(self, chunks: Iterator[bytes] | None, closer=None, wrap_error=None):
        self._chunks = chunks
        self._buffer = b""
        self._closer = closer
        self._wrap_error = wrap_error
        self.closed = False

    def seekable(self) -> bool:
        return False

    def _next(self) -> bytes:
        try:
            return next(self._chunks, b"")
        except Exception as exc:
            wrapped = self._wrap_error(exc) if self._wrap_error else None
            if wrapped is None:
                raise
            raise wrapped from exc

    def read(self, size: int | None = -1) -> bytes:
        if self._chunks is None or self.closed:
            return b""
        if size is None or size < 0:
            parts = [self._buffer]
            self._buffer = b""
            while True:
                block = self._next()
                if not block:
                    break
                parts.append(block)
            return b"".join(parts)
        while len(self._buffer) < size:
            block = self._next()
            if not block:
                break
            self._buffer += block
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._buffer = b""
            if self._closer is not None:
                try:
                    self._closer()
                except Exception:  # best effort: the connection is dropped anyway
                    pass


def signed_until(expires_in: int) -> datetime:
    """When a URL signed now for ``expires_in`` seconds stops working (UTC, whole seconds)."""
    return datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=int(expires_in))

