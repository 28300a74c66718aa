"""The retention planner: which files each rule deletes, what pins and patterns keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pypicloud.models import FileRecord
from pypicloud.retention.config import Policy, parse_pins
from pypicloud.retention.plan import plan

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def rec(
    version: str, days: float = 1, *, project: str = "demo", yanked: bool = False, kind: str = "whl"
) -> FileRecord:
    suffix = "-py3-none-any.whl" if kind == "whl" else ".tar.gz"
    return FileRecord(
        project=project,
        name=project,
        version=version,
        filename=f"{project}-{version}{suffix}",
        size=100,
        sha256="0" * 64,
        upload_time=NOW - timedelta(days=days),
        yanked=yanked,
    )


def names(deletions) -> list[str]:
    return [d.record.filename for d in deletions]


def wheels(*versions: str, project: str = "demo") -> list[str]:
    return [f"{project}-{v}-py3-none-any.whl" for v in versions]


# (id, records, policies, pins, expected deleted wheels of "demo")
CASES = [
    (
        "keep_latest keeps the newest N by PEP 440, not by upload time",
        [rec("1.0", 1), rec("1.10", 50), rec("1.9", 2), rec("2.0", 60)],
        [Policy("p", keep_latest=2)],
        "",
        wheels("1.0", "1.9"),
    ),
    (
        "keep_latest counts pre-releases, but the latest final release stays",
        [rec("1.0"), rec("2.0a1"), rec("2.0b1"), rec("2.0rc1")],
        [Policy("p", keep_latest=2)],
        "",
        wheels("2.0a1"),
    ),
    (
        "keep_latest_final = false lets the latest final go",
        [rec("1.0"), rec("2.0a1"), rec("2.0b1"), rec("2.0rc1")],
        [Policy("p", keep_latest=2, keep_latest_final=False)],
        "",
        wheels("1.0", "2.0a1"),
    ),
    (
        "a yanked final release is not the protected latest",
        [rec("1.0"), rec("2.0", yanked=True), rec("3.0a1"), rec("3.0a2")],
        [Policy("p", keep_latest=1)],
        "",
        wheels("2.0", "3.0a1"),
    ),
    (
        "prerelease_days deletes old pre- and dev releases only",
        [rec("1.0", 90), rec("1.1a1", 40), rec("1.1.dev3", 31), rec("1.1rc1", 29), rec("0.9b1", 10)],
        [Policy("p", prerelease_days=30)],
        "",
        wheels("1.1.dev3", "1.1a1"),
    ),
    (
        "prerelease_days judges a release by its newest file",
        [rec("1.0a1", 40), rec("1.0a1", 5, kind="sdist")],
        [Policy("p", prerelease_days=30)],
        "",
        [],
    ),
    (
        "yanked_days deletes yanked files uploaded more than D days ago",
        [rec("1.0", 100, yanked=True), rec("1.1", 5, yanked=True), rec("1.2", 100)],
        [Policy("p", yanked_days=30)],
        "",
        wheels("1.0"),
    ),
    (
        "a project pin keeps every release",
        [rec("1.0", 100, yanked=True), rec("1.1"), rec("1.2")],
        [Policy("p", keep_latest=1, yanked_days=1)],
        "demo",
        [],
    ),
    (
        "a version pin keeps the matching releases (PEP 440 equality: 1.0 is 1.0.0)",
        [rec("1.0.0"), rec("1.1"), rec("1.2"), rec("1.3")],
        [Policy("p", keep_latest=1)],
        "demo==1.0\nother",
        wheels("1.1", "1.2"),
    ),
    (
        "a specifier pin keeps a range, pre-releases included",
        [rec("1.5a1", 90), rec("2.0a1", 90), rec("2.0")],
        [Policy("p", prerelease_days=30)],
        "demo>=1,<2  # the 1.x line",
        wheels("2.0a1"),
    ),
    (
        "patterns match canonical names; other projects are left alone",
        [rec("1.0", project="acme-a"), rec("2.0", project="acme-a"), rec("1.0"), rec("2.0")],
        [Policy("p", projects=("acme-*",), keep_latest=1)],
        "",
        wheels("1.0", project="acme-a"),
    ),
    (
        "versions that are not PEP 440 are never deleted by keep_latest or prerelease_days",
        [rec("nightly", 400), rec("1.0", 400), rec("2.0", 1)],
        [Policy("p", keep_latest=1, prerelease_days=1)],
        "",
        wheels("1.0"),
    ),
    (
        "yanked_days applies to an invalid version too (it is by file)",
        [rec("nightly", 400, yanked=True), rec("1.0")],
        [Policy("p", yanked_days=30)],
        "",
        wheels("nightly"),
    ),
    (
        "overlapping policies and rules delete a file once",
        [rec("1.0a1", 100, yanked=True), rec("1.0", 100), rec("2.0")],
        [Policy("b", keep_latest=1), Policy("a", yanked_days=10, prerelease_days=10)],
        "",
        wheels("1.0a1", "1.0"),
    ),
    (
        "no policy, nothing deleted",
        [rec("1.0", 1000, yanked=True)],
        [],
        "",
        [],
    ),
]


@pytest.mark.parametrize(
    ("records", "policies", "pins", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_plan(records, policies, pins, expected):
    result = plan(records, policies, parse_pins(pins), NOW)
    assert names(result) == expected


def test_overlap_keeps_the_first_policys_reason_and_orders_by_version():
    records = [rec("1.0a1", 100, yanked=True), rec("1.0", 100), rec("2.0")]
    policies = [Policy("b", keep_latest=1), Policy("a", yanked_days=10, prerelease_days=10)]
    result = plan(records, policies, (), NOW)
    assert [(d.record.version, d.policy, d.rule) for d in result] == [
        ("1.0a1", "a", "yanked_days"),
        ("1.0", "b", "keep_latest"),
    ]
    assert "newest 1 releases" in result[1].reason


def test_plan_orders_projects_and_every_file_of_a_release_goes():
    records = [
        rec("1.0", project="zed"),
        rec("1.0", kind="sdist"),
        rec("1.0"),
        rec("2.0"),
        rec("2.0", project="zed"),
    ]
    result = plan(records, [Policy("p", keep_latest=1)], (), NOW)
    assert names(result) == ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz", "zed-1.0-py3-none-any.whl"]
