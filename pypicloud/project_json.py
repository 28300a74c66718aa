"""The legacy JSON API's document (``/pypi/<project>/json``): which release is the
latest, which spelling of a version is meant, and what each file's entry holds.

Pure functions over a :class:`pypicloud.service.ProjectListing`; the service
(:meth:`pypicloud.service.PackageIndex.project_document`) decides what the
listing holds, and the view only gives the URLs (it knows the routes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from packaging.version import InvalidVersion, Version

from .errors import FileNotFound
from .releases import version_key as _version_key
from .timefmt import iso_seconds, iso_utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DocumentUrls:
    """The addresses a document links: a file's download URL, a project's page."""

    file: Callable[[str, str], str]  # (project, filename) -> URL
    project: Callable[[str], str]  # project -> URL of its simple page


@dataclass(frozen=True)
class ProjectDocument:
    """The answer: a document, or a redirect to upstream's own JSON API."""

    doc: dict | None = None
    redirect: str | None = None


def version_redirect(project_url: str, version: str | None) -> str:
    """Upstream's JSON URL of one version, from the URL of its project document."""
    if version is None:
        return project_url
    return project_url[: -len("json")] + quote(version, safe="") + "/json"


def _latest(by_version: dict[str, list[_Entry]]) -> str:
    """Newest final release that is not fully yanked; else newest of any kind."""
    ordered = sorted(by_version, key=_version_key, reverse=True)
    for version in ordered:
        try:
            parsed = Version(version)
        except InvalidVersion:
            continue
        if not parsed.is_prerelease and not all(e.file["yanked"] for e in by_version[version]):
            return version
    return ordered[0]


@dataclass(frozen=True)
class _Entry:
    """One file of the document, stored here or listed from upstream (SPEC section 9)."""

    version: str
    uploaded: datetime
    name: str
    summary: str | None
    file: dict


def _packagetype(filename: str) -> tuple[str, str]:
    if filename.endswith(".whl"):
        return "bdist_wheel", filename.split("-")[-3]
    return "sdist", "source"


def _times(upload: datetime) -> dict:
    return {
        "upload_time": iso_seconds(upload),
        "upload_time_iso_8601": iso_utc(upload),
    }


def _stored(urls: DocumentUrls, record) -> _Entry:
    packagetype, python_version = _packagetype(record.filename)
    upload = record.upload_time
    return _Entry(
        record.version,
        upload,
        record.name,
        record.summary,
        {
            "filename": record.filename,
            # The URL index pages link (see routes.py).
            "url": urls.file(record.project, record.filename),
            "digests": {"sha256": record.sha256, "md5": record.md5},
            "md5_digest": record.md5,
            "size": record.size,
            "packagetype": packagetype,
            "python_version": python_version,
            "requires_python": record.requires_python,
            **_times(upload),
            "yanked": record.yanked,
            "yanked_reason": record.yanked_reason,
        },
    )


def _upstream(urls: DocumentUrls, listing, entry, parse_time) -> _Entry:
    """A file of upstream's page: linked here (pull-through) or at upstream itself."""
    packagetype, python_version = _packagetype(entry.filename)
    # No upload time from upstream: the epoch, so such a file sorts oldest.
    upload = parse_time(entry.upload_time) or EPOCH
    url = entry.url if listing.link_upstream else urls.file(listing.project, entry.filename)
    return _Entry(
        entry.version,
        upload,
        listing.name or listing.project,
        None,
        {
            "filename": entry.filename,
            "url": url,
            "digests": {"sha256": entry.sha256} if entry.sha256 else {},
            "md5_digest": None,
            "size": entry.size,
            "packagetype": packagetype,
            "python_version": python_version,
            "requires_python": entry.requires_python,
            **(_times(upload) if entry.upload_time else {"upload_time": None, "upload_time_iso_8601": None}),
            "yanked": entry.yanked,
            "yanked_reason": entry.yanked_reason,
        },
    )


def _by_version(listing, urls: DocumentUrls, parse_time) -> dict[str, list[_Entry]]:
    by_version: dict[str, list[_Entry]] = defaultdict(list)
    for entry in [_stored(urls, r) for r in listing.records] + [
        _upstream(urls, listing, f, parse_time) for f in listing.upstream if f.version
    ]:
        by_version[entry.version].append(entry)
    return by_version


def _match_version(by_version: dict[str, list[_Entry]], project: str, version: str) -> str:
    """The stored spelling of ``version``: any spelling that normalises to a stored one."""
    if version in by_version:
        return version
    try:
        wanted = Version(version)
        return next(v for v in by_version if Version(v) == wanted)
    except (InvalidVersion, StopIteration):
        raise FileNotFound(f"No version {version} of {project}") from None


def build_document(listing, version: str | None, serial: int, urls: DocumentUrls, parse_time) -> dict:
    """The document of a project (``version`` None) or of one of its versions."""
    project = listing.project
    by_version = _by_version(listing, urls, parse_time)
    if not by_version:
        raise FileNotFound(f"No files of {project}")
    if version is not None:
        version = _match_version(by_version, project, version)
    current = version or _latest(by_version)
    newest = max(by_version[current], key=lambda e: e.uploaded)
    info = {
        "name": newest.name,
        "version": current,
        "summary": newest.summary,
        "requires_python": newest.file["requires_python"],
        "package_url": urls.project(project),
        "release_url": urls.project(project),
        "yanked": all(e.file["yanked"] for e in by_version[current]),
        "yanked_reason": newest.file["yanked_reason"],
        # pypicloud 1.x's keys: it stored neither, and scripts read info["license"].
        "license": "",
        "classifiers": [],
    }
    doc = {"info": info, "urls": [e.file for e in by_version[current]], "last_serial": serial}
    if version is None:
        doc["releases"] = {v: [e.file for e in by_version[v]] for v in sorted(by_version, key=_version_key)}
    return doc
