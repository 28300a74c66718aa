"""pypicloud's REST API under ``/api/package/``: list, upload, delete, yank."""

from __future__ import annotations

import calendar

from packaging.utils import canonicalize_name
from pyramid.httpexceptions import HTTPMovedPermanently
from pyramid.settings import asbool
from pyramid.view import view_config

from ..errors import InvalidUpload
from .upload import upload_form


def _epoch(dt) -> int:
    """pypicloud 1.x's ``last_modified``: whole seconds since the epoch, UTC."""
    return calendar.timegm(dt.utctimetuple())


def file_json(request, record) -> dict:
    """One file: pypicloud 1.x's keys (``last_modified`` in epoch seconds, ``url`` with
    its ``#sha256=`` fragment, ``metadata``) and ours beside them."""
    url = request.route_url("api.file", project=record.project, filename=record.filename)
    return {
        "filename": record.filename,
        "name": record.name,
        "version": record.version,
        "url": url + (f"#sha256={record.sha256}" if record.sha256 else ""),
        "size": record.size,
        "sha256": record.sha256,
        "last_modified": _epoch(record.upload_time),
        "upload_time": record.upload_time.isoformat(),
        "requires_python": record.requires_python,
        "summary": record.summary,
        "uploader": record.uploader,
        "yanked": record.yanked,
        "yanked_reason": record.yanked_reason,
        "metadata": {
            "requires_python": record.requires_python,
            "summary": record.summary,
            "hash_sha256": record.sha256,
            "hash_md5": record.md5 or None,
            "uploader": record.uploader,
        },
    }


def _project(request) -> str:
    return canonicalize_name(request.matchdict["project"])


@view_config(route_name="api.packages_noslash", request_method="GET")
def packages_noslash(request):
    return HTTPMovedPermanently(location=request.route_url("api.packages"))


@view_config(route_name="api.packages", request_method="GET", renderer="json")
def list_packages(request):
    projects = request.services.service.projects(request.identity)
    if not asbool(request.params.get("verbose", "false")):
        return {"packages": [p.name for p in projects]}
    # pypicloud 1.x's verbose shape, with the canonical name and an ISO time beside it.
    return {
        "packages": [
            {
                "name": p.name,
                "summary": p.summary or "",
                "last_modified": _epoch(p.last_modified),
                "project": p.project,
                "last_modified_iso": p.last_modified.isoformat(),
            }
            for p in projects
        ]
    }


@view_config(route_name="api.project", request_method="GET", renderer="json")
@view_config(route_name="api.project_noslash", request_method="GET", renderer="json")
def list_files(request):
    """Every file of a project and whether the caller may upload to it (``write``).

    An unknown project the caller could read answers an empty list, as in 1.x.
    """
    records, write = request.services.service.api_project_files(request.identity, _project(request))
    return {"packages": [file_json(request, r) for r in records], "write": write}


@view_config(route_name="api.project", request_method="DELETE", renderer="json")
@view_config(route_name="api.project_noslash", request_method="DELETE", renderer="json")
def delete_project(request):
    records = request.services.service.delete_project(request.identity, _project(request))
    return {"deleted": [r.filename for r in records]}


@view_config(route_name="api.file", request_method="POST", renderer="json")
def upload_file(request):
    """pypicloud 1.x's upload: the project and filename are in the URL, the file in ``content``."""
    result = request.services.service.api_upload(
        request.identity,
        request.matchdict["project"],
        request.matchdict["filename"],
        lambda: upload_form(request, action=False),
    )
    # 200 for a new file too, as pypicloud 1.x answered; "created" tells them apart.
    return dict(file_json(request, result.record), created=result.created)


@view_config(route_name="api.file", request_method="DELETE", renderer="json")
def delete_file(request):
    # pypicloud 1.x answered a missing file with 400 (after its login check).
    record = request.services.service.api_delete_file(
        request.identity, _project(request), request.matchdict["filename"]
    )
    return {"deleted": record.filename}


def _reason(request) -> str | None:
    if request.content_type == "application/json":
        try:
            body = request.json_body
        except (ValueError, LookupError, RecursionError):
            # LookupError: an unknown charset; RecursionError: absurd nesting.
            raise InvalidUpload("Request body is not valid JSON") from None
        reason = body.get("reason") if isinstance(body, dict) else None
    else:
        try:
            reason = request.POST.get("reason")
        except Exception:
            raise InvalidUpload("Malformed request body") from None
    if reason is not None and not isinstance(reason, str):
        raise InvalidUpload("'reason' must be text")
    return reason


@view_config(route_name="api.yank", request_method="POST", renderer="json")
def yank(request):
    record = request.services.service.yank_file(
        request.identity, _project(request), request.matchdict["filename"], lambda: _reason(request)
    )
    return file_json(request, record)


@view_config(route_name="api.yank", request_method="DELETE", renderer="json")
def unyank(request):
    record = request.services.service.set_yanked(
        request.identity, _project(request), request.matchdict["filename"], False
    )
    return file_json(request, record)
