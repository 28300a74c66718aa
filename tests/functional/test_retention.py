"""Retention policies end to end: ppc-cleanup's dry run and run against file storage and
SQLite, the pins, the events, bad settings, and the schedule's one run per interval."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import pypicloud.ingest
from pypicloud.cli import cleanup
from pypicloud.errors import ConfigError
from pypicloud.retention.run import RunReport
from tests.builders import make_sdist, make_wheel
from tests.functional.helpers import (
    base_settings,
    basic,
    registry,
    service,
    simple_json,
    storage_files,
    upload_dist,
)
from tests.threads import run_together

NOW = datetime.now(UTC)

POLICIES = {
    "retention.demo.projects": "demo",
    "retention.demo.keep_latest": "2",
    "retention.demo.prerelease_days": "30",
    "retention.demo.yanked_days": "60",
    "retention.keep": "demo==1.0",
}

# (version, age in days, yanked): what is uploaded to project "demo", plus "other" 0.1 and 0.2.
RELEASES = [
    ("1.0", 400, False),  # pinned: stays although below the newest 2
    ("1.1", 300, False),  # below the newest 2: goes (wheel and sdist)
    ("1.2", 200, True),  # yanked 200 days ago: goes
    ("2.0", 100, False),  # the latest final: stays
    ("2.1a1", 40, False),  # pre-release older than 30 days: goes
    ("2.1b1", 5, False),  # newest: stays
]
GOING = [
    "demo-1.1-py3-none-any.whl",
    "demo-1.1.tar.gz",
    "demo-1.2-py3-none-any.whl",
    "demo-2.1a1-py3-none-any.whl",
]


def upload_at(app, monkeypatch, dist, days: float) -> None:
    monkeypatch.setattr(pypicloud.ingest, "utcnow", lambda: NOW - timedelta(days=days))
    upload_dist(app, dist)
    monkeypatch.undo()


@pytest.fixture
def populated(make_app, monkeypatch):
    app = make_app(POLICIES)
    for version, days, yanked in RELEASES:
        upload_at(app, monkeypatch, make_wheel("demo", version), days)
        if version == "1.1":
            upload_at(app, monkeypatch, make_sdist("demo", version), days)
        if yanked:
            name = f"demo-{version}-py3-none-any.whl"
            app.post(f"/api/package/demo/{name}/yank", params={"reason": "bad"}, headers=basic("admin"))
    for version in ("0.1", "0.2"):
        upload_at(app, monkeypatch, make_wheel("other", version), 500)
    return app


def write_ini(tmp_path: Path, extra: dict[str, str]) -> Path:
    settings = {**base_settings(tmp_path), **extra}
    ini = tmp_path / "cleanup.ini"
    lines = ["[app:main]", "use = egg:pypicloud"]
    for key, value in settings.items():
        value = value.replace("\n", "\n    ")
        lines.append(f"{key} = {value}")
    ini.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ini


def served(app, project: str = "demo") -> list[str]:
    return sorted(f["filename"] for f in simple_json(app, f"/simple/{project}/").json["files"])


def stored(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in storage_files(tmp_path / "packages") if not p.name.endswith(".metadata"))


@pytest.fixture
def events(monkeypatch):
    """Every event the CLI's service publishes."""
    seen: list = []
    real = cleanup.build_services

    def build(settings):
        services = real(settings)
        services.service.events.subscribe(seen.append)
        return services

    monkeypatch.setattr(cleanup, "build_services", build)
    return seen


def test_dry_run_lists_and_deletes_nothing(populated, tmp_path, capsys, events):
    before_served, before_stored = served(populated), stored(tmp_path)
    assert cleanup.main([str(write_ini(tmp_path, POLICIES)), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    listed = [line.split()[2] for line in out.splitlines()]
    assert listed == GOING
    assert "demo 1.1 demo-1.1.tar.gz" in out and "not among the newest 2 releases" in out
    assert "yanked" in out and "pre-release" in out
    assert f"would delete {len(GOING)} files" in err
    assert served(populated) == before_served
    assert stored(tmp_path) == before_stored
    assert [(e.action, e.actor, e.detail["dry_run"], e.detail["planned"]) for e in events] == [
        ("retention.run", "retention", True, len(GOING))
    ]


def test_yes_deletes_exactly_the_planned_files(populated, tmp_path, capsys, events):
    before = stored(tmp_path)
    assert cleanup.main([str(write_ini(tmp_path, POLICIES)), "--yes"]) == 0
    err = capsys.readouterr().err
    assert f"deleted {len(GOING)} files" in err
    assert stored(tmp_path) == sorted(set(before) - set(GOING))
    assert served(populated) == sorted(
        ["demo-1.0-py3-none-any.whl", "demo-2.0-py3-none-any.whl", "demo-2.1b1-py3-none-any.whl"]
    )
    assert served(populated, "other") == ["other-0.1-py3-none-any.whl", "other-0.2-py3-none-any.whl"]
    deletes = [e for e in events if e.action == "file.delete"]
    assert sorted(e.filename for e in deletes) == GOING
    assert {e.actor for e in deletes} == {"retention"}
    summary = [e for e in events if e.action == "retention.run"]
    assert [(e.detail["dry_run"], e.detail["deleted"], e.detail["policies"]) for e in summary] == [
        (False, len(GOING), ["demo"])
    ]
    # A second run finds nothing more to do.
    assert cleanup.main([str(write_ini(tmp_path, POLICIES)), "--yes"]) == 0
    assert "nothing to delete" in capsys.readouterr().err


def test_without_yes_and_no_terminal_nothing_is_deleted(populated, tmp_path, capsys):
    before = stored(tmp_path)
    assert cleanup.main([str(write_ini(tmp_path, POLICIES))]) == 3
    assert "--yes" in capsys.readouterr().err
    assert stored(tmp_path) == before


def test_policy_option_and_unknown_policy(populated, tmp_path, capsys):
    extra = {**POLICIES, "retention.others.projects": "other", "retention.others.keep_latest": "1"}
    ini = str(write_ini(tmp_path, extra))
    assert cleanup.main([ini, "--dry-run", "--policy", "others"]) == 0
    assert capsys.readouterr().out.split()[2] == "other-0.1-py3-none-any.whl"
    assert cleanup.main([ini, "--dry-run", "--policy", "nosuch"]) == 2
    assert "retention.nosuch" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("key", "value"),
    [("retention.demo.keep_latest", "none"), ("retention.keep", "demo=1"), ("retention.schedule", "daily")],
)
def test_bad_settings_stop_the_cli_and_the_server(make_app, tmp_path, capsys, key, value):
    settings = {**POLICIES, key: value}
    assert cleanup.main([str(write_ini(tmp_path, settings))]) == 2
    assert key in capsys.readouterr().err
    with pytest.raises(ConfigError, match=key):
        make_app(settings)


def test_schedule_runs_once_per_interval_across_processes(make_app, monkeypatch, tmp_path):
    """Two apps sharing one SQLite index tick at the same moment: one of them runs."""
    first = make_app({**POLICIES, "retention.schedule": "1h"})
    for version, days, _ in RELEASES[:4]:
        upload_at(first, monkeypatch, make_wheel("demo", version), days)
    second = make_app({**POLICIES, "retention.schedule": "1h"})
    schedules = [registry(app).services.retention_schedule for app in (first, second)]
    try:
        assert all(s.running for s in schedules)
        seen: list = []
        for app, schedule in zip((first, second), schedules, strict=True):
            service(app).events.subscribe(seen.append)
            schedule.clock = lambda: 1_800_000_000.0  # the same slot, whatever the time
        outcomes = run_together([s.tick for s in schedules])
        reports = [o for o in outcomes if isinstance(o, RunReport)]
        assert outcomes.count(None) == 1 and len(reports) == 1, outcomes
        assert [d.record.filename for d in reports[0].deleted] == ["demo-1.1-py3-none-any.whl"]
        assert [e.action for e in seen] == ["file.delete", "retention.run"]
    finally:
        for schedule in schedules:
            schedule.stop()
    assert not any(s.running for s in schedules)


def test_the_schedule_thread_ticks_and_stops(make_app):
    app = make_app({**POLICIES, "retention.schedule": "1h"})
    schedule = registry(app).services.retention_schedule
    ticked = threading.Event()
    schedule.stop()
    schedule._stop = threading.Event()
    schedule.interval = 0.01  # the loop's wait (the tick below takes no lease)
    schedule.tick = ticked.set  # type: ignore[method-assign]
    schedule.start()
    try:
        assert ticked.wait(30)
    finally:
        schedule.stop()
    assert not schedule.running
