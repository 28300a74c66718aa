"""The web UI's one script (copy buttons), served from the package with a long cache life."""

from __future__ import annotations

from importlib import resources

from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response
from pyramid.view import view_config

# Name -> content type; nothing else under static/ is served.
ASSETS = {"ui.js": "text/javascript"}
_CACHE: dict[str, bytes] = {}


@view_config(route_name="ui.asset", request_method=("GET", "HEAD"))
def asset(request):
    name = request.matchdict["name"]
    if name not in ASSETS:
        raise HTTPNotFound()
    body = _CACHE.get(name)
    if body is None:
        body = _CACHE[name] = resources.files("pypicloud").joinpath("static", name).read_bytes()
    response = Response(body=body, content_type=ASSETS[name], charset="utf-8")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
