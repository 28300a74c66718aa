"""File downloads (``/api/package/<project>/<filename>``) and PEP 658 metadata files."""

from __future__ import annotations

from packaging.utils import canonicalize_name
from pyramid.httpexceptions import HTTPFound, HTTPMovedPermanently, HTTPNotModified
from pyramid.response import Response
from pyramid.view import view_config

from ..mapped_file import mapped
from ..read_headers import FILE_TYPE, file_headers, metadata_headers
from ..records import METADATA_SUFFIX
from ..storage.base import ReadStream

# Block size asked of the server's file wrapper (when it reads instead of sendfile).
_BLOCK = 1024 * 1024


def _headers(request, record) -> dict:
    services = request.services
    return file_headers(record, services.service.is_public(record.project), services.package_max_age)


def _range(request):
    """The parsed Range header; a malformed one is ignored (RFC 9110 allows that)."""
    try:
        return request.range
    except ValueError:
        return None


def file_body(environ, stream):
    """The response's app_iter: the server's ``wsgi.file_wrapper`` around the
    storage's own file when the stream is the rest of a local file (the server
    may then ``sendfile`` it, or send slices of its mapping), else the storage
    stream itself (chunks)."""
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is None or not isinstance(stream, ReadStream):
        return stream
    local = stream.os_file()
    return stream if local is None else wrapper(mapped(local), _BLOCK)


def _serve_metadata(request, project: str, filename: str) -> Response:
    service = request.services.service
    record, data = service.core_metadata(request.identity, project, filename)
    services = request.services
    headers = metadata_headers(record, services.service.is_public(record.project), services.package_max_age)
    # WebOb parses If-None-Match into unquoted entity tags.
    if record.metadata_sha256 in request.if_none_match:
        return HTTPNotModified(headers=headers)
    response = Response(body=data, content_type=FILE_TYPE)
    response.headers.update(headers)
    return response


@view_config(route_name="api.file", request_method=("GET", "HEAD"))
@view_config(route_name="ui.file", request_method=("GET", "HEAD"))
@view_config(route_name="packages.file", request_method=("GET", "HEAD"))
def download(request):
    raw = request.matchdict["project"]
    project = canonicalize_name(raw)
    filename = request.matchdict["filename"]
    if raw != project:
        return HTTPMovedPermanently(
            location=request.route_url(request.matched_route.name, project=project, filename=filename)
        )
    if filename.endswith(METADATA_SUFFIX):
        return _serve_metadata(request, project, filename[: -len(METADATA_SUFFIX)])
    result = request.services.service.download(request.identity, project, filename)
    if result.redirect is not None:
        # Short-lived: the target is a signed URL that expires.
        return HTTPFound(location=result.redirect.url, headers={"Cache-Control": "no-store"})
    record = result.record
    headers = _headers(request, record)
    # WebOb parses If-None-Match into unquoted entity tags.
    if record.sha256 in request.if_none_match:
        return HTTPNotModified(headers=headers)
    size = record.size
    start, length, status = 0, size, 200
    # If-Range: serve the range only if the client's copy is this very file.
    if_range = request.headers.get("If-Range")
    requested = _range(request)
    if requested is not None and (if_range is None or if_range.strip() == headers["ETag"]):
        span = requested.range_for_length(size)
        if span is None:
            response = Response(status=416, headers={"Content-Range": f"bytes */{size}"})
            response.headers.update(headers)
            return response
        start, end = span
        length, status = end - start, 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    stream = request.services.service.open_file(record, start, length)
    # Storage streams iterate in chunks and close: a WSGI app_iter as they are.
    response = Response(
        status=status,
        app_iter=file_body(request.environ, stream),
        content_type=FILE_TYPE,
        content_length=length,
    )
    response.headers.update(headers)
    return response
