"""How often a folder is swept of dead writers' temp files (pypicloud/tempfiles.py)."""

from __future__ import annotations

import io
import os
import time

from pypicloud import tempfiles
from pypicloud.storage.file import FileStorage
from pypicloud.tempfiles import SweepSchedule


def test_a_folder_is_due_once_per_period(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(tempfiles.time, "monotonic", lambda: clock[0])
    schedule = SweepSchedule(every=60)
    assert schedule.due("/a")
    assert not schedule.due("/a")
    assert schedule.due("/b")  # each folder has its own period
    clock[0] += 59.9
    assert not schedule.due("/a")
    clock[0] += 0.2
    assert schedule.due("/a")


def test_file_storage_sweeps_a_busy_folder_once_a_minute_not_on_every_write(tmp_path, monkeypatch):
    listed = []
    real_sweep = tempfiles.sweep

    def counting_sweep(folder, is_temp, min_age=60.0):
        listed.append(folder)
        return real_sweep(folder, is_temp, min_age)

    monkeypatch.setattr(tempfiles, "sweep", counting_sweep)
    storage = FileStorage(str(tmp_path))
    for n in range(5):
        storage.put("demo", f"demo-{n}.tar.gz", io.BytesIO(b"data"), {})
    storage.put("other", "other-1.tar.gz", io.BytesIO(b"data"), {})
    assert listed == [str(tmp_path / "demo"), str(tmp_path / "other")]
    # A dead writer's file is still taken away on the first write after the period.
    dead = tmp_path / "demo" / ".demo-9.tar.gz.tmp-deadbeef"
    dead.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(dead, (old, old))
    storage._sweeps.every = 0.0
    storage.put("demo", "demo-9.tar.gz", io.BytesIO(b"data"), {})
    assert not dead.exists()
