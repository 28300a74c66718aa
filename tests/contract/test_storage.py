"""One contract suite for every storage backend (SPEC section 6).

Each test runs against FileStorage in a temporary folder, S3Storage on the moto
server (without a prefix or hash segment and with both), CloudFrontS3Storage on
moto with a local CloudFront stand-in, AzureBlobStorage on Azurite and
GoogleCloudStorage on gcp-storage-emulator (each without and with prefix and hash).
A backend-specific ``Backend`` helper only knows how to build instances over
the same place, drop junk next to the real objects and look at what is stored.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import urllib.request
from datetime import datetime

import pytest

from pypicloud.errors import FileNotFound, InvalidUpload, ReadOnly, StorageConflict
from pypicloud.models import Redirect, StoredObject
from pypicloud.storage.base import WHOLE_OBJECTS, Storage
from pypicloud.storage.file import FileStorage
from pypicloud.storage.manifest import ManifestEntry
from tests import threads

MB = 1024 * 1024


# Streams ------------------------------------------------------------------
class GeneratedStream:
    """A non-seekable, length-less binary stream of deterministic bytes.

    Records every ``read`` size so tests can tell the backend read it in
    chunks; optionally raises :class:`Boom` once ``fail_after`` bytes are out.
    """

    def __init__(self, size: int, seed: int = 1, fail_after: int | None = None):
        self.size = size
        self.pos = 0
        self.fail_after = fail_after
        self.requests: list[int | None] = []
        self.block = random.Random(seed).randbytes(64 * 1024 + 7)
        self._sha = hashlib.sha256()

    def expected(self, offset: int = 0, length: int | None = None) -> bytes:
        end = self.size if length is None else min(self.size, offset + length)
        if offset >= end:
            return b""
        start = offset % len(self.block)
        repeats = (start + (end - offset)) // len(self.block) + 1
        return (self.block * repeats)[start : start + end - offset]

    def read(self, size: int | None = -1) -> bytes:
        self.requests.append(size)
        if self.fail_after is not None and self.pos >= self.fail_after:
            raise Boom("the client went away")
        left = self.size - self.pos
        if size is None or size < 0 or size > left:
            size = left
        if self.fail_after is not None:
            size = min(size, self.fail_after - self.pos) or size
        data = self.expected(self.pos, size)
        self.pos += len(data)
        self._sha.update(data)
        return data

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class Boom(Exception):
    pass


# Backends -----------------------------------------------------------------
class FileBackend:
    name = "file"

    def __init__(self, root: str):
        self.root = root

    def make(self, **kwargs):
        return FileStorage(self.root, fsync=False, **kwargs)

    def add_junk(self) -> None:
        folder = os.path.join(self.root, "demo")
        os.makedirs(folder, exist_ok=True)
        for name, data in {
            ".x.tmp-123": b"half a file",
            ".orphan-1.0.tar.gz.meta": b'{"a": "b"}',
            ".demo-9.9.tar.gz.tmp-abcdef": b"partial",
        }.items():
            with open(os.path.join(folder, name), "wb") as handle:
                handle.write(data)
        os.makedirs(os.path.join(self.root, ".trash"), exist_ok=True)
        with open(os.path.join(self.root, ".trash", "old-1.0.tar.gz"), "wb") as handle:
            handle.write(b"x")
        with open(os.path.join(self.root, "README.txt"), "wb") as handle:
            handle.write(b"not a package")

    def snapshot(self) -> dict[str, bytes]:
        found = {}
        for folder, _, files in os.walk(self.root):
            for name in files:
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    found[os.path.relpath(path, self.root)] = handle.read()
        return found

    def leftovers(self) -> list[str]:
        return [name for name in self.snapshot() if ".tmp-" in name]


class MemoryBackend:
    """The in-memory backend: every instance it makes shares one store, like processes on one bucket."""

    name = "memory"

    def __init__(self):
        from pypicloud.storage.memory import MemoryStore

        self.store = MemoryStore()

    def make(self, **kwargs):
        from pypicloud.storage.memory import MemoryStorage

        return MemoryStorage(store=self.store, **kwargs)

    def add_junk(self) -> None:
        pass  # no name can reach the store but through the contract's checks

    def snapshot(self) -> dict[str, tuple]:
        return {key: (o.data, o.info.metadata) for key, o in self.store.objects.items()}

    def leftovers(self) -> list[str]:
        return []


class S3Backend:
    def __init__(self, name: str, endpoint: str, bucket: str, client, **options):
        self.name = name
        self.endpoint = endpoint
        self.bucket = bucket
        self.client = client
        self.options = options
        self.built = []

    def make(self, **kwargs):
        from tests.fixtures.s3 import build_s3_storage

        storage = build_s3_storage(self.endpoint, self.bucket, **{**self.options, **kwargs})
        self.built.append(storage)
        return storage

    def add_junk(self) -> None:
        from pypicloud.storage.s3 import key_hash

        prefix = self.options.get("prefix", "")
        good_hash = key_hash("junk-1.0.tar.gz")
        keys = [
            f"{prefix}README.txt",
            f"{prefix}a/b/c/d/e.tar.gz",
            f"{prefix}demo/",
            f"{prefix}zzzz/demo/junk-1.0.tar.gz",  # not a hash segment
            f"{prefix}{good_hash}/.hidden/junk-1.0.tar.gz",
        ]
        if self.options.get("prepend_hash", True):
            wrong = "0000" if good_hash != "0000" else "ffff"
            keys += [
                f"{prefix}{wrong}/demo/junk-1.0.tar.gz",  # hash of another name
                f"{prefix}demo/junk-1.0.tar.gz",
            ]  # layout without hash
        else:
            keys += [f"{prefix}{good_hash}/demo/junk-1.0.tar.gz"]  # layout with hash
        if prefix:
            keys += [
                f"outside/{good_hash}/demo/junk-1.0.tar.gz",
                "demo/junk-1.0.tar.gz",
                f"{good_hash}/demo/junk-1.0.tar.gz",
            ]
        for key in keys:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"junk")

    def snapshot(self) -> dict[str, tuple]:
        found = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", ()):
                head = self.client.head_object(Bucket=self.bucket, Key=item["Key"])
                found[item["Key"]] = (item["ETag"], item["Size"], head.get("Metadata"))
        return found

    def leftovers(self) -> list[str]:
        uploads = self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return [upload["Key"] for upload in uploads]


class CloudFrontBackend(S3Backend):
    """S3 storage whose download URLs are signed for the local CloudFront stand-in."""

    def __init__(self, name, endpoint, bucket, client, domain, keys, **options):
        super().__init__(name, endpoint, bucket, client, **options)
        self.domain = domain
        self.keys = keys

    def make(self, **kwargs):
        from pypicloud.storage.cloudfront import CloudFrontS3Storage
        from tests.fixtures.s3 import REGION

        key_id, pem, _ = self.keys
        options = {**self.options, **kwargs}
        storage = CloudFrontS3Storage(
            self.bucket,
            endpoint_url=self.endpoint,
            region_name=REGION,
            cloud_front_domain=self.domain,
            cloud_front_key_id=key_id,
            private_key_pem=pem,
            **options,
        )
        self.built.append(storage)
        return storage


class AzureBackend:
    """Azure Blob storage on Azurite; the container is created by the first storage built."""

    def __init__(self, name: str, account_url: str, container: str, **options):
        self.name = name
        self.account_url = account_url
        self.container = container
        self.options = options
        self.built = []

    def make(self, **kwargs):
        from pypicloud.storage.azure_blob import AzureBlobStorage
        from tests.fixtures.azurite import ACCOUNT, KEY

        storage = AzureBlobStorage(
            self.container,
            account_url=self.account_url,
            account_name=ACCOUNT,
            account_key=KEY,
            **{**self.options, **kwargs},
        )
        if not self.built:
            storage.ensure_container()
        self.built.append(storage)
        return storage

    def _client(self):
        from tests.fixtures.azurite import service_client

        return service_client(self.account_url).get_container_client(self.container)

    def add_junk(self) -> None:
        from pypicloud.storage.s3 import key_hash

        prefix = self.options.get("prefix", "")
        good_hash = key_hash("junk-1.0.tar.gz")
        keys = [
            f"{prefix}README.txt",
            f"{prefix}a/b/c/d/e.tar.gz",
            f"{prefix}zzzz/demo/junk-1.0.tar.gz",
            f"{prefix}demo/.hidden-1.0.tar.gz",
        ]
        if self.options.get("prepend_hash", False):
            keys += [f"{prefix}demo/junk-1.0.tar.gz"]
        else:
            keys += [f"{prefix}{good_hash}/demo/junk-1.0.tar.gz"]
        if prefix:
            keys += ["demo/junk-1.0.tar.gz", f"{good_hash}/demo/junk-1.0.tar.gz"]
        client = self._client()
        for key in keys:
            client.upload_blob(key, b"junk", overwrite=True)

    def snapshot(self) -> dict[str, tuple]:
        return {
            b.name: (b.etag, b.size, dict(b.metadata or {}))
            for b in self._client().list_blobs(include=["metadata"])
        }

    def leftovers(self) -> list[str]:
        # A failed upload leaves only uncommitted blocks, which are no blob
        # (stat and list, checked by the tests, see nothing); Azure has no call
        # to drop them and discards them by itself.
        return []


class GcsBackend:
    """GCS on gcp-storage-emulator; the bucket is created by the first storage built."""

    def __init__(self, name: str, endpoint: str, bucket: str, key_file, **options):
        self.name = name
        self.endpoint = endpoint
        self.bucket = bucket
        self.key_file = key_file
        self.options = options
        self.built = []

    def make(self, **kwargs):
        from pypicloud.storage.gcs import GoogleCloudStorage
        from tests.fixtures.gcs import PROJECT

        storage = GoogleCloudStorage(
            self.bucket,
            api_endpoint=self.endpoint,
            project_id=PROJECT,
            credentials_file=str(self.key_file),
            **{**self.options, **kwargs},
        )
        if not self.built:
            storage.ensure_bucket()
        self.built.append(storage)
        return storage

    def _bucket(self):
        return self.built[0].bucket

    def add_junk(self) -> None:
        from pypicloud.storage.s3 import key_hash

        prefix = self.options.get("prefix", "")
        good_hash = key_hash("junk-1.0.tar.gz")
        keys = [
            f"{prefix}README.txt",
            f"{prefix}a/b/c/d/e.tar.gz",
            f"{prefix}zzzz/demo/junk-1.0.tar.gz",
            f"{prefix}{good_hash}/.hidden/junk-1.0.tar.gz",
        ]
        if self.options.get("prepend_hash", True):
            keys += [f"{prefix}demo/junk-1.0.tar.gz"]
        else:
            keys += [f"{prefix}{good_hash}/demo/junk-1.0.tar.gz"]
        if prefix:
            keys += ["demo/junk-1.0.tar.gz", f"{good_hash}/demo/junk-1.0.tar.gz"]
        for key in keys:
            self._bucket().blob(key).upload_from_string(b"junk")

    def snapshot(self) -> dict[str, tuple]:
        return {b.name: (b.generation, b.size, dict(b.metadata or {})) for b in self._bucket().list_blobs()}

    def leftovers(self) -> list[str]:
        # An unfinished resumable upload is no object (stat and list, checked
        # by the tests, see nothing); GCS drops the session after a week.
        return []


class MemoryBackend:
    """tests/fakes.py's in-memory storage: instances share one store."""

    name = "memory"

    def __init__(self):
        from tests.fakes import StorageStore

        self.store = StorageStore()

    def make(self, **kwargs):
        from tests.fakes import MemoryStorage

        return MemoryStorage(self.store, **kwargs)

    def add_junk(self) -> None:
        """A dict holds no temp files, sidecars or stray keys."""

    def snapshot(self) -> dict[str, tuple]:
        return {f"{p}/{f}": (data, dict(meta)) for (p, f), (data, meta, _) in self.store.objects.items()}

    def leftovers(self) -> list[str]:
        return []


STORAGE_PARAMS = [
    "memory",
    "file",
    "memory",
    "s3",
    "s3-prefix-hash",
    "cloudfront",
    "azure",
    "azure-prefix-hash",
    "gcs",
    "gcs-prefix-hash",
]


@pytest.fixture(params=STORAGE_PARAMS)
def backend(request, tmp_path):
    if request.param == "file":
        yield FileBackend(str(tmp_path / "packages"))
        return
    if request.param == "memory":
        yield MemoryBackend()
        return
    if request.param.startswith("gcs"):
        endpoint = request.getfixturevalue("gcs_emulator")
        bucket = request.getfixturevalue("gcs_bucket_name")
        key_file = request.getfixturevalue("gcs_service_account")[0]
        options = (
            {"prefix": "pkgs/", "prepend_hash": True}
            if request.param == "gcs-prefix-hash"
            else {"prepend_hash": False}
        )
        helper = GcsBackend(request.param, endpoint, bucket, key_file, **options)
        yield helper
        for storage in helper.built:
            storage.close()
        return
    if request.param.startswith("azure"):
        account_url = request.getfixturevalue("azurite_server")
        container = request.getfixturevalue("azure_container")
        options = {"prefix": "pkgs/", "prepend_hash": True} if request.param == "azure-prefix-hash" else {}
        helper = AzureBackend(request.param, account_url, container, **options)
        yield helper
        for storage in helper.built:
            storage.close()
        return
    endpoint = request.getfixturevalue("moto_server")
    bucket = request.getfixturevalue("s3_bucket")
    client = request.getfixturevalue("s3_client")
    if request.param == "cloudfront":
        domain = request.getfixturevalue("cloudfront_distribution")
        keys = request.getfixturevalue("cloudfront_keys")
        helper = CloudFrontBackend(
            "cloudfront", endpoint, bucket, client, domain, keys, prefix="cf/", prepend_hash=True
        )
    elif request.param == "s3":
        helper = S3Backend("s3", endpoint, bucket, client, prefix="", prepend_hash=False)
    else:
        helper = S3Backend("s3-prefix-hash", endpoint, bucket, client, prefix="pkgs/", prepend_hash=True)
    yield helper
    for storage in helper.built:
        storage.close()


@pytest.fixture
def storage(backend):
    return backend.make()


def put(storage, project, filename, data: bytes, metadata=None, *, overwrite=False):
    return storage.put(project, filename, io.BytesIO(data), dict(metadata or {}), overwrite=overwrite)


def read(storage, project, filename, offset=0, length=None) -> bytes:
    with storage.open(project, filename, offset, length) as handle:
        return handle.read()


DATA = bytes(range(256)) * 4
UNICODE_META = {
    "summary": "Ünïcödé ✓ 日本語 🐍",
    "plain": "Hello, World 1.0",
    "empty": "",
    "padded": "  padded  ",
    "controls": "a\nb\tc\r",
    "double": "two  spaces",
    "looks_encoded": "=?UTF-8?B?w6k=?=",
    "percent": "100% a%41 %E2%9C%93",
    "latin1": "café",
}


# put / stat / open ----------------------------------------------------------
def test_put_stat_open(storage):
    stored = put(storage, "demo", "demo-1.0.tar.gz", DATA, {"version": "1.0"})
    assert isinstance(stored, StoredObject)
    assert (stored.project, stored.filename, stored.size) == ("demo", "demo-1.0.tar.gz", len(DATA))
    assert stored.metadata == {"version": "1.0"}
    assert stored.key == storage.key_for("demo", "demo-1.0.tar.gz")

    found = storage.stat("demo", "demo-1.0.tar.gz")
    assert found.size == len(DATA)
    assert found.metadata == {"version": "1.0"}
    assert found.key == stored.key
    assert isinstance(found.last_modified, datetime) and found.last_modified.tzinfo is not None
    assert read(storage, "demo", "demo-1.0.tar.gz") == DATA

    with storage.open("demo", "demo-1.0.tar.gz") as handle:
        assert b"".join(iter(handle)) == DATA


def test_missing_objects(storage):
    assert storage.stat("demo", "nope-1.0.tar.gz") is None
    with pytest.raises(FileNotFound):
        storage.open("demo", "nope-1.0.tar.gz")
    with pytest.raises(FileNotFound):
        storage.open("demo", "nope-1.0.tar.gz", 10, 0)
    assert storage.delete("demo", "nope-1.0.tar.gz") is False


@pytest.mark.parametrize(
    "offset, length",
    [
        (0, None),
        (100, None),
        (100, 50),
        (0, 1),
        (1023, None),
        (1000, 100),
        (1024, None),
        (2000, None),
        (2000, 10),
        (0, 0),
        (500, 0),
        (0, 5000),
    ],
)
def test_open_ranges(storage, offset, length):
    put(storage, "demo", "demo-1.0.tar.gz", DATA)
    end = None if length is None else offset + length
    assert read(storage, "demo", "demo-1.0.tar.gz", offset, length) == DATA[offset:end]


def test_empty_object(storage):
    stored = put(storage, "demo", "empty-1.0.tar.gz", b"")
    assert stored.size == 0
    assert storage.stat("demo", "empty-1.0.tar.gz").size == 0
    assert read(storage, "demo", "empty-1.0.tar.gz") == b""
    assert read(storage, "demo", "empty-1.0.tar.gz", 0, 10) == b""


def test_delete(storage):
    put(storage, "demo", "demo-1.0.tar.gz", DATA, {"a": "1"})
    put(storage, "demo", "demo-2.0.tar.gz", DATA)
    assert storage.delete("demo", "demo-1.0.tar.gz") is True
    assert storage.stat("demo", "demo-1.0.tar.gz") is None
    with pytest.raises(FileNotFound):
        storage.open("demo", "demo-1.0.tar.gz")
    assert storage.delete("demo", "demo-1.0.tar.gz") is False
    assert [o.filename for o in storage.list()] == ["demo-2.0.tar.gz"]
    # Putting the name again after a delete works and starts without old metadata.
    put(storage, "demo", "demo-1.0.tar.gz", b"new", {"b": "2"})
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == {"b": "2"}


# copy / update_metadata --------------------------------------------------------
def test_copy_keeps_metadata(storage):
    put(storage, "demo", "demo-1.0.tar.gz", DATA, {"a": "1", "summary": "ä"})
    copied = storage.copy("demo", "demo-1.0.tar.gz", "other", "other-1.0.tar.gz")
    assert (copied.project, copied.filename, copied.size) == ("other", "other-1.0.tar.gz", len(DATA))
    assert copied.metadata == {"a": "1", "summary": "ä"}
    assert storage.stat("other", "other-1.0.tar.gz").metadata == {"a": "1", "summary": "ä"}
    assert read(storage, "other", "other-1.0.tar.gz") == DATA
    # The source is untouched.
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == {"a": "1", "summary": "ä"}
    assert read(storage, "demo", "demo-1.0.tar.gz") == DATA


def test_copy_replaces_metadata_when_given(storage):
    put(storage, "demo", "demo-1.0.tar.gz", DATA, {"a": "1"})
    copied = storage.copy("demo", "demo-1.0.tar.gz", "demo", "demo-1.0.copy.tar.gz", {"b": "ü"})
    assert copied.metadata == {"b": "ü"}
    assert storage.stat("demo", "demo-1.0.copy.tar.gz").metadata == {"b": "ü"}
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == {"a": "1"}


def test_copy_overwrites_destination(storage):
    put(storage, "demo", "demo-1.0.tar.gz", DATA, {"a": "1"})
    put(storage, "other", "other-1.0.tar.gz", b"old bytes", {"old": "yes"})
    storage.copy("demo", "demo-1.0.tar.gz", "other", "other-1.0.tar.gz")
    assert read(storage, "other", "other-1.0.tar.gz") == DATA
    assert storage.stat("other", "other-1.0.tar.gz").metadata == {"a": "1"}


def test_copy_missing_source(storage):
    with pytest.raises(FileNotFound):
        storage.copy("demo", "nope-1.0.tar.gz", "other", "other-1.0.tar.gz")
    assert storage.stat("other", "other-1.0.tar.gz") is None


def test_update_metadata(storage):
    put(storage, "demo", "demo-1.0.tar.gz", DATA, {"a": "1", "b": "2"})
    updated = storage.update_metadata("demo", "demo-1.0.tar.gz", {"b": "3", "c": "ß"})
    assert updated.metadata == {"b": "3", "c": "ß"}
    found = storage.stat("demo", "demo-1.0.tar.gz")
    assert found.metadata == {"b": "3", "c": "ß"}
    assert found.size == len(DATA)
    assert read(storage, "demo", "demo-1.0.tar.gz") == DATA
    with pytest.raises(FileNotFound):
        storage.update_metadata("demo", "nope-1.0.tar.gz", {"a": "1"})


# metadata -------------------------------------------------------------------
def test_unicode_metadata_round_trips(storage):
    put(storage, "demo", "demo-1.0.tar.gz", DATA, UNICODE_META)
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == UNICODE_META
    [listed] = list(storage.list())
    assert listed.metadata == UNICODE_META
    storage.copy("demo", "demo-1.0.tar.gz", "demo", "demo-1.1.tar.gz")
    assert storage.stat("demo", "demo-1.1.tar.gz").metadata == UNICODE_META
    changed = {**UNICODE_META, "summary": "Ωmega — “quoted” ✓"}
    storage.update_metadata("demo", "demo-1.0.tar.gz", changed)
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == changed


# list ---------------------------------------------------------------------------
def test_list_everything_and_no_junk(backend, storage):
    expected = {
        ("demo", "demo-1.0.tar.gz"): (len(DATA), {"version": "1.0"}),
        ("demo", "demo-1.0-py3-none-any.whl"): (3, {"version": "1.0", "summary": "ä"}),
        ("other", "other-2.0.tar.gz"): (0, {}),
    }
    for (project, filename), (size, metadata) in expected.items():
        put(storage, project, filename, DATA[:size] if size != len(DATA) else DATA, metadata)
    backend.add_junk()
    found = {}
    for obj in storage.list():
        assert isinstance(obj, StoredObject)
        assert obj.key == storage.key_for(obj.project, obj.filename)
        found[(obj.project, obj.filename)] = (obj.size, obj.metadata)
    assert found == expected


def test_list_empty(storage):
    assert list(storage.list()) == []


def test_a_manifest_round_trips_where_kept_and_is_never_listed(backend, storage):
    put(storage, "demo", "demo-1.0.tar.gz", DATA, {"version": "1.0"})
    assert storage.read_manifest() is None
    entries = {storage.key_for("demo", "demo-1.0.tar.gz"): ManifestEntry("tag-1", {"version": "1.0"})}
    if storage.write_manifest(entries):
        assert storage.read_manifest() == entries
        reader = backend.make(read_only=True)
        assert reader.write_manifest({}) is False
        assert reader.read_manifest() == entries
    else:  # the default: no manifest
        assert storage.read_manifest() is None
    assert [o.filename for o in storage.list()] == ["demo-1.0.tar.gz"]
    assert [o.filename for o in storage.list_reusing({})] == ["demo-1.0.tar.gz"]


# overwrite -------------------------------------------------------------------------
def test_no_overwrite_conflicts_and_keeps_original(storage):
    put(storage, "demo", "demo-1.0.tar.gz", DATA, {"a": "1"})
    with pytest.raises(StorageConflict):
        put(storage, "demo", "demo-1.0.tar.gz", b"other bytes", {"a": "2"})
    assert read(storage, "demo", "demo-1.0.tar.gz") == DATA
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == {"a": "1"}


def test_overwrite_replaces(storage):
    put(storage, "demo", "demo-1.0.tar.gz", DATA, {"a": "1"})
    stored = put(storage, "demo", "demo-1.0.tar.gz", b"new bytes", {"b": "2"}, overwrite=True)
    assert stored.size == len(b"new bytes")
    assert read(storage, "demo", "demo-1.0.tar.gz") == b"new bytes"
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == {"b": "2"}
    # overwrite=True also creates.
    put(storage, "demo", "demo-2.0.tar.gz", b"fresh", overwrite=True)
    assert read(storage, "demo", "demo-2.0.tar.gz") == b"fresh"


# put_file: a finished local file (the upload's spool) ----------------------------------
def test_put_file_stores_a_local_file_that_may_then_be_removed(storage, tmp_path):
    source = tmp_path / "spooled-upload"
    source.write_bytes(DATA)
    stored = storage.put_file("demo", "demo-1.0.tar.gz", str(source), {"a": "1"})
    assert stored.size == len(DATA) and stored.metadata == {"a": "1"}
    source.unlink()  # what the spool does once the upload is stored
    assert read(storage, "demo", "demo-1.0.tar.gz") == DATA
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == {"a": "1"}


def test_put_file_keeps_put_s_no_overwrite_rule(storage, tmp_path):
    put(storage, "demo", "demo-1.0.tar.gz", DATA, {"a": "1"})
    source = tmp_path / "spooled-upload"
    source.write_bytes(b"other bytes")
    with pytest.raises(StorageConflict):
        storage.put_file("demo", "demo-1.0.tar.gz", str(source), {"a": "2"})
    assert read(storage, "demo", "demo-1.0.tar.gz") == DATA
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == {"a": "1"}
    storage.put_file("demo", "demo-1.0.tar.gz", str(source), {"a": "3"}, overwrite=True)
    assert read(storage, "demo", "demo-1.0.tar.gz") == b"other bytes"
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == {"a": "3"}
    assert source.read_bytes() == b"other bytes"  # the caller's file is left as it was


def test_put_file_stores_its_companion_only_when_it_stores_the_file(storage, tmp_path):
    source = tmp_path / "spooled-upload"
    source.write_bytes(DATA)
    companion = ("demo-1.0.tar.gz.metadata", b"Metadata-Version: 2.2\n", {"sha256": "m"})
    storage.put_file("demo", "demo-1.0.tar.gz", str(source), {"a": "1"}, companion=companion)
    assert read(storage, "demo", "demo-1.0.tar.gz") == DATA
    assert read(storage, "demo", "demo-1.0.tar.gz.metadata") == b"Metadata-Version: 2.2\n"
    source.write_bytes(b"other bytes")
    other = ("demo-1.0.tar.gz.metadata", b"the loser's", {"sha256": "n"})
    with pytest.raises(StorageConflict):
        storage.put_file("demo", "demo-1.0.tar.gz", str(source), {"a": "2"}, companion=other)
    assert read(storage, "demo", "demo-1.0.tar.gz.metadata") == b"Metadata-Version: 2.2\n"


@pytest.mark.parametrize("size", [64 * 1024, 12 * MB], ids=["small", "multipart"])
def test_concurrent_puts_exactly_one_wins(storage, size):
    streams = {i: GeneratedStream(size, seed=100 + i) for i in range(2)}

    def writer(i: int) -> str:
        try:
            storage.put("race", "race-1.0.tar.gz", streams[i], {"writer": str(i)})
            return "won"
        except StorageConflict:
            return "lost"

    outcome = dict(enumerate(threads.run_together([lambda i=i: writer(i) for i in range(2)], timeout=600)))
    assert sorted(map(str, outcome.values())) == ["lost", "won"], outcome
    winner = next(i for i, result in outcome.items() if result == "won")
    found = storage.stat("race", "race-1.0.tar.gz")
    assert found.size == size
    assert found.metadata == {"writer": str(winner)}
    digest = hashlib.sha256()
    with storage.open("race", "race-1.0.tar.gz") as handle:
        for block in handle:
            digest.update(block)
    assert digest.hexdigest() == hashlib.sha256(streams[winner].expected()).hexdigest()


# read-only ---------------------------------------------------------------------------
def test_read_only_refuses_every_write(backend, storage):
    put(storage, "demo", "demo-1.0.tar.gz", DATA, {"a": "1"})
    reader = backend.make(read_only=True)
    before = backend.snapshot()
    writes = [
        lambda: put(reader, "demo", "demo-2.0.tar.gz", b"x"),
        lambda: put(reader, "demo", "demo-1.0.tar.gz", b"x", overwrite=True),
        lambda: reader.delete("demo", "demo-1.0.tar.gz"),
        lambda: reader.delete("demo", "nope-1.0.tar.gz"),
        lambda: reader.copy("demo", "demo-1.0.tar.gz", "demo", "demo-1.1.tar.gz"),
        lambda: reader.update_metadata("demo", "demo-1.0.tar.gz", {"a": "2"}),
    ]
    for write in writes:
        with pytest.raises(ReadOnly):
            write()
    assert backend.snapshot() == before
    # Reading still works.
    assert read(reader, "demo", "demo-1.0.tar.gz") == DATA
    assert reader.stat("demo", "demo-1.0.tar.gz").metadata == {"a": "1"}
    assert [o.filename for o in reader.list()] == ["demo-1.0.tar.gz"]
    reader.check_health()


# names ------------------------------------------------------------------------------
BAD_NAMES = ["../x", "a/b", ".hidden", "x\x00", "", "..", "a\\b", "tab\there"]


@pytest.mark.parametrize("bad", BAD_NAMES, ids=repr)
def test_unsafe_names_refused(backend, storage, bad):
    put(storage, "demo", "demo-1.0.tar.gz", DATA)
    before = backend.snapshot()
    calls = [
        lambda: put(storage, "demo", bad, b"x"),
        lambda: put(storage, bad, "demo-1.0.tar.gz", b"x"),
        lambda: put(storage, "demo", bad, b"x", overwrite=True),
        lambda: storage.open("demo", bad),
        lambda: storage.open(bad, "demo-1.0.tar.gz"),
        lambda: storage.stat("demo", bad),
        lambda: storage.delete("demo", bad),
        lambda: storage.delete(bad, "demo-1.0.tar.gz"),
        lambda: storage.copy("demo", "demo-1.0.tar.gz", "demo", bad),
        lambda: storage.copy("demo", "demo-1.0.tar.gz", bad, "x-1.0.tar.gz"),
        lambda: storage.copy("demo", bad, "demo", "x-1.0.tar.gz"),
        lambda: storage.update_metadata("demo", bad, {"a": "1"}),
        lambda: storage.key_for("demo", bad),
    ]
    for call in calls:
        with pytest.raises(InvalidUpload):
            call()
    assert backend.snapshot() == before


# streaming and failures ----------------------------------------------------------------
def test_large_body_is_streamed(storage):
    stream = GeneratedStream(20 * MB, seed=7)
    assert not hasattr(stream, "__len__") and not hasattr(stream, "seek")
    stored = storage.put("big", "big-1.0.tar.gz", stream, {"k": "v"})
    assert stored.size == 20 * MB
    # Read in chunks, never whole: no read() without a size, none near the body size.
    assert stream.requests and all(n is not None and 0 < n <= 16 * MB + 1 for n in stream.requests)
    digest = hashlib.sha256()
    with storage.open("big", "big-1.0.tar.gz") as handle:
        for block in handle:
            digest.update(block)
    assert digest.hexdigest() == stream.sha256
    # A range across the first part boundary of a multipart upload.
    offset = 8 * MB - 10
    assert read(storage, "big", "big-1.0.tar.gz", offset, 20) == stream.expected(offset, 20)
    assert storage.stat("big", "big-1.0.tar.gz").size == 20 * MB


@pytest.mark.parametrize("size, fail_after", [(4096, 1000), (20 * MB, 10 * MB)], ids=["small", "multipart"])
def test_failed_put_leaves_no_object(backend, storage, size, fail_after):
    with pytest.raises(Boom):
        storage.put("demo", "demo-1.0.tar.gz", GeneratedStream(size, fail_after=fail_after), {})
    assert storage.stat("demo", "demo-1.0.tar.gz") is None
    assert list(storage.list()) == []
    assert backend.leftovers() == []


@pytest.mark.parametrize("size, fail_after", [(4096, 1000), (20 * MB, 10 * MB)], ids=["small", "multipart"])
def test_failed_overwrite_keeps_original(backend, storage, size, fail_after):
    put(storage, "demo", "demo-1.0.tar.gz", DATA, {"a": "1"})
    with pytest.raises(Boom):
        storage.put(
            "demo",
            "demo-1.0.tar.gz",
            GeneratedStream(size, fail_after=fail_after),
            {"a": "2"},
            overwrite=True,
        )
    assert read(storage, "demo", "demo-1.0.tar.gz") == DATA
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == {"a": "1"}
    assert backend.leftovers() == []


# serving and health ----------------------------------------------------------------------
def test_download_url_serves_the_bytes(storage):
    put(storage, "demo", "demo-1.0.tar.gz", DATA)
    answer = storage.download_url("demo", "demo-1.0.tar.gz", 3600)
    if answer is None:
        return  # this backend has the server stream the bytes
    assert isinstance(answer, Redirect)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(answer.url, timeout=30) as response:
        assert response.read() == DATA


def test_check_health(storage):
    storage.check_health()


def test_two_instances_share_one_store(backend, storage):
    """The scale-out shape: two processes on one bucket see one set of objects."""
    other = backend.make()
    put(storage, "demo", "demo-1.0.tar.gz", DATA, {"a": "1"})
    assert other.stat("demo", "demo-1.0.tar.gz").metadata == {"a": "1"}
    assert read(other, "demo", "demo-1.0.tar.gz") == DATA
    with pytest.raises(StorageConflict):
        put(other, "demo", "demo-1.0.tar.gz", b"second process", {"a": "2"})
    other.update_metadata("demo", "demo-1.0.tar.gz", {"a": "3"})
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == {"a": "3"}
    assert other.delete("demo", "demo-1.0.tar.gz") is True
    assert storage.stat("demo", "demo-1.0.tar.gz") is None


def test_list_can_skip_metadata_the_caller_does_not_need(storage):
    storage.put("demo", "demo-1.0.tar.gz", io.BytesIO(b"dist"), {"sha256": "aa"})
    storage.put("demo", "demo-1.0.tar.gz.metadata", io.BytesIO(b"Name: demo"), {"sha256": "bb"})
    listed = {o.filename: o for o in storage.list(metadata_for=lambda name: not name.endswith(".metadata"))}
    assert set(listed) == {"demo-1.0.tar.gz", "demo-1.0.tar.gz.metadata"}
    assert listed["demo-1.0.tar.gz"].metadata["sha256"] == "aa"
    assert listed["demo-1.0.tar.gz.metadata"].metadata == {}
    assert listed["demo-1.0.tar.gz.metadata"].size == len(b"Name: demo")


def test_list_reusing_what_the_caller_knows(storage):
    """Nothing known: the plain listing. A known object listed with the tag it was
    read with may come without metadata; a stale tag never hides a change."""
    storage.put("demo", "demo-1.0.tar.gz", io.BytesIO(b"dist"), {"sha256": "aa"})
    storage.put("demo", "demo-1.1.tar.gz", io.BytesIO(b"dist 2"), {"sha256": "cc"})
    first = {o.filename: o for o in storage.list_reusing({})}
    assert {n: o.metadata["sha256"] for n, o in first.items()} == {
        "demo-1.0.tar.gz": "aa",
        "demo-1.1.tar.gz": "cc",
    }
    key = storage.key_for("demo", "demo-1.0.tar.gz")
    tag = first["demo-1.0.tar.gz"].tag
    if tag:
        again = {o.filename: o for o in storage.list_reusing({key: tag})}
        assert again["demo-1.0.tar.gz"].tag == tag
        assert again["demo-1.0.tar.gz"].metadata in ({}, {"sha256": "aa"})
        assert again["demo-1.1.tar.gz"].metadata["sha256"] == "cc"
    stale = {o.filename: o for o in storage.list_reusing({key: "stale"})}
    assert stale["demo-1.0.tar.gz"].metadata["sha256"] == "aa"


def test_declared_contract_matches_what_the_backend_does(backend, storage):
    """hands_out_urls, url_lifetime, location and SETTINGS_KEYS say what the backend really does."""
    put(storage, "demo", "demo-1.0.tar.gz", DATA)
    answer = storage.download_url("demo", "demo-1.0.tar.gz", 3600)
    if answer is not None:
        assert type(storage).hands_out_urls
    if not type(storage).hands_out_urls:
        assert answer is None
    lifetime = storage.url_lifetime()
    if lifetime is not None:
        expire_after, buffer_time = lifetime
        assert 0 <= buffer_time < expire_after
        assert storage.hands_out_urls
    # Two instances on one store are one place; the contract names it the same way.
    assert storage.location() is not None
    assert backend.make().location() == storage.location()
    # Every backend declares the keys it reads (not only the base class's storage.read_only).
    mro = type(storage).__mro__
    assert any("SETTINGS_KEYS" in vars(cls) for cls in mro[: mro.index(Storage)])
    assert "storage.read_only" in type(storage).SETTINGS_KEYS
    assert all(key.startswith("storage.") for key in type(storage).SETTINGS_KEYS)


def test_content_token_changes_with_the_bytes_unless_objects_are_whole(storage):
    """What the ``.metadata`` cache keys on (pypicloud/metadata_files.py): a token
    that stands while the object does and changes when it is written again, or
    WHOLE_OBJECTS from a store that only replaces objects whole, or None."""
    name = "demo-1.0-py3-none-any.whl.metadata"
    storage.put_companion("demo", name, b"Name: demo\n", {})
    first = storage.content_token("demo", name)
    assert storage.content_token("demo", name) == first
    storage.put_companion("demo", name, b"Name: demo\nSummary: other\n", {})
    second = storage.content_token("demo", name)
    if first not in (None, WHOLE_OBJECTS):
        assert second != first
    assert read(storage, "demo", name) == b"Name: demo\nSummary: other\n"
