"""The simple repository API: PEP 503 HTML and PEP 691 JSON on the same URLs.

Rendering lives here (templates, routes, the two formats); which page answers,
which links it holds and when a rendered one is reused is decided by
:class:`pypicloud.simple_pages.SimplePages`, in the service layer.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from packaging.utils import canonicalize_name
from pyramid.httpexceptions import HTTPFound, HTTPMovedPermanently, HTTPNotModified
from pyramid.response import Response
from pyramid.traversal import PATH_SAFE
from pyramid.view import view_config
from pyramid_jinja2 import IJinja2Environment  # type: ignore[import-untyped]

from ..pagecache import Page
from ..read_headers import PAGE_VARY, page_cache_control, page_headers, page_not_modified_headers
from ..releases import version_key as _version_key
from ..results import FileLinks
from ..simple_pages import SimplePages
from ..timefmt import iso_utc as _iso
from .negotiation import JSON, negotiate

# 1.1 adds PEP 700's versions, size and upload-time.
API_VERSION = "1.1"


def _redirect(request, route: str, **kw) -> HTTPMovedPermanently:
    url = request.route_url(route, **kw)
    if request.query_string:
        url += "?" + request.query_string
    return HTTPMovedPermanently(location=url)


def file_url(request, record, links: FileLinks, base: str | None = None) -> str:
    """Where index pages send clients for a file: storage directly (as the service
    decided), else this server's download URL.

    ``base``: :func:`packages_base` of ``request``, when the caller builds many URLs.
    """
    url = links.storage_urls.get(record.filename)
    if url is not None:
        return url
    # /packages/<p>/<f>, the download view of /api/package/<p>/<f> (see routes.py).
    if base is None:
        return request.route_url("packages.file", project=record.project, filename=record.filename)
    # Quoted as the route does (its safe characters), without Pyramid's segment cache,
    # which keeps every string it ever quoted (here: every filename) for good.
    return base + quote(record.project, safe=PATH_SAFE) + "/" + quote(record.filename, safe=PATH_SAFE)


def packages_base(request) -> str:
    """``route_url("packages.file", ...)`` up to the project: built once per page, not per
    file (a route URL costs more than the rest of a file's row)."""
    return request.route_url("packages.file", project="-", filename="-")[: -len("-/-")]


def render(name: str, values: dict, request) -> str:
    """Render one of the simple API's templates.

    Straight from the Jinja2 environment: Pyramid's renderer first tries a name
    relative to the calling package, which is never found and is not cached, so
    every page paid for a failed template lookup (stat calls included). These
    templates use no Pyramid system values.
    """
    environment = request.registry.queryUtility(IJinja2Environment, name=".html")
    return environment.get_template(name).render(values)


def _make_page(body: str | bytes, content_type: str) -> Page:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return Page(data, content_type, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')


def render_index(request, projects, fmt: str, serial: int | None = None) -> Page:
    if fmt == JSON:
        doc: dict[str, Any] = {
            "meta": {"api-version": API_VERSION},
            "projects": [{"name": p.name} for p in projects],
        }
        if serial is not None:
            # PyPI's mirroring field (bandersnatch's simple method needs it). The index
            # keeps one change counter, so every project carries the global serial.
            doc["meta"]["_last-serial"] = serial
            for entry in doc["projects"]:
                entry["_last-serial"] = serial
        return _make_page(json.dumps(doc, separators=(",", ":")), JSON)
    rows = [{"name": p.name, "url": request.route_url("simple.project", project=p.project)} for p in projects]
    body = render("simple_index.html", {"projects": rows, "api_version": API_VERSION}, request)
    return _make_page(body, fmt)


def _stored_rows(request, records, links: FileLinks) -> list[dict]:
    base = packages_base(request)
    urls = {r.filename: file_url(request, r, links, base) for r in records}
    direct = not links.offers_metadata
    return [
        {
            "filename": r.filename,
            "url": urls[r.filename],
            "sha256": r.sha256,
            "requires_python": r.requires_python,
            "yanked": r.yanked,
            "yanked_reason": r.yanked_reason,
            "metadata_sha256": None if direct else r.metadata_sha256,
            "size": r.size,
            "upload_time": _iso(r.upload_time),
            "version": r.version,
        }
        for r in records
    ]


def _upstream_rows(request, project: str, files, link_upstream: bool) -> list[dict]:
    """Rows of upstream files: linked at upstream itself, or at our download URL (pull-through)."""
    return [
        {
            "filename": f.filename,
            "url": f.url
            if link_upstream
            else request.route_url("packages.file", project=project, filename=f.filename),
            "sha256": f.sha256,
            "requires_python": f.requires_python,
            "yanked": f.yanked,
            "yanked_reason": f.yanked_reason,
            "metadata_sha256": f.metadata_sha256,
            "size": f.size,
            "upload_time": f.upload_time,
            "version": f.version,
        }
        for f in files
    ]


def render_project(
    request,
    project: str,
    records,
    fmt: str,
    links: FileLinks,
    upstream=(),
    link_upstream: bool = False,
    name: str | None = None,
    serial: int | None = None,
) -> Page:
    """A project page: stored files, then upstream's (SPEC section 9)."""
    rows = _stored_rows(request, records, links) + _upstream_rows(request, project, upstream, link_upstream)
    versions = sorted({r["version"] for r in rows if r["version"]}, key=_version_key)
    display = max(records, key=lambda r: r.upload_time).name if records else (name or project)
    # PEP 700 makes "size" mandatory in 1.1; an upstream HTML page gives none.
    api_version = API_VERSION if all(r["size"] is not None for r in rows) else "1.0"
    if fmt == JSON:
        entries = []
        for r in rows:
            meta = {"sha256": r["metadata_sha256"]} if r["metadata_sha256"] else False
            entry = {
                "filename": r["filename"],
                "url": r["url"],
                "hashes": {"sha256": r["sha256"]} if r["sha256"] else {},
                "requires-python": r["requires_python"],
                "yanked": (r["yanked_reason"] or True) if r["yanked"] else False,
                "core-metadata": meta,
                "dist-info-metadata": meta,
            }
            if r["size"] is not None:
                entry["size"] = r["size"]
            if r["upload_time"]:
                entry["upload-time"] = r["upload_time"]
            entries.append(entry)
        doc: dict[str, Any] = {
            "meta": {"api-version": api_version},
            "name": project,
            "versions": versions,
            "files": entries,
        }
        if serial is not None:
            doc["meta"]["_last-serial"] = serial
        return _make_page(json.dumps(doc, separators=(",", ":")), JSON)
    body = render(
        "simple_project.html", {"name": display, "files": rows, "api_version": api_version}, request
    )
    return _make_page(body, fmt)


def site_key(request) -> tuple:
    """What a page's absolute URLs depend on: scheme, host and mount point."""
    return site_key_of(request.environ)


def site_key_of(environ) -> tuple:
    """:func:`site_key` from a WSGI environ (the fast lane has no request).

    Taken from the environ as is (cheaper than building ``application_url`` on
    every request); two spellings of one host only cost two cache entries.
    """
    return (
        environ["wsgi.url_scheme"],
        environ.get("HTTP_HOST") or environ.get("SERVER_NAME"),
        environ.get("SERVER_PORT"),
        environ.get("SCRIPT_NAME", ""),
    )


def page_response(request, page: Page, serial: int | None = None, private: bool = False) -> Response:
    """``serial``: the change counter the page was made at (``X-PyPI-Last-Serial``);
    ``private``: the page depends on the caller's credentials."""
    cache_control = page_cache_control(request.services.index_cache_control, private)
    # WebOb parses If-None-Match into unquoted entity tags; only parse when sent.
    if "HTTP_IF_NONE_MATCH" in request.environ and page.etag.strip('"') in request.if_none_match:
        return HTTPNotModified(headers=page_not_modified_headers(page, cache_control))
    # The whole header list at once: this is the hot path of every cached page, and
    # WebOb's header-by-header update costs more than the rest of the response.
    return Response(body=page.body, headerlist=page_headers(page, serial, cache_control))


@view_config(route_name="simple.index_noslash")
def index_noslash(request):
    return _redirect(request, "simple.index")


def pages(request) -> SimplePages:
    """The simple API's pages: the service's decisions over this app's page cache."""
    return request.services.simple_pages


@view_config(route_name="simple.index", request_method=("GET", "HEAD"))
def simple_index(request):
    fmt = negotiate(request)
    answer = pages(request).index(
        request.identity,
        fmt,
        site_key(request),
        lambda projects, serial: render_index(request, projects, fmt, serial),
    )
    assert answer.page is not None  # only a project page may be a redirect instead
    return page_response(request, answer.page, answer.serial, private=answer.private)


@view_config(route_name="simple.project_noslash", request_method=("GET", "HEAD"))
def project_noslash(request):
    return _redirect(request, "simple.project", project=canonicalize_name(request.matchdict["project"]))


def project_renderer(request, project: str, fmt: str):
    """The callback :meth:`SimplePages.project` renders a project's page with (the view's
    and the fast lane's: one page whichever renders it)."""

    def render(listing, links, serial):
        return render_project(
            request,
            project,
            listing.records,
            fmt,
            links,
            listing.upstream,
            listing.link_upstream,
            listing.name,
            serial,
        )

    return render


@view_config(route_name="simple.project", request_method=("GET", "HEAD"))
def simple_project(request):
    raw = request.matchdict["project"]
    project = canonicalize_name(raw)
    if raw != project:
        # PEP 503: one canonical URL per project.
        return _redirect(request, "simple.project", project=project)
    fmt = negotiate(request)
    render = project_renderer(request, project, fmt)
    answer = pages(request).project(request.identity, project, fmt, site_key(request), render)
    if answer.redirect is not None:
        # The upstream page itself; the client asks it with its own Accept header.
        return HTTPFound(
            location=answer.redirect,
            headers={"Vary": PAGE_VARY, "Cache-Control": request.services.index_cache_control},
        )
    assert answer.page is not None
    return page_response(request, answer.page, answer.serial, answer.private)
