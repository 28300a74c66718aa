"""The repair step of the write protocol (docs/architecture.md): every open intent
makes the index row of its file agree with storage, then goes away."""

from __future__ import annotations

from datetime import UTC

from tests.functional.helpers import file_record, make_wheel, service, simple_json, stored_path, upload_dist


def _open_intents(svc):
    from datetime import datetime, timedelta

    return svc.index.open_intents(datetime.now(UTC) + timedelta(seconds=1))


def test_repair_adds_the_row_of_bytes_stored_by_a_crashed_upload(app):
    svc = service(app)
    filename, data = make_wheel("demo", "1.0")
    upload_dist(app, (filename, data))
    row = file_record(app, filename)
    # What a writer killed after its storage write leaves: bytes, no row, an intent.
    svc.index.remove(filename)
    svc.index.begin_intent("upload", "demo", filename)
    assert svc.repair() == 1
    repaired = file_record(app, filename)
    assert (repaired.sha256, repaired.size, repaired.version) == (row.sha256, row.size, "1.0")
    assert [f["filename"] for f in simple_json(app, "/simple/demo/").json["files"]] == [filename]
    assert _open_intents(svc) == []


def test_repair_removes_the_row_of_a_half_finished_delete(app):
    svc = service(app)
    keep, other = make_wheel("demo", "1.0"), make_wheel("demo", "1.1")
    upload_dist(app, keep)
    upload_dist(app, other)
    filename = other[0]
    svc.index.begin_intent("delete", "demo", filename)
    svc.storage.delete("demo", filename)  # bytes gone, companion and row still there
    assert svc.storage.stat("demo", filename + ".metadata") is not None
    assert svc.repair() == 1
    assert file_record(app, filename) is None
    assert svc.storage.stat("demo", filename + ".metadata") is None
    assert [f["filename"] for f in simple_json(app, "/simple/demo/").json["files"]] == [keep[0]]


def test_repair_makes_the_index_follow_a_yank_in_storage(app):
    svc = service(app)
    filename, data = make_wheel("demo", "1.0")
    upload_dist(app, (filename, data))
    stored = svc.storage.stat("demo", filename)
    svc.index.begin_intent("yank", "demo", filename)
    svc.storage.update_metadata("demo", filename, {**stored.metadata, "yanked": "broken"})
    assert svc.repair() == 1
    record = file_record(app, filename)
    assert record.yanked and record.yanked_reason == "broken"
    assert record.summary == "A test package"


def test_repair_leaves_young_intents_and_consistent_files_alone(app):
    svc = service(app)
    filename, data = make_wheel("demo", "1.0")
    upload_dist(app, (filename, data))
    before = svc.index.generation()
    intent = svc.index.begin_intent("upload", "demo", filename)
    assert svc.repair(grace=3600) == 0  # maybe a write still running elsewhere
    assert [i.id for i in _open_intents(svc)] == [intent]
    assert svc.repair() == 1  # settled: nothing to change
    assert svc.index.generation() == before
    assert stored_path(app, "demo", filename).read_bytes() == data


def test_only_one_repair_runs_at_a_time(app):
    svc = service(app)
    svc.index.begin_intent("upload", "demo", "demo-1.0-py3-none-any.whl")
    with svc.index.repair_lock() as mine:
        assert mine
        assert svc.repair() is None  # another holder: this one does nothing
    assert len(_open_intents(svc)) == 1
    assert svc.repair() == 1


def test_an_upload_after_a_half_finished_delete_stores_the_file_again(app):
    svc = service(app)
    filename, data = make_wheel("demo", "1.0")
    upload_dist(app, (filename, data))
    svc.storage.delete("demo", filename)  # the row stayed (index write failed)
    response = upload_dist(app, (filename, data))
    assert response.status_int == 200 and "Already" not in response.text
    assert stored_path(app, "demo", filename).read_bytes() == data
    assert file_record(app, filename).sha256 == svc.storage.stat("demo", filename).metadata["sha256"]
