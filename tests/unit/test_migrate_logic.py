"""ppc-migrate's pure parts: the byte check on the way through, decisions, the progress bar."""

from __future__ import annotations

import hashlib
import io

import pytest

from pypicloud.cli import migrate
from pypicloud.cli.common import Progress
from pypicloud.models import StoredObject
from pypicloud.storage.file import FileStorage

DATA = b"x" * 3000 + b"y" * 3000


def reader(data=DATA, size=None, sha256="right"):
    if sha256 == "right":
        sha256 = hashlib.sha256(DATA).hexdigest()
    return migrate._VerifyingReader(io.BytesIO(data), len(DATA) if size is None else size, sha256)


def read_all(stream, chunk=1000) -> bytes:
    parts = []
    while True:
        block = stream.read(chunk)
        if not block:
            return b"".join(parts)
        parts.append(block)


def test_verifying_reader_passes_the_bytes_through():
    stream = reader()
    assert read_all(stream) == DATA
    assert stream.finished and stream.count == len(DATA)
    stream.drain()  # nothing left; already checked


def test_read_everything_at_once():
    stream = reader()
    assert stream.read() == DATA
    assert stream.read() == b""
    assert stream.finished


@pytest.mark.parametrize(
    "data,size,digest,message",
    [
        (DATA[:-1], None, "right", "read 5999 bytes"),
        (DATA + b"z", None, "right", "more than"),
        (DATA[::-1], None, "right", "do not match the sha256"),
    ],
)
def test_verifying_reader_fails_at_the_end_on_a_mismatch(data, size, digest, message):
    stream = reader(data, size, digest)
    with pytest.raises(migrate.BadSource, match=message):
        read_all(stream)
    assert not stream.finished


def test_without_a_listed_sha256_only_the_size_is_checked():
    stream = reader(DATA[::-1], sha256=None)
    assert read_all(stream) == DATA[::-1]
    assert stream.sha256 == hashlib.sha256(DATA[::-1]).hexdigest()


def test_a_mismatch_stops_a_real_put(tmp_path):
    storage = FileStorage(str(tmp_path))
    with pytest.raises(migrate.BadSource):
        storage.put("demo", "demo.whl", reader(DATA[::-1]), {})
    assert storage.stat("demo", "demo.whl") is None
    assert [p.name for p in (tmp_path / "demo").iterdir() if ".tmp-" in p.name] == []


def stored(project="demo", filename="demo.whl", data=DATA, **metadata):
    return StoredObject(
        project=project,
        filename=filename,
        size=len(data),
        metadata={"sha256": hashlib.sha256(data).hexdigest(), **metadata},
    )


def test_decisions(tmp_path):
    source = FileStorage(str(tmp_path / "src"))
    dest = FileStorage(str(tmp_path / "dst"))
    for name, data in (("same.whl", DATA), ("yanked.whl", DATA), ("other.whl", DATA), ("new.whl", DATA)):
        source.put("demo", name, io.BytesIO(data), stored(filename=name).metadata)
    dest.put("demo", "same.whl", io.BytesIO(DATA), stored().metadata)
    dest.put("demo", "yanked.whl", io.BytesIO(DATA), stored().metadata)
    source.update_metadata("demo", "yanked.whl", stored(yanked="bad").metadata)
    dest.put("demo", "other.whl", io.BytesIO(b"other"), stored(data=b"other").metadata)
    existing = {(o.project, o.filename): o for o in dest.list()}
    objects = sorted(source.list(), key=lambda o: o.filename)

    dry = migrate.Migration(source, dest, dict(existing), dry_run=True)
    assert [(o.filename, dry.run_one(o).kind) for o in objects] == [
        ("new.whl", "would-copy"),
        ("other.whl", "conflict"),
        ("same.whl", "present"),
        ("yanked.whl", "would-update"),
    ]

    real = migrate.Migration(source, dest, dict(existing))
    outcomes = {o.filename: real.run_one(o) for o in objects}
    assert {k: v.kind for k, v in outcomes.items()} == {
        "new.whl": "copied",
        "other.whl": "conflict",
        "same.whl": "present",
        "yanked.whl": "updated",
    }
    assert "5 bytes, source 6000" in outcomes["other.whl"].detail
    assert dest.stat("demo", "yanked.whl").metadata["yanked"] == "bad"
    with dest.open("demo", "other.whl") as kept:
        assert kept.read() == b"other"

    forced = migrate.Migration(
        source, dest, {(o.project, o.filename): o for o in dest.list()}, overwrite=True
    )
    other = next(o for o in objects if o.filename == "other.whl")
    assert forced.run_one(other).kind == "replaced"
    with dest.open("demo", "other.whl") as replaced:
        assert replaced.read() == DATA


def test_same_bytes_hashes_when_metadata_has_no_sha256(tmp_path):
    source = FileStorage(str(tmp_path / "src"))
    dest = FileStorage(str(tmp_path / "dst"))
    source.put("demo", "a.whl", io.BytesIO(DATA), {})
    dest.put("demo", "a.whl", io.BytesIO(DATA), {})
    dest.put("demo", "b.whl", io.BytesIO(DATA[::-1]), {})
    source.put("demo", "b.whl", io.BytesIO(DATA), {})
    migration = migrate.Migration(source, dest, {})
    assert migration.same_bytes(source.stat("demo", "a.whl"), dest.stat("demo", "a.whl"))
    assert not migration.same_bytes(source.stat("demo", "b.whl"), dest.stat("demo", "b.whl"))


def test_sizes_for_people():
    assert migrate._size(0) == "0 bytes"
    assert migrate._size(1536) == "1.5 KB"
    assert migrate._size(5 * 1024**3) == "5.0 GB"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_notes_do_not_garble_it():
    stream, stdout = FakeTerminal(), FakeTerminal()
    progress = Progress("copying", 4, stream=stream)
    progress.redraw_interval = 0
    progress.step(detail="1.0 KB")
    progress.note("conflict demo/x.whl")
    progress.note("copied demo/y.whl", stdout)
    progress.step(3)
    progress.finish("done")
    text = stream.getvalue()
    bar = "\rcopying [#######-----------------------] 1/4 1.0 KB\x1b[K"
    assert text.startswith(bar + "\r\x1b[Kconflict demo/x.whl\n" + bar + "\r\x1b[K" + bar)
    assert stdout.getvalue() == "copied demo/y.whl\n"
    assert "copying [##############################] 4/4 1.0 KB" in text
    assert text.endswith("\r\x1b[Kdone\n")


def test_progress_without_a_terminal_prints_only_notes_and_the_summary():
    stream = io.StringIO()
    progress = Progress("copying", 2, stream=stream)
    progress.step()
    progress.note("failed demo/x.whl: boom")
    progress.step()
    progress.finish("done")
    assert stream.getvalue() == "failed demo/x.whl: boom\ndone\n"


def test_copy_streams_without_holding_the_file_in_memory(tmp_path):
    import tracemalloc

    size = 24 * 1024 * 1024
    source = FileStorage(str(tmp_path / "src"), fsync=False)
    dest = FileStorage(str(tmp_path / "dst"), fsync=False)
    digest = hashlib.sha256()
    block = bytes(range(256)) * 4096  # 1 MB
    path = tmp_path / "big.whl"
    with open(path, "wb") as out:
        for _ in range(size // len(block)):
            out.write(block)
            digest.update(block)
    with open(path, "rb") as stream:
        source.put("big", "big.whl", stream, {"sha256": digest.hexdigest()})
    obj = source.stat("big", "big.whl")

    tracemalloc.start()
    try:
        outcome = migrate.Migration(source, dest, {}).run_one(obj)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.kind == "copied", outcome.detail
    assert dest.stat("big", "big.whl").size == size
    assert peak < 8 * 1024 * 1024, peak  # a few chunks, never the 24 MB file
