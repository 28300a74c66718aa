"""FileStorage specifics beyond the shared storage contract."""

from __future__ import annotations

import errno
import fcntl
import io
import os
import stat
import time

from pypicloud.spool import SpooledUpload
from pypicloud.storage import file_writes
from pypicloud.storage.file import FileStorage


def age(path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_leftovers_of_dead_writers_are_swept_on_the_next_write(tmp_path):
    storage = FileStorage(str(tmp_path))
    folder = tmp_path / "demo"
    folder.mkdir()
    dead = folder / ".demo-1.0.tar.gz.tmp-deadbeef"
    dead.write_bytes(b"partial")
    age(dead, 3600)
    fresh = folder / ".demo-1.0.tar.gz.tmp-0123"  # may belong to a writer just starting
    fresh.write_bytes(b"new")
    live = folder / ".demo-2.0.tar.gz.tmp-cafe"  # a writer holding its lock
    live.write_bytes(b"writing")
    age(live, 3600)
    with open(live, "rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        storage.put("demo", "demo-3.0.tar.gz", io.BytesIO(b"data"), {"sha256": "x"})
        assert not dead.exists()
        assert fresh.exists() and live.exists()
    assert [o.filename for o in storage.list()] == ["demo-3.0.tar.gz"]


def test_a_stream_to_the_end_of_the_file_offers_the_file_itself(tmp_path):
    """``os_file`` (what a server may sendfile): only for a view that runs to the end."""
    storage = FileStorage(str(tmp_path))
    data = bytes(range(200))
    storage.put("demo", "demo-1.0.tar.gz", io.BytesIO(data), {})
    for offset, length in ((0, None), (0, 200), (150, 50), (150, None)):
        with storage.open("demo", "demo-1.0.tar.gz", offset, length) as stream:
            local = stream.os_file()
            assert local is not None and local.read() == data[offset:]
    for offset, length in ((0, 199), (10, 20)):
        with storage.open("demo", "demo-1.0.tar.gz", offset, length) as stream:
            assert stream.os_file() is None
            assert stream.read() == data[offset : offset + length]


def test_put_file_links_the_file_instead_of_copying_it(tmp_path):
    storage = FileStorage(str(tmp_path / "packages"))
    source = tmp_path / "spool" / "ppc-upload-x"
    source.parent.mkdir()
    source.write_bytes(b"wheel bytes")
    os.chmod(source, 0o600)  # as mkstemp makes a spool file
    storage.put_file("demo", "demo-1.0.tar.gz", str(source), {"sha256": "x"})
    stored = tmp_path / "packages" / "demo" / "demo-1.0.tar.gz"
    assert os.stat(stored).st_ino == os.stat(source).st_ino  # one inode: no byte copied
    mask = os.umask(0o022)
    os.umask(mask)
    assert os.stat(stored).st_mode & 0o777 == 0o666 & ~mask  # not the spool's private 0600
    assert [p.name for p in (tmp_path / "packages" / "demo").iterdir() if ".tmp-" in p.name] == []
    source.unlink()
    assert stored.read_bytes() == b"wheel bytes"
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == {"sha256": "x"}


def test_put_file_copies_across_file_systems(tmp_path, monkeypatch):
    storage = FileStorage(str(tmp_path / "packages"))
    source = tmp_path / "spooled"
    source.write_bytes(b"wheel bytes")
    real_link = os.link

    def cross_device(src, dst, *args, **kwargs):
        if str(src) == str(source):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", cross_device)
    storage.put_file("demo", "demo-1.0.tar.gz", str(source), {"sha256": "x"})
    stored = tmp_path / "packages" / "demo" / "demo-1.0.tar.gz"
    assert os.stat(stored).st_ino != os.stat(source).st_ino
    assert stored.read_bytes() == b"wheel bytes"
    assert storage.stat("demo", "demo-1.0.tar.gz").metadata == {"sha256": "x"}
    assert [p.name for p in stored.parent.iterdir() if ".tmp-" in p.name] == []


def test_the_content_token_changes_whenever_the_bytes_may_have(tmp_path):
    """What the ``.metadata`` cache keys on (pypicloud/metadata_files.py): one stat."""
    storage = FileStorage(str(tmp_path))
    name = "demo-1.0-py3-none-any.whl.metadata"
    assert storage.content_token("demo", name) is None  # not there
    storage.put_companion("demo", name, b"Name: demo\n", {})
    first = storage.content_token("demo", name)
    assert first is not None and storage.content_token("demo", name) == first
    storage.put_companion("demo", name, b"Name: demo\n", {})  # written again: a new file
    second = storage.content_token("demo", name)
    assert second != first
    path = tmp_path / "demo" / name
    with open(path, "r+b") as handle:  # damaged in place: same inode, other size
        handle.truncate(3)
    assert storage.content_token("demo", name) not in (first, second)
    path.unlink()
    assert storage.content_token("demo", name) is None


def test_an_early_fsync_of_the_spool_still_comes_before_the_name(tmp_path, monkeypatch):
    """The spool's fsync runs in the background, but the file is named only after it
    ended, and put_file returns only after the folder's fsync (which the companion's
    write overlaps) ended too."""
    events: list[tuple[str, object]] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd):
        time.sleep(0.05)  # a slow disk: the early fsync is still running when publishing starts
        real_fsync(fd)
        st = os.fstat(fd)
        events.append(("synced", "folder" if stat.S_ISDIR(st.st_mode) else st.st_ino))

    def link(src, dst, *args, **kwargs):
        real_link(src, dst, *args, **kwargs)
        events.append(("named", os.path.basename(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    storage = FileStorage(str(tmp_path / "packages"))
    spool = SpooledUpload.writer(None, str(tmp_path))
    spool.write(b"wheel bytes")
    spool.finish()
    inode = os.stat(spool.path).st_ino
    assert storage.publishes_in_place(spool.path)
    spool.sync_soon()
    companion = ("demo-1.0.tar.gz.metadata", b"Metadata-Version: 2.2\n", {"sha256": "m"})
    storage.put_file("demo", "demo-1.0.tar.gz", spool.path, {}, synced=spool.wait_synced, companion=companion)
    events.append(("returned", None))
    spool.remove()
    assert events.index(("synced", inode)) < events.index(("named", "demo-1.0.tar.gz"))
    assert events.index(("named", "demo-1.0.tar.gz")) < events.index(("synced", "folder"))
    assert events.index(("synced", "folder")) < events.index(("returned", None))
    assert (tmp_path / "packages" / "demo" / "demo-1.0.tar.gz.metadata").read_bytes() == companion[1]


def test_taking_name_locks_creates_no_file_per_name(tmp_path):
    storage = FileStorage(str(tmp_path))
    for n in range(40):
        storage.put("demo", f"demo-{n}.tar.gz", io.BytesIO(b"data"), {})
        storage.put_companion("demo", f"demo-{n}.tar.gz.metadata", b"meta", {})
    storage.update_metadata("demo", "demo-1.tar.gz", {"yanked": "true"})
    assert [p.name for p in (tmp_path / "demo").iterdir() if p.name.endswith(".lock")] == []
    locks = [p.name for p in tmp_path.iterdir() if p.name.startswith(file_writes.LOCK_PREFIX)]
    assert 0 < len(locks) <= file_writes.LOCK_STRIPES


def test_a_companion_keeps_no_sidecar_and_an_older_one_goes(tmp_path):
    """A PEP 658 file's metadata is never read (the index and its wheel's metadata name
    its sha256): file storage writes it no sidecar, one inode less per upload."""
    storage = FileStorage(str(tmp_path))
    name = "demo-1.0-py3-none-any.whl.metadata"
    old_sidecar = tmp_path / "demo" / f".{name}.meta"
    old_sidecar.parent.mkdir()
    old_sidecar.write_text('{"sha256": "stale"}')  # as an earlier version wrote it
    stored = storage.put_companion("demo", name, b"Name: demo\n", {"sha256": "abc"})
    assert stored.metadata == {} and storage.stat("demo", name).metadata == {}
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [name]
    with storage.open("demo", name) as stream:
        assert stream.read() == b"Name: demo\n"
    assert [o.filename for o in storage.list()] == [name]
