"""Retention and the audit log of a real server installed from the wheel (issue 18,
parts 3 and 6; docs/retention.md, docs/audit.md).

twine uploads three releases of Acme.Widget and two of another project to waitress.
The installed ``ppc-cleanup`` first lists what the ini's policy would delete and
deletes nothing, then deletes it while the server runs on the same SQLite index:
the server's pages and pip see the old release go at once, the newest and the
pinned release stay, the other project is untouched. The installed ``ppc-audit``
and the server's ``/admin/audit.jsonl`` show the deletes and the runs, to admins only.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import index_url, ok, pip_cmd, run, simple_files, stored_packages, twine_upload
from tests.fixtures.installed import installed_bin
from tests.fixtures.server import DistSet, child_env

pytestmark = pytest.mark.e2e

RETENTION = {
    "retention.old.projects": "acme-widget",
    "retention.old.keep_latest": "1",
    "retention.keep": "acme-widget==1.0",
}


def installed_cli(name: str, ini: Path, *argv: str) -> subprocess.CompletedProcess:
    """A console script of the installed wheel; stdout and stderr apart."""
    return subprocess.run(
        [str(installed_bin() / name), str(ini), *argv],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def listed(stdout: str) -> set[tuple[str, str, str]]:
    """(project, version, filename) of each line ``ppc-cleanup`` prints."""
    found = set()
    for line in stdout.splitlines():
        project, version, filename, _ = line.split(" ", 3)
        found.add((project, version, filename))
    return found


def pip_download(srv, cenv, dest: Path, requirement: str) -> subprocess.CompletedProcess:
    return run(
        pip_cmd(
            "download",
            "--no-deps",
            "--no-cache-dir",
            "-d",
            str(dest),
            "--index-url",
            index_url(srv),
            requirement,
        ),
        cenv,
    )


def test_ppc_cleanup_dry_run_then_deletes_what_the_policy_says_and_the_audit_log_shows_it(
    server_factory, dists, cenv, tmp_path
):
    srv = server_factory(RETENTION)
    (tmp_path / "other").mkdir()
    other = DistSet(tmp_path / "other", "Other.Gadget")
    widget = {v: dists.build(v) for v in ("1.0", "1.1", "1.2")}
    ok(twine_upload(srv, [f for files in widget.values() for f in files], cenv))
    ok(twine_upload(srv, [*other.build("1.0"), *other.build("2.0")], cenv))
    all_widget = {f.name for files in widget.values() for f in files}
    all_other = {f.name for v in ("1.0", "2.0") for f in other.build(v)}
    assert set(simple_files(srv, "acme-widget") or {}) == all_widget
    doomed = {("acme-widget", "1.1", f.name) for f in widget["1.1"]}

    # --dry-run: lists exactly release 1.1 (1.0 is pinned, 1.2 is the newest), deletes nothing.
    dry = installed_cli("ppc-cleanup", srv.ini_path, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert listed(dry.stdout) == doomed
    assert all(": old: not among the newest 1 releases" in line for line in dry.stdout.splitlines())
    assert "would delete 2 files" in dry.stderr
    assert set(simple_files(srv, "acme-widget") or {}) == all_widget
    assert set(stored_packages(srv, "acme-widget")) == all_widget
    ok(pip_download(srv, cenv, tmp_path / "dry", "acme-widget==1.1"))
    assert [p.name for p in (tmp_path / "dry").iterdir()] == [widget["1.1"][0].name]

    # --yes: 1.1 goes, from storage and from the running server's pages, at once.
    applied = installed_cli("ppc-cleanup", srv.ini_path, "--yes")
    assert applied.returncode == 0, applied.stderr
    assert listed(applied.stdout) == doomed
    assert "deleted 2 files" in applied.stderr
    kept = {f.name for v in ("1.0", "1.2") for f in widget[v]}
    assert set(simple_files(srv, "acme-widget") or {}) == kept
    assert set(stored_packages(srv, "acme-widget")) == kept
    assert set(simple_files(srv, "other-gadget") or {}) == all_other
    assert set(stored_packages(srv, "other-gadget")) == all_other
    gone = pip_download(srv, cenv, tmp_path / "gone", "acme-widget==1.1")
    assert gone.returncode != 0 and "No matching distribution" in gone.stdout, gone.stdout
    for version in ("1.0", "1.2"):
        ok(pip_download(srv, cenv, tmp_path / version, f"acme-widget=={version}"))
        assert [p.name for p in (tmp_path / version).iterdir()] == [widget[version][0].name]

    # ppc-audit: one file.delete per deleted file, by retention; the dry run deleted nothing.
    audit = installed_cli("ppc-audit", srv.ini_path, "--action", "file.delete")
    assert audit.returncode == 0, audit.stderr
    deletes = [json.loads(line) for line in audit.stdout.splitlines() if line.strip()]
    assert {(e["project"], e["version"], e["filename"]) for e in deletes} == doomed
    assert len(deletes) == 2 and {e["actor"] for e in deletes} == {"retention"}

    # The server's export: both runs, newest first, to an admin only.
    path = "/admin/audit.jsonl?action=retention.run"
    status, headers, body = srv.request("GET", path, user="admin")
    assert status == 200, body[:300]
    assert headers["Content-Type"].startswith("application/x-ndjson")
    runs = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    assert [(e["action"], e["actor"]) for e in runs] == [("retention.run", "retention")] * 2
    real, dry_event = (e["detail"] for e in runs)
    assert real["policies"] == ["old"] and real["dry_run"] is False
    assert (real["planned"], real["deleted"], real["already_gone"], real["failed"]) == (2, 2, 0, 0)
    assert dry_event["dry_run"] is True and (dry_event["planned"], dry_event["deleted"]) == (2, 0)
    assert srv.request("GET", path)[0] == 401
    assert srv.request("GET", path, user="alice")[0] == 403
