"""Files grouped into releases, ordered by PEP 440, and the release a reader should see first.

Pure functions of :class:`~pypicloud.models.FileRecord` lists: the web UI's project
page uses them, and so can any view that needs "the latest version".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from packaging.version import InvalidVersion, Version

from .models import FileRecord
from .project_info import ReleaseDetails


def version_key(text: str) -> tuple[int, Version, str]:
    """Sort key: valid versions by PEP 440 above every invalid one; invalid ones by text."""
    try:
        return (1, Version(text), "")
    except InvalidVersion:
        return (0, Version("0"), text)


def is_prerelease(text: str) -> bool:
    """A PEP 440 pre- or dev-release; an unparseable version counts as one (never 'latest' first)."""
    try:
        return Version(text).is_prerelease
    except InvalidVersion:
        return True


@dataclass(frozen=True)
class Release:
    """One version of a project and its files (wheels first, then sdists, by name)."""

    version: str
    files: tuple[FileRecord, ...]

    @property
    def prerelease(self) -> bool:
        return is_prerelease(self.version)

    @property
    def yanked(self) -> bool:
        """Every file yanked: installers skip the release unless pinned to it."""
        return all(f.yanked for f in self.files)

    @property
    def uploaded(self) -> datetime:
        return max(f.upload_time for f in self.files)

    @property
    def summary(self) -> str | None:
        """The summary of its newest file that has one."""
        for record in sorted(self.files, key=lambda f: f.upload_time, reverse=True):
            if record.summary:
                return record.summary
        return None

    @property
    def requires_python(self) -> str | None:
        return next((f.requires_python for f in self.files if f.requires_python), None)


def group_releases(records: list[FileRecord]) -> list[Release]:
    """The releases of one project's files, newest version first."""
    by_version: dict[str, list[FileRecord]] = {}
    for record in records:
        by_version.setdefault(record.version, []).append(record)
    return [
        Release(version, tuple(sorted(files, key=lambda f: (not f.filename.endswith(".whl"), f.filename))))
        for version, files in sorted(by_version.items(), key=lambda item: version_key(item[0]), reverse=True)
    ]


def latest_release(releases: list[Release]) -> Release | None:
    """Newest final release that is not wholly yanked (what ``pip install`` picks); else the newest."""
    for release in releases:
        if not release.prerelease and not release.yanked:
            return release
    return releases[0] if releases else None


def file_kind(filename: str) -> str:
    """What a file is, as a project page labels it: ``wheel py3-none-any`` or ``sdist``."""
    if filename.endswith(".whl"):
        parts = filename[: -len(".whl")].split("-")
        return "wheel " + "-".join(parts[-3:]) if len(parts) >= 5 else "wheel"
    return "sdist"


def human_size(size: int) -> str:
    """Bytes in the unit a reader expects (1000-based, as PyPI shows them)."""
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ProjectPage:
    """What the web UI's project page shows a caller who may read the project."""

    project: str
    releases: list[Release]
    latest: Release | None
    may_write: bool
    may_delete: bool
    details: ReleaseDetails | None = None  # the latest release's metadata (README, license...)

    def replace(self, **changes: Any) -> ProjectPage:
        return dataclasses.replace(self, **changes)

    @property
    def name(self) -> str:
        """The display name the newest upload used."""
        newest = max((f for r in self.releases for f in r.files), key=lambda f: f.upload_time)
        return newest.name


def project_page(
    project: str, records: list[FileRecord], *, may_write: bool, may_delete: bool
) -> ProjectPage:
    releases = group_releases(records)
    return ProjectPage(project, releases, latest_release(releases), may_write, may_delete)
