"""A stored file sent as slices of its mapping (pypicloud/mapped_file.py).

Waitress drives a file body with ``tell``/``read``/``seek`` back/``read`` again
(to skip what it sent); these tests drive :class:`MappedFile` the same way and
check every byte, the descriptor left for ``sendfile`` servers, and the fallbacks.
"""

from __future__ import annotations

import os

import pytest
from waitress.buffers import ReadOnlyFileBasedBuffer

from pypicloud import mapped_file
from pypicloud.mapped_file import MappedFile, mapped


def _data(size: int) -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


@pytest.fixture
def big(tmp_path):
    data = _data(mapped_file.MIN_SIZE * 3 + 12345)
    path = tmp_path / "big.whl"
    path.write_bytes(data)
    return path, data


def test_waitress_buffer_sends_every_byte_in_order(big):
    """The buffer waitress makes of a ``wsgi.file_wrapper`` body, driven as its I/O thread does."""
    path, data = big
    handle = path.open("rb")
    handle.seek(1000)  # a stream that starts inside the file
    body = mapped(handle)
    assert isinstance(body, MappedFile)
    buffer = ReadOnlyFileBasedBuffer(body, 1 << 20)
    assert buffer.prepare(len(data) - 1000) == len(data) - 1000
    sent = bytearray()
    while buffer.remain:
        chunk = buffer.get(16384)  # reads, then seeks back
        part = bytes(chunk[:10000])  # a socket that takes only part of the block
        sent += part
        buffer.skip(len(part), True)  # reads past what was sent
    buffer.close()
    assert bytes(sent) == data[1000:]
    assert handle.closed


def test_pages_behind_are_released_without_changing_what_is_read(big, monkeypatch):
    monkeypatch.setattr(mapped_file, "RELEASE_EVERY", 2 * mapped_file.mmap.PAGESIZE)
    path, data = big
    body = mapped(path.open("rb"))
    assert isinstance(body, MappedFile)
    out = bytearray()
    while block := body.read(5000):
        out += block
    assert body._released > 0  # the release ran
    body.seek(0)
    assert bytes(body.read(7000)) == data[:7000]  # released pages read again from the file
    assert bytes(out) == data
    body.close()


def test_seek_tell_and_reads_past_the_end(big):
    path, data = big
    body = mapped(path.open("rb"))
    assert body.seek(0, os.SEEK_END) == len(data)
    assert bytes(body.read(10)) == b""
    assert body.seek(-5, os.SEEK_END) == len(data) - 5
    assert bytes(body.read()) == data[-5:]
    body.seek(3)
    body.seek(4, os.SEEK_CUR)
    assert body.tell() == 7
    assert bytes(body.read(3)) == data[7:10]
    body.close()


def test_sendfile_servers_get_the_descriptor_at_the_first_byte(big):
    """gunicorn sends from ``fileno()`` at its current offset: the mapping never moves it."""
    path, data = big
    handle = path.open("rb")
    handle.seek(4096)
    body = mapped(handle)
    body.read(50000)
    assert os.lseek(body.fileno(), 0, os.SEEK_CUR) == 4096
    assert os.pread(body.fileno(), 16, 4096) == data[4096:4112]
    body.close()


def test_a_slice_held_by_the_server_survives_close(big):
    path, data = big
    body = mapped(path.open("rb"))
    held = body.read(100)
    body.close()  # the mapping cannot be unmapped while ``held`` exists: no error
    assert bytes(held) == data[:100]


def test_small_and_unmappable_files_are_left_as_they_are(tmp_path):
    small = tmp_path / "small.whl"
    small.write_bytes(b"x" * 100)
    with small.open("rb") as handle:
        assert mapped(handle) is handle
    read_end, write_end = os.pipe()
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        assert mapped(pipe) is pipe
