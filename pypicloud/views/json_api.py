"""The legacy JSON API (``/pypi/<project>/json``) that Renovate, Dependabot and other tools read."""

from __future__ import annotations

from packaging.utils import canonicalize_name
from pyramid.httpexceptions import HTTPFound, HTTPMovedPermanently
from pyramid.view import view_config

from ..project_json import DocumentUrls


def _document(request, project: str, version: str | None):
    urls = DocumentUrls(
        file=lambda p, f: request.route_url("packages.file", project=p, filename=f),
        project=lambda p: request.route_url("simple.project", project=p),
    )
    answer = request.services.service.project_document(request.identity, project, version, urls)
    if answer.redirect is not None:
        # Upstream's own JSON API.
        return HTTPFound(location=answer.redirect, headers={"Vary": "Authorization"})
    return answer.doc


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
