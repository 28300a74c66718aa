"""What retention policies would delete: a pure function of the records, the policies,
the pins and the time (no I/O; the run and the dry run both start here).

Rules, for each project a policy's patterns match (docs/retention.md):

* ``yanked_days = D``: every yanked file uploaded more than D days ago.
* ``prerelease_days = D``: every file of a pre- or dev-release (PEP 440) whose
  newest file is more than D days old.
* ``keep_latest = N``: every file of a release below the newest N (PEP 440
  order, final or not).

Never deleted: a release a ``retention.keep`` pin protects; by the last two
rules, the newest final release that is not entirely yanked (unless the policy
says ``keep_latest_final = false``) and any version that is not PEP 440 (it
has no place in the order). A file several rules or policies hit is listed
once, with the first reason (policies by name; in a policy, the rules in the
order above).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from packaging.version import InvalidVersion, Version

from ..models import FileRecord
from .config import Pin, Policy


@dataclass(frozen=True)
class Deletion:
    """One file a policy deletes, and why (``reason`` is for people; ``rule`` the setting)."""

    record: FileRecord
    policy: str
    rule: str
    reason: str


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def matches(policy: Policy, project: str) -> bool:
    """True when one of the policy's patterns matches the canonical project name."""
    return any(fnmatchcase(project, pattern) for pattern in policy.projects)


@dataclass
class _Project:
    """One project's records grouped by PEP 440 release (invalid versions apart)."""

    name: str
    releases: dict[Version, list[FileRecord]]
    files: list[FileRecord]

    @classmethod
    def of(cls, name: str, records: list[FileRecord]) -> _Project:
        releases: dict[Version, list[FileRecord]] = defaultdict(list)
        for record in records:
            version = _version(record.version)
            if version is not None:
                releases[version].append(record)
        return cls(name, dict(releases), records)

    def newest_first(self) -> list[Version]:
        return sorted(self.releases, reverse=True)

    def latest_final(self) -> Version | None:
        """The newest final release with a file that is not yanked (what pip installs)."""
        for version in self.newest_first():
            if not version.is_prerelease and not all(r.yanked for r in self.releases[version]):
                return version
        return None


def plan(
    records: Iterable[FileRecord], policies: Sequence[Policy], pins: Sequence[Pin], now: datetime
) -> list[Deletion]:
    """Every file the policies delete at ``now``, by project, version (PEP 440) and filename."""
    by_project: dict[str, list[FileRecord]] = defaultdict(list)
    for record in records:
        by_project[record.project].append(record)
    chosen: dict[str, Deletion] = {}
    for name in sorted(by_project):
        project = _Project.of(name, by_project[name])
        for policy in sorted(policies, key=lambda p: p.name):
            if not matches(policy, name):
                continue
            for deletion in _policy_deletions(project, policy, pins, now):
                chosen.setdefault(deletion.record.filename, deletion)
    return sorted(chosen.values(), key=_order)


def _order(deletion: Deletion) -> tuple:
    record = deletion.record
    version = _version(record.version)
    return (record.project, version is not None, version or Version("0"), record.version, record.filename)


def _policy_deletions(
    project: _Project, policy: Policy, pins: Sequence[Pin], now: datetime
) -> list[Deletion]:
    def pinned(record: FileRecord) -> bool:
        version = _version(record.version)
        return any(pin.protects(project.name, version) for pin in pins)

    found: list[Deletion] = []
    if policy.yanked_days is not None:
        cutoff = now - timedelta(days=policy.yanked_days)
        reason = f"yanked, uploaded more than {policy.yanked_days} days ago"
        for record in project.files:
            if record.yanked and record.upload_time < cutoff and not pinned(record):
                found.append(Deletion(record, policy.name, "yanked_days", reason))
    protected = project.latest_final() if policy.keep_latest_final else None
    for version, rule, reason in _release_rules(project, policy, now):
        if version == protected:
            continue
        found.extend(
            Deletion(r, policy.name, rule, reason) for r in project.releases[version] if not pinned(r)
        )
    return found


def _release_rules(project: _Project, policy: Policy, now: datetime) -> list[tuple[Version, str, str]]:
    """(release, rule, reason) for every release ``prerelease_days`` or ``keep_latest`` hits."""
    hits: list[tuple[Version, str, str]] = []
    if policy.prerelease_days is not None:
        cutoff = now - timedelta(days=policy.prerelease_days)
        reason = f"pre-release, newest file more than {policy.prerelease_days} days old"
        for version, files in project.releases.items():
            if version.is_prerelease and max(f.upload_time for f in files) < cutoff:
                hits.append((version, "prerelease_days", reason))
    if policy.keep_latest is not None:
        reason = f"not among the newest {policy.keep_latest} releases"
        hits.extend((v, "keep_latest", reason) for v in project.newest_first()[policy.keep_latest :])
    return hits
