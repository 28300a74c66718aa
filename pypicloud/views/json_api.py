"""The legacy JSON API (``/pypi/<project>/json``) that Renovate, Dependabot and other tools read."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pyramid.httpexceptions import HTTPFound, HTTPMovedPermanently
from pyramid.view import view_config

from ..errors import FileNotFound
from ..releases import version_key as _version_key
from ..service import parse_upload_time
from ..timefmt import iso_seconds, iso_utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


def _stored(request, record) -> _Entry:
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
            "url": request.route_url("packages.file", project=record.project, filename=record.filename),
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


def _upstream(request, listing, entry) -> _Entry:
    """A file of upstream's page: linked here (pull-through) or at upstream itself."""
    packagetype, python_version = _packagetype(entry.filename)
    # No upload time from upstream: the epoch, so such a file sorts oldest.
    upload = parse_upload_time(entry.upload_time) or EPOCH
    url = (
        entry.url
        if listing.link_upstream
        else request.route_url("packages.file", project=listing.project, filename=entry.filename)
    )
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


def _document(request, project: str, version: str | None):
    service = request.registry.service
    upstream = service.upstream
    listing = service.project_listing(
        request.identity, project, redirect_to=upstream.json_url if upstream is not None else None
    )
    if listing.redirect is not None:
        # Upstream's own JSON API (its address is known from fallback_base_url).
        location = (
            listing.redirect
            if version is None
            else listing.redirect[: -len("json")] + quote(version, safe="") + "/json"
        )
        return HTTPFound(location=location, headers={"Vary": "Authorization"})
    by_version: dict[str, list[_Entry]] = defaultdict(list)
    for entry in [_stored(request, r) for r in listing.records] + [
        _upstream(request, listing, f) for f in listing.upstream if f.version
    ]:
        by_version[entry.version].append(entry)
    if not by_version:
        raise FileNotFound(f"No files of {project}")
    if version is not None and version not in by_version:
        # Accept any spelling of the version that normalises to a stored one.
        try:
            wanted = Version(version)
            version = next(v for v in by_version if Version(v) == wanted)
        except (InvalidVersion, StopIteration):
            raise FileNotFound(f"No version {version} of {project}") from None
    current = version or _latest(by_version)
    newest = max(by_version[current], key=lambda e: e.uploaded)
    info = {
        "name": newest.name,
        "version": current,
        "summary": newest.summary,
        "requires_python": newest.file["requires_python"],
        "package_url": request.route_url("simple.project", project=project),
        "release_url": request.route_url("simple.project", project=project),
        "yanked": all(e.file["yanked"] for e in by_version[current]),
        "yanked_reason": newest.file["yanked_reason"],
        # pypicloud 1.x's keys: it stored neither, and scripts read info["license"].
        "license": "",
        "classifiers": [],
    }
    doc = {
        "info": info,
        "urls": [e.file for e in by_version[current]],
        "last_serial": service.index.generation(),
    }
    if version is None:
        doc["releases"] = {v: [e.file for e in by_version[v]] for v in sorted(by_version, key=_version_key)}
    return doc


def with_serial(request, doc):
    """PyPI's ``X-PyPI-Last-Serial`` header beside the body's ``last_serial`` (bandersnatch)."""
    if isinstance(doc, dict):
        request.response.headers["X-PyPI-Last-Serial"] = str(doc["last_serial"])
    return doc


@view_config(route_name="json.project", request_method="GET", renderer="json")
def project_json(request):
    raw = request.matchdict["project"]
    project = canonicalize_name(raw)
    if raw != project:
        return HTTPMovedPermanently(location=request.route_url("json.project", project=project))
    return with_serial(request, _document(request, project, None))


@view_config(route_name="json.version", request_method="GET", renderer="json")
def version_json(request):
    raw = request.matchdict["project"]
    project = canonicalize_name(raw)
    if raw != project:
        return HTTPMovedPermanently(
            location=request.route_url("json.version", project=project, version=request.matchdict["version"])
        )
    return with_serial(request, _document(request, project, request.matchdict["version"]))
