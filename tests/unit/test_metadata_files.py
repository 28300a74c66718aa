"""The ``.metadata`` cache (pypicloud/metadata_files.py): checked bytes, served from
memory while storage's content token stands, bounded by size."""

from __future__ import annotations

import hashlib

import pytest

from pypicloud.errors import FileNotFound
from pypicloud.metadata_files import MetadataFiles
from pypicloud.storage.memory import MemoryStorage

WHEEL = "demo-1.0-py3-none-any.whl"
META = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class TokenStorage(MemoryStorage):
    """Memory storage that counts opens and answers a content token the test sets."""

    def __init__(self):
        super().__init__()
        self.opens = 0
        self.token: object = 1

    def content_token(self, project, filename):
        return self.token

    def open(self, project, filename, offset=0, length=None):
        self.opens += 1
        return super().open(project, filename, offset, length)


@pytest.fixture
def storage():
    storage = TokenStorage()
    storage.put_companion("demo", WHEEL + ".metadata", META, {})
    return storage


def test_checked_bytes_are_served_without_opening_the_file_again(storage):
    files = MetadataFiles(storage, max_size=1024, max_bytes=1 << 20)
    assert files.read("demo", WHEEL, sha(META)) == META
    assert files.read("demo", WHEEL, sha(META)) == META
    assert storage.opens == 1


def test_a_new_token_reads_and_checks_the_file_again(storage):
    files = MetadataFiles(storage, max_size=1024, max_bytes=1 << 20)
    assert files.read("demo", WHEEL, sha(META)) == META
    storage.put_companion("demo", WHEEL + ".metadata", b"damaged", {})
    storage.token = 2  # what a stat of the rewritten file says
    assert files.read("demo", WHEEL, sha(META)) is None
    assert storage.opens == 2


def test_damaged_bytes_are_never_kept(storage):
    storage.put_companion("demo", WHEEL + ".metadata", b"damaged", {})
    files = MetadataFiles(storage, max_size=1024, max_bytes=1 << 20)
    for _ in range(2):
        assert files.read("demo", WHEEL, sha(META)) is None
    assert storage.opens == 2
    assert files.cached_bytes == 0


def test_another_sha256_is_another_entry(storage):
    """A re-upload under the name with other metadata: its record's sha256 differs."""
    files = MetadataFiles(storage, max_size=1024, max_bytes=1 << 20)
    assert files.read("demo", WHEEL, sha(META)) == META
    other = META + b"Summary: second\n"
    storage.put_companion("demo", WHEEL + ".metadata", other, {})
    assert files.read("demo", WHEEL, sha(other)) == other


def test_no_token_no_cache(storage):
    storage.token = None
    files = MetadataFiles(storage, max_size=1024, max_bytes=1 << 20)
    for _ in range(3):
        assert files.read("demo", WHEEL, sha(META)) == META
    assert storage.opens == 3
    assert files.cached_bytes == 0


def test_zero_bytes_turns_the_cache_off(storage):
    files = MetadataFiles(storage, max_size=1024, max_bytes=0)
    for _ in range(2):
        assert files.read("demo", WHEEL, sha(META)) == META
    assert storage.opens == 2


def test_a_file_over_the_size_limit_reads_as_damaged(storage):
    files = MetadataFiles(storage, max_size=len(META) - 1, max_bytes=1 << 20)
    assert files.read("demo", WHEEL, sha(META)) is None


def test_a_missing_companion_is_not_found(storage):
    files = MetadataFiles(storage, max_size=1024, max_bytes=1 << 20)
    with pytest.raises(FileNotFound):
        files.read("demo", "other-1.0-py3-none-any.whl", sha(META))


def test_the_cache_is_bounded_by_bytes():
    storage = TokenStorage()
    budget = 64 * 1024
    files = MetadataFiles(storage, max_size=1 << 20, max_bytes=budget)
    for n in range(40):
        data = b"Name: demo\nSummary: %d\n" % n + b"x" * 4000
        storage.put_companion("demo", f"demo-{n}.0-py3-none-any.whl.metadata", data, {})
        assert files.read("demo", f"demo-{n}.0-py3-none-any.whl", sha(data)) == data
    assert 0 < files.cached_bytes <= budget
    # The most recent are kept, the oldest went first.
    opens = storage.opens
    data = b"Name: demo\nSummary: 39\n" + b"x" * 4000
    assert files.read("demo", "demo-39.0-py3-none-any.whl", sha(data)) == data
    assert storage.opens == opens
    data = b"Name: demo\nSummary: 0\n" + b"x" * 4000
    assert files.read("demo", "demo-0.0-py3-none-any.whl", sha(data)) == data
    assert storage.opens == opens + 1
