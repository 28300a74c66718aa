"""pypicloud's REST API under ``/api/package/``: list, upload, delete, yank."""

from __future__ import annotations

from packaging.utils import canonicalize_name
from pyramid.httpexceptions import HTTPMovedPermanently
from pyramid.view import view_config

from .. import dists
from ..errors import InvalidUpload
from .upload import DIGEST_FIELDS, file_field, read_form, text_field


def _file_json(request, record) -> dict:
    return {
        "filename": record.filename, "name": record.name, "version": record.version,
        "url": request.route_url("api.file", project=record.project, filename=record.filename),
        "size": record.size, "sha256": record.sha256,
        "last_modified": record.upload_time.isoformat(),
        "requires_python": record.requires_python, "summary": record.summary,
        "uploader": record.uploader, "yanked": record.yanked,
        "yanked_reason": record.yanked_reason,
    }


def _project(request) -> str:
    return canonicalize_name(request.matchdict["project"])


@view_config(route_name="api.packages_noslash", request_method="GET")
def packages_noslash(request):
    return HTTPMovedPermanently(location=request.route_url("api.packages"))


@view_config(route_name="api.packages", request_method="GET", renderer="json")
def list_packages(request):
    projects = request.registry.service.projects(request.identity)
    return {"packages": [p.name for p in projects]}


@view_config(route_name="api.project", request_method="GET", renderer="json")
@view_config(route_name="api.project_noslash", request_method="GET", renderer="json")
def list_files(request):
    records = request.registry.service.project_files(request.identity, _project(request))
    return {"packages": [_file_json(request, r) for r in records]}


@view_config(route_name="api.project", request_method="DELETE", renderer="json")
@view_config(route_name="api.project_noslash", request_method="DELETE", renderer="json")
def delete_project(request):
    records = request.registry.service.delete_project(request.identity, _project(request))
    return {"deleted": [r.filename for r in records]}


@view_config(route_name="api.file", request_method="POST", renderer="json")
def upload_file(request):
    """pypicloud 1.x's upload: the project and filename are in the URL, the file in ``content``."""
    identity = request.identity
    request.registry.service.refuse_early(identity, request.matchdict["project"])
    form = read_form(request)
    filename = request.matchdict["filename"]
    sent_name, stream = file_field(form)
    version = text_field(form, "version")
    if version is None:
        try:
            version = dists.parse_filename(filename).version
        except InvalidUpload:
            if not identity.authenticated:
                raise request.registry.service.deny(identity, "upload") from None
            raise
    result = request.registry.service.upload(
        identity, name=text_field(form, "name") or request.matchdict["project"],
        version=version, filename=filename if stream is not None else sent_name,
        content=stream, digests={k: text_field(form, k) or "" for k in DIGEST_FIELDS})
    request.response.status = 201 if result.created else 200
    return _file_json(request, result.record)


@view_config(route_name="api.file", request_method="DELETE", renderer="json")
def delete_file(request):
    record = request.registry.service.delete_file(
        request.identity, _project(request), request.matchdict["filename"])
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
    request.registry.service.refuse_early(request.identity, _project(request), yank=True)
    record = request.registry.service.set_yanked(
        request.identity, _project(request), request.matchdict["filename"], True, _reason(request))
    return _file_json(request, record)


@view_config(route_name="api.yank", request_method="DELETE", renderer="json")
def unyank(request):
    record = request.registry.service.set_yanked(
        request.identity, _project(request), request.matchdict["filename"], False)
    return _file_json(request, record)
