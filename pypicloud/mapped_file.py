"""A stored file handed to the WSGI server as memory-mapped slices instead of reads.

Waitress sends a ``wsgi.file_wrapper`` body from its I/O thread in blocks of the
socket's send buffer as it was at accept (``SO_SNDBUF``, which Linux sizes from the
path's segment size: some tens of KiB over Ethernet, 4 MiB over loopback), and for
every block it calls ``tell``, ``read``, ``seek`` back and, once the part the socket
took is sent, ``read`` again to skip it: each byte is copied out of the page cache at
least twice, and a whole block is read even when the socket takes a third of it.
Over a mapping, each of those reads is a slice of a memoryview: no system call and
no copy (``docs/performance.md``, "Large downloads").

Safe because stored files are never changed in place: file storage publishes a
new file by ``link``/``rename`` of a finished temporary file, so a file being
sent keeps its bytes (and an unlinked one its inode) until it is closed. The
pages already sent are given back (``MADV_DONTNEED``) every few MiB, so a large
download does not grow the process's resident memory by its size.
"""

from __future__ import annotations

import mmap
import os
from typing import BinaryIO

# Pages behind the read position are released once this many bytes are behind it.
RELEASE_EVERY = 8 * 1024 * 1024
# Smaller files gain nothing worth a mapping (and a mapping of 0 bytes is an error).
MIN_SIZE = 256 * 1024


class MappedFile:
    """Read-only file object over ``file`` from its current position to its end.

    ``read`` returns memoryviews of the mapping; ``seek``/``tell`` move a cursor.
    Takes ownership of ``file`` (closed by :meth:`close`).
    """

    def __init__(self, file: BinaryIO, size: int):
        self._file = file
        self._map = mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ)
        self._view = memoryview(self._map)
        self._size = size
        self._pos = file.tell()
        self._released = 0  # bytes before this offset were given back to the kernel

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        # Servers with ``sendfile`` (gunicorn) send from the descriptor, whose own
        # offset is still the first byte to send: the mapping never moves it.
        return self._file.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self._pos = offset
        elif whence == os.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._size + offset
        return self._pos

    def read(self, size: int = -1) -> memoryview:
        start = min(self._pos, self._size)
        end = self._size if size is None or size < 0 else min(self._size, start + size)
        self._pos = end
        self._release_behind(start)
        return self._view[start:end]

    def _release_behind(self, offset: int) -> None:
        # Pages before ``offset`` have been sent (waitress only seeks back to the
        # start of the block it is sending). Released pages that are read again
        # are simply faulted in again from the page cache.
        behind = offset - self._released
        if behind < RELEASE_EVERY or not hasattr(self._map, "madvise"):
            return
        length = behind - behind % mmap.PAGESIZE
        self._map.madvise(mmap.MADV_DONTNEED, self._released, length)
        self._released += length

    def close(self) -> None:
        self._view.release()
        try:
            self._map.close()
        except BufferError:
            # A slice is still held by the server: the mapping goes with it.
            pass
        self._file.close()


def mapped(file: BinaryIO) -> BinaryIO | MappedFile:
    """``file`` as a :class:`MappedFile` when that pays (a regular file of at
    least :data:`MIN_SIZE` bytes that can be mapped), else ``file`` itself."""
    try:
        size = os.fstat(file.fileno()).st_size
        if size < MIN_SIZE:
            return file
        return MappedFile(file, size)
    except (OSError, ValueError):
        # Not mappable (a pipe, a special file system): the server reads it.
        return file
