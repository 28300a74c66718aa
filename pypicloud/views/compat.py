"""pypicloud 1.x's index URLs, kept so 1.x clients and configs work unchanged.

1.x served the simple pages under ``/simple/``, ``/pypi/`` and (since 1.3.6) at
the root, ``/<project>/``; ``/<project>/json`` and ``/simple/<project>/json`` gave
the JSON document pip-tools reads hashes from, and ``/packages/`` one page of
every file (buildout's ``find-links``). Each view here hands over to the view of
the current URL, so the access checks, content negotiation and page cache are
the same ones.
"""

from __future__ import annotations

from packaging.utils import canonicalize_name
from pyramid.httpexceptions import HTTPMovedPermanently
from pyramid.view import view_config

from ..security import browser_navigation
from ..simple_api import TEXT_HTML
from ..webapp import RESERVED_SEGMENTS, route_table
from . import json_api, simple
from .negotiation import negotiate
from .simple import render
from .web.pages import home_page

# First path segments 1.x or this server use (or used) for fixed URLs; a project
# of that name is only served under /simple/ and /pypi/.
RESERVED = RESERVED_SEGMENTS


def fixed_segments(registry) -> frozenset[str]:
    """Canonical first segments of every route with a literal first segment, and RESERVED
    (computed once, when the app is created: :class:`pypicloud.webapp.RouteTable`)."""
    return route_table(registry).fixed_segments


class NotFixedRoute:
    """Route predicate: the ``project`` segment is not one of a fixed route.

    A failed route predicate lets Pyramid try the next route, so a fixed route
    added after the root routes still wins.
    """

    def __init__(self, value, config):
        self.value = bool(value)

    def text(self):
        return f"ppc_not_fixed = {self.value}"

    phash = text

    def __call__(self, info, request):
        project = info["match"].get("project", "")
        free = canonicalize_name(project) not in fixed_segments(request.registry)
        return free == self.value


def _canonical_or_redirect(request, route: str):
    """The canonical project name, or a 301 to the canonical URL of ``route`` (PEP 503)."""
    raw = request.matchdict["project"]
    project = canonicalize_name(raw)
    if raw == project:
        return project, None
    url = request.route_url(route, project=project)
    if request.query_string:
        url += "?" + request.query_string
    return project, HTTPMovedPermanently(location=url)


@view_config(route_name="upload.root", request_method=("GET", "HEAD"))
@view_config(route_name="upload.pypi_slash", request_method=("GET", "HEAD"))
def index_alias(request):
    """``/`` and ``/pypi/``: the project list of ``/simple/``.

    A browser opening ``/`` (a top-level navigation, which every current browser
    marks with ``Sec-Fetch-Dest: document``) gets the web UI's home page instead,
    as pypicloud 1.x showed its UI there; installers and scripts keep the list.
    """
    if request.matched_route.name == "upload.root" and browser_navigation(request):
        return home_page(request)
    response = simple.simple_index(request)
    if request.matched_route.name == "upload.root":
        response.vary = tuple(response.vary or ()) + ("Sec-Fetch-Dest",)
    return response


@view_config(route_name="upload.pypi", request_method=("GET", "HEAD"))
def pypi_noslash(request):
    return HTTPMovedPermanently(location=request.route_url("upload.pypi_slash"))


@view_config(route_name="compat.pypi_project", request_method=("GET", "HEAD"))
@view_config(route_name="compat.root_project", request_method=("GET", "HEAD"))
def project_alias(request):
    """``/pypi/<p>/`` and ``/<p>/``: the page of ``/simple/<p>/``."""
    _, redirect = _canonical_or_redirect(request, request.matched_route.name)
    if redirect is not None:
        return redirect
    return simple.simple_project(request)


@view_config(route_name="compat.simple_json", request_method=("GET", "HEAD"), renderer="json")
@view_config(route_name="compat.root_json", request_method=("GET", "HEAD"), renderer="json")
def project_json_alias(request):
    """1.x's ``/simple/<p>/json`` and ``/<p>/json``: the document of ``/pypi/<p>/json``.

    pip-tools asks here first for the hashes of every file; 1.x readers expect
    ``info.license`` and ``info.classifiers`` to exist.
    """
    project, redirect = _canonical_or_redirect(request, request.matched_route.name)
    if redirect is not None:
        return redirect
    doc = json_api.with_serial(request, json_api._document(request, project, None))
    if isinstance(doc, dict):
        doc["info"].setdefault("license", "")
        doc["info"].setdefault("classifiers", [])
    return doc


@view_config(route_name="compat.packages_noslash", request_method=("GET", "HEAD"))
def packages_noslash(request):
    return HTTPMovedPermanently(location=request.route_url("compat.packages"))


@view_config(route_name="compat.packages", request_method=("GET", "HEAD"))
def all_files(request):
    """``/packages/``: one HTML page linking every file the caller may read."""
    # Only HTML exists here, but an Accept that refuses every type is still a 406.
    negotiate(request)

    def render_all(records, links):
        rows = simple._stored_rows(request, records, links)
        body = render(
            "simple_project.html",
            {"name": "all projects", "files": rows, "api_version": simple.API_VERSION},
            request,
        )
        return simple._make_page(body, TEXT_HTML)

    answer = simple.pages(request).all_files(request.identity, simple.site_key(request), render_all)
    assert answer.page is not None  # only a project page may be a redirect instead
    return simple.page_response(request, answer.page, answer.serial, private=answer.private)
