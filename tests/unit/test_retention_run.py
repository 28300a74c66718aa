"""Applying retention: deletes as 'retention' through the service, reports a failed file
and goes on, and the schedule's lease (one run per slot), fork and failure handling."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from pypicloud.errors import BackendUnavailable
from pypicloud.models import Identity
from pypicloud.retention.config import Policy, RetentionConfig
from pypicloud.retention.run import run
from pypicloud.retention.schedule import RetentionSchedule
from pypicloud.service import PackageIndex
from pypicloud.upstream.policy import UPSTREAM_UPLOADER
from tests.builders import make_wheel
from tests.fakes import IndexStore, MemoryAccess, MemoryIndex, MemoryStorage

CONFIG = RetentionConfig(policies=(Policy("p", keep_latest=1),), schedule=3600)


def build(store: IndexStore | None = None) -> PackageIndex:
    access = MemoryAccess(default_read=["authenticated"], default_write=[])
    return PackageIndex(MemoryStorage(), MemoryIndex(store), access)


def publish(service: PackageIndex, *versions: str) -> None:
    for version in versions:
        filename, data = make_wheel("demo", version)
        service.upload(
            Identity("admin", is_admin=True),
            name="demo",
            version=version,
            filename=filename,
            content=io.BytesIO(data),
        )


def test_run_deletes_as_retention_and_reports_a_failure_then_goes_on(monkeypatch):
    service = build()
    publish(service, "1.0", "1.1", "2.0")
    events: list = []
    service.events.subscribe(events.append)
    real = service.storage.delete

    def delete(project, filename):
        if filename == "demo-1.0-py3-none-any.whl":
            raise BackendUnavailable("disk on fire")
        real(project, filename)

    monkeypatch.setattr(service.storage, "delete", delete)
    report = run(service, CONFIG)
    assert [d.record.filename for d in report.deleted] == ["demo-1.1-py3-none-any.whl"]
    assert [(d.record.filename, error) for d, error in report.failed] == [
        ("demo-1.0-py3-none-any.whl", "disk on fire")
    ]
    assert sorted(r.filename for r in service.index.all_records()) == [
        "demo-1.0-py3-none-any.whl",
        "demo-2.0-py3-none-any.whl",
    ]
    assert [(e.action, e.actor) for e in events] == [
        ("file.delete", "retention"),
        ("retention.run", "retention"),
    ]
    assert events[-1].detail["failed"] == 1 and events[-1].detail["dry_run"] is False


def test_dry_run_deletes_nothing():
    service = build()
    publish(service, "1.0", "2.0")
    report = run(service, CONFIG, dry_run=True, now=datetime.now(UTC) + timedelta(days=1))
    assert [d.record.filename for d in report.planned] == ["demo-1.0-py3-none-any.whl"]
    assert report.deleted == [] and service.index.count() == 2


def test_the_lease_gives_each_slot_to_one_schedule():
    store = IndexStore()
    clock = [7200.0]
    schedules = [RetentionSchedule(build(store), CONFIG, clock=lambda: clock[0]) for _ in range(2)]
    assert [s.lease() for s in schedules] == [True, False]
    clock[0] += 3600  # the next slot
    assert [s.lease() for s in schedules] == [True, False]


def test_a_schedule_copied_by_fork_does_nothing(monkeypatch):
    service = build()
    publish(service, "1.0", "2.0")
    schedule = RetentionSchedule(service, CONFIG)
    schedule._after_fork()
    monkeypatch.setattr("os.getpid", lambda: -1)
    assert schedule.tick() is None
    assert service.index.count() == 2
    schedule.start()
    schedule.stop()
    assert not schedule.running


def test_a_failing_tick_is_logged_not_raised(monkeypatch, caplog):
    service = build()
    schedule = RetentionSchedule(service, CONFIG)

    def down(*args, **kwargs):
        raise ConnectionError("index down")

    monkeypatch.setattr(service.index, "incr_counter", down)
    assert schedule.tick() is None
    assert "index down" in caplog.text


def test_a_schedule_needs_an_interval():
    with pytest.raises(ValueError):
        RetentionSchedule(build(), RetentionConfig())


def test_files_cached_from_upstream_are_not_retention_s_business():
    service = build()
    publish(service, "2.0")
    cached = service.index.get("demo-2.0-py3-none-any.whl").replace(
        filename="demo-1.0-py3-none-any.whl", version="1.0", uploader=UPSTREAM_UPLOADER
    )
    service.index.add(cached)
    assert run(service, CONFIG, dry_run=True).planned == []
