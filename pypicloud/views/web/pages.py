"""Every GET page of the web UI: home, overview, projects, a project, upload, account, access."""

from __future__ import annotations

from typing import Any

from packaging.utils import canonicalize_name
from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from ...errors import Unauthorized
from ...releases import file_kind, human_size
from .common import access_admin, login_redirect, page, page_number, reader, require_admin, require_user

RECENT_UPLOADS = 10


def index_urls(request) -> dict[str, Any]:
    """This server's URLs as the browser reached it (through the proxy, with its prefix)."""
    return {
        "index_url": request.route_url("simple.index"),
        "host": request.host,
    }


def home_page(request):
    """The home page: search, recent uploads, how to point pip, uv and twine here.

    Served at ``/`` to a browser's navigation (views/compat.py) and linked as Home.
    """
    identity = reader(request)
    service = request.services.service
    recent = service.recent_uploads(identity, RECENT_UPLOADS)
    response = page(request, "index.html", recent=recent, human_size=human_size, **index_urls(request))
    response.vary = ("Sec-Fetch-Dest", "Cookie", "Authorization")
    return response


@view_config(route_name="ui.home_noslash")
def home_noslash(request):
    return HTTPFound(location=request.route_path("ui.home"))


@view_config(route_name="ui.home", request_method="GET")
def overview(request):
    identity = reader(request)
    if not identity.is_admin:
        return HTTPFound(location=request.route_path("ui.projects"))
    service = request.services.service
    return page(
        request,
        "home.html",
        project_count=len(service.projects(identity)),
        file_count=service.file_count(),
        health=service.health(),
    )


@view_config(route_name="ui.projects", request_method="GET")
def projects(request):
    identity = reader(request)
    listing = request.services.service.browse_projects(
        identity,
        query=request.params.get("q", "").strip()[:200],
        sort=request.params.get("sort", "name"),
        page=page_number(request),
    )
    if listing.total == 0 and not identity.authenticated and not listing.query:
        return login_redirect(request)  # a private index: nothing to see without logging in
    return page(request, "projects.html", listing=listing)


@view_config(route_name="ui.project", request_method="GET")
def project(request):
    identity = reader(request)
    name = canonicalize_name(request.matchdict["project"])
    try:
        details = request.services.service.project_page(identity, name)
    except Unauthorized:
        return login_redirect(request)
    return page(
        request,
        "project.html",
        page=details,
        human_size=human_size,
        file_kind=file_kind,
        **index_urls(request),
    )


@view_config(route_name="ui.upload", request_method="GET")
def upload_page(request):
    require_user(request)
    service = request.services.service
    limit = service.max_upload_size
    return page(
        request,
        "upload.html",
        max_upload_size=limit,
        max_upload_human=human_size(limit) if limit else None,
    )


def account_page(request, status: int = 200, **values):
    identity = require_user(request)
    account = access_admin(request).account(identity)
    return page(
        request,
        "account.html",
        status=status,
        editable=account.editable,
        tokens=account.tokens,
        min_password=account.min_password,
        **values,
    )


@view_config(route_name="ui.account", request_method="GET")
def account(request):
    return account_page(request)


def access_page(request, status: int = 200, **values):
    identity = require_admin(request)
    overview = access_admin(request).overview(identity)
    return page(request, "access.html", status=status, **vars(overview), **values)


@view_config(route_name="ui.access", request_method="GET")
def access(request):
    return access_page(request)
