"""A reader that counts and hashes the bytes passing through it.

Wrap a stream in :class:`HashingReader` and hand the wrapper to whatever consumes
the stream (a storage's ``put``, a copy loop): when the consumer is done, the
wrapper knows how many bytes went by and their digests, without a second read.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

CHUNK = 1024 * 1024


class HashingReader:
    """A read-only, non-seekable view of ``stream`` that counts and hashes what is read.

    ``algorithms`` names :mod:`hashlib` digests (none: it only counts).
    """

    def __init__(self, stream: BinaryIO, algorithms: tuple[str, ...] = ("sha256",)):
        self._stream = stream
        self._digests = {name: hashlib.new(name) for name in algorithms}
        self.count = 0

    def read(self, size: int | None = -1) -> bytes:
        data = self._stream.read(-1 if size is None else size)
        self.count += len(data)
        for digest in self._digests.values():
            digest.update(data)
        return data

    def drain(self) -> None:
        """Read the rest of the stream in chunks (counting and hashing it)."""
        while self.read(CHUNK):
            pass

    def hexdigest(self, algorithm: str = "sha256") -> str:
        return self._digests[algorithm].hexdigest()


def sha256_of(stream: BinaryIO) -> str:
    """The sha256 of everything left in ``stream``, read in chunks."""
    reader = HashingReader(stream)
    reader.drain()
    return reader.hexdigest()
