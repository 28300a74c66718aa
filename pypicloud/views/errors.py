"""One place that turns exceptions into HTTP answers."""

from __future__ import annotations

import json
import logging
import re

from pyramid.exceptions import PredicateMismatch
from pyramid.response import Response
from pyramid.view import exception_view_config, notfound_view_config

from ..errors import PypicloudError
from ..webapp import route_table
from .error_pages import error_page, wants_html

LOG = logging.getLogger(__name__)

# Errors of the backends' client libraries that mean "the service is down", not "a bug".
_UNAVAILABLE = {
    "OperationalError",
    "InterfaceError",
    "DisconnectionError",  # SQLAlchemy
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",  # botocore
    "ConnectionError",
    "TimeoutError",
    "BusyLoadingError",  # redis
}


# Client-library modules -> the service they talk to, to name it in a 503.
_SERVICES = {
    "psycopg": "PostgreSQL",
    "psycopg2": "PostgreSQL",
    "pg8000": "PostgreSQL",
    "pymysql": "MySQL",
    "MySQLdb": "MySQL",
    "mysql": "MySQL",
    "sqlite3": "SQLite",
    "redis": "Redis",
    "botocore": "S3",
    "boto3": "S3",
    "s3transfer": "S3",
    "urllib3": "S3",
}


def _service_name(exc: BaseException) -> str | None:
    """Which backend service a client-library error comes from, or None."""
    seen = [exc, getattr(exc, "orig", None)]  # SQLAlchemy wraps the driver's error
    for item in seen:
        if item is None:
            continue
        for cls in type(item).__mro__:
            name = _SERVICES.get(cls.__module__.split(".")[0])
            if name:
                return name
    return None


def unavailable_message(exc: BaseException) -> str:
    """The 503 text for a raw client-library error: names the service when it can."""
    service = _service_name(exc)
    if service == "S3":
        return "S3 is unavailable; try again shortly"
    if service == "Redis":
        return "The metadata index (Redis) is unavailable; try again shortly"
    if service is not None:
        return f"The database ({service}) is unavailable; try again shortly"
    return "A backend service is unavailable; try again shortly"


def _reason(message: str) -> str:
    """A status-line reason phrase: one line of printable ASCII."""
    text = re.sub(r"[^\x20-\x7e]", "?", message.splitlines()[0] if message else "")
    return text[:200] or "Error"


# pypicloud 1.x's "error" value was a bare "unknown"; a short name of the status says more.
_ERROR_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    500: "internal_error",
    503: "unavailable",
}


def _json_errors(request) -> bool:
    """pypicloud 1.x answered errors under ``/api/`` and ``/admin/`` (and its JSON
    ``/acct/tokenRegister``) as JSON; the web UI's
    pages (routes ``ui.*``) keep their text answers."""
    path = request.path_info or ""
    if path.startswith("/acct/tokenRegister"):
        return True  # 1.x's JSON sign-up call (it crashed on errors; JSON is what its callers parse)
    if not (path.startswith("/api/") or path.startswith("/admin/")):
        return False
    route = request.matched_route
    if route is None:  # refused before routing (a tween): ask the route mapper
        from pyramid.interfaces import IRoutesMapper

        mapper = request.registry.queryUtility(IRoutesMapper)
        route = mapper(request)["route"] if mapper is not None else None
    return route is None or not route.name.startswith("ui.")


def error_response(request, status: int, message: str) -> Response:
    browser = wants_html(request)
    response = None
    # 1.x's JSON API answers JSON errors; a browser lost on an unknown /admin/ path gets a page.
    if _json_errors(request) and not (browser and request.matched_route is None):
        body = json.dumps({"error": _ERROR_NAMES.get(status, "error"), "message": message})
        response = Response(
            body=body.encode("utf-8"),
            status=f"{status} {_reason(message)}",
            content_type="application/json",
            charset="utf-8",
        )
    elif browser:
        response = error_page(request, status, _TITLES.get(status, "Error"), message)
        if response is not None:
            response.status = f"{status} {_reason(message)}"
    if response is None:
        response = _plain(status, message)
    if status == 401:
        services = getattr(request.registry, "services", None)  # None: a bare Pyramid registry
        realm = services.realm if services is not None else "pypi"
        response.headers["WWW-Authenticate"] = f'Basic realm="{realm}"'
    return response


_TITLES = {
    400: "Bad request",
    401: "Login required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Too large",
    429: "Too many requests",
    500: "Server error",
    502: "Upstream error",
    503: "Unavailable",
}


def _plain(status: int, message: str) -> Response:
    return Response(
        body=(message + "\n").encode("utf-8"),
        status=f"{status} {_reason(message)}",
        content_type="text/plain",
        charset="utf-8",
    )


@exception_view_config(PypicloudError)
def domain_error(exc: PypicloudError, request) -> Response:
    if exc.status >= 500:
        LOG.warning("%s %r: %s", request.method, request.path_info, exc.message)
    response = error_response(request, exc.status, exc.message)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@exception_view_config(Exception)
def unexpected_error(exc: Exception, request) -> Response:
    if any(cls.__name__ in _UNAVAILABLE for cls in type(exc).__mro__):
        LOG.warning("backend unavailable on %s %r: %s", request.method, request.path_info, exc)
        return error_response(request, 503, unavailable_message(exc))
    LOG.exception("unexpected error on %s %r", request.method, request.path_info)
    return error_response(request, 500, "Internal server error")


@exception_view_config(PredicateMismatch)
def method_not_allowed(exc: PredicateMismatch, request) -> Response:
    """405 with ``Allow`` when the path exists but not for this method; else 404."""
    route = request.matched_route
    # Computed once when the app was created (pypicloud.webapp.RouteTable).
    allowed = route_table(request.registry).methods.get(route.name) if route is not None else None
    if not allowed or request.method in allowed:
        return error_response(request, 404, "Not Found")
    response = error_response(request, 405, f"Method {request.method} is not allowed here")
    response.headers["Allow"] = ", ".join(sorted(allowed))
    return response


@notfound_view_config()
def not_found(request) -> Response:
    """A path no route knows: the same 404 as an unknown project (a page for browsers)."""
    return error_response(request, 404, "Not Found")
