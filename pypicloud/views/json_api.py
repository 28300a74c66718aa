"""The legacy JSON API (``/pypi/<project>/json``) that Renovate, Dependabot and other tools read."""

from __future__ import annotations

from collections import defaultdict

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pyramid.httpexceptions import HTTPMovedPermanently
from pyramid.view import view_config

from ..errors import FileNotFound


def _version_key(text: str):
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, Version("0"))


def _latest(versions: list[str], records_by_version) -> str:
    """Newest final release that is not fully yanked; else newest of any kind."""
    ordered = sorted(versions, key=_version_key, reverse=True)
    for version in ordered:
        try:
            parsed = Version(version)
        except InvalidVersion:
            continue
        if not parsed.is_prerelease and not all(r.yanked for r in records_by_version[version]):
            return version
    return ordered[0]


def _file(request, record) -> dict:
    upload = record.upload_time
    return {
        "filename": record.filename,
        "url": request.route_url("api.file", project=record.project, filename=record.filename),
        "digests": {"sha256": record.sha256, "md5": record.md5},
        "md5_digest": record.md5,
        "size": record.size,
        "packagetype": "bdist_wheel" if record.filename.endswith(".whl") else "sdist",
        "python_version": (record.filename.split("-")[-3]
                           if record.filename.endswith(".whl") else "source"),
        "requires_python": record.requires_python,
        "upload_time": upload.strftime("%Y-%m-%dT%H:%M:%S"),
        "upload_time_iso_8601": upload.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "yanked": record.yanked,
        "yanked_reason": record.yanked_reason,
    }


def _document(request, project: str, version: str | None):
    service = request.registry.service
    records = service.project_files(request.identity, project)
    by_version = defaultdict(list)
    for record in records:
        by_version[record.version].append(record)
    if version is not None and version not in by_version:
        # Accept any spelling of the version that normalises to a stored one.
        try:
            wanted = Version(version)
            version = next(v for v in by_version if _version_key(v) == (1, wanted))
        except (InvalidVersion, StopIteration):
            raise FileNotFound(f"No version {version} of {project}") from None
    current = version or _latest(list(by_version), by_version)
    newest = max(by_version[current], key=lambda r: r.upload_time)
    info = {
        "name": newest.name, "version": current, "summary": newest.summary,
        "requires_python": newest.requires_python,
        "package_url": request.route_url("simple.project", project=project),
        "release_url": request.route_url("simple.project", project=project),
        "yanked": all(r.yanked for r in by_version[current]),
        "yanked_reason": newest.yanked_reason,
    }
    doc = {"info": info, "urls": [_file(request, r) for r in by_version[current]],
           "last_serial": service.index.generation()}
    if version is None:
        doc["releases"] = {v: [_file(request, r) for r in by_version[v]]
                           for v in sorted(by_version, key=_version_key)}
    return doc


@view_config(route_name="json.project", request_method="GET", renderer="json")
def project_json(request):
    raw = request.matchdict["project"]
    project = canonicalize_name(raw)
    if raw != project:
        return HTTPMovedPermanently(location=request.route_url("json.project", project=project))
    return _document(request, project, None)


@view_config(route_name="json.version", request_method="GET", renderer="json")
def version_json(request):
    raw = request.matchdict["project"]
    project = canonicalize_name(raw)
    if raw != project:
        return HTTPMovedPermanently(location=request.route_url(
            "json.version", project=project, version=request.matchdict["version"]))
    return _document(request, project, request.matchdict["version"])
