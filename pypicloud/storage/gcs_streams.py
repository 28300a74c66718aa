"""The streams of the GCS backend: a counting upload view and a ranged reader."""

from __future__ import annotations

from .objectstore import BodyReader, read_full

MB = 1024 * 1024


class _Counting:
    """A stream view with ``tell`` (resumable uploads ask for it) but no seek."""

    def __init__(self, head: bytes, stream):
        self._head = head
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data, self._head = self._head + self._stream.read(), b""
        else:
            data, self._head = self._head[:size], self._head[size:]
            if len(data) < size:
                data += read_full(self._stream, size - len(data))
        self.count += len(data)
        return data

    def tell(self) -> int:
        return self.count


class GcsReader(BodyReader):
    """Reads ``length`` bytes (all when None) of an object through ranged GETs."""

    def __init__(self, reader=None, length: int | None = None, wrap=None):
        super().__init__(reader, wrap)
        self._left = length

    def read(self, size: int | None = -1) -> bytes:
        if self._body is None or self.closed:
            return b""
        if size is None or size < 0:
            size = self._left if self._left is not None else -1
        elif self._left is not None:
            size = min(size, self._left)
        if size == 0:
            return b""
        data = self._read_body(size)
        if self._left is not None:
            self._left -= len(data)
        return data

    def close(self) -> None:
        try:
            super().close()
        except Exception:  # the download is dropped either way
            pass
