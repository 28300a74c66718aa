"""One place that turns exceptions into HTTP answers."""

from __future__ import annotations

import logging
import re

from pyramid.exceptions import PredicateMismatch
from pyramid.response import Response
from pyramid.view import exception_view_config

from ..errors import PypicloudError

LOG = logging.getLogger(__name__)

# Errors of the backends' client libraries that mean "the service is down", not "a bug".
_UNAVAILABLE = {
    "OperationalError", "InterfaceError", "DisconnectionError",  # SQLAlchemy
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",  # botocore
    "ConnectionError", "TimeoutError", "BusyLoadingError",  # redis
}


# Client-library modules -> the service they talk to, to name it in a 503.
_SERVICES = {
    "psycopg": "PostgreSQL", "psycopg2": "PostgreSQL", "pg8000": "PostgreSQL",
    "pymysql": "MySQL", "MySQLdb": "MySQL", "mysql": "MySQL", "sqlite3": "SQLite",
    "redis": "Redis", "botocore": "S3", "boto3": "S3", "s3transfer": "S3", "urllib3": "S3",
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


def error_response(request, status: int, message: str) -> Response:
    response = Response(body=(message + "\n").encode("utf-8"),
                        status=f"{status} {_reason(message)}",
                        content_type="text/plain", charset="utf-8")
    if status == 401:
        realm = getattr(request.registry, "realm", "pypi")
        response.headers["WWW-Authenticate"] = f'Basic realm="{realm}"'
    return response


@exception_view_config(PypicloudError)
def domain_error(exc: PypicloudError, request) -> Response:
    if exc.status >= 500:
        LOG.warning("%s %s: %s", request.method, request.path_info, exc.message)
    return error_response(request, exc.status, exc.message)


@exception_view_config(Exception)
def unexpected_error(exc: Exception, request) -> Response:
    if any(cls.__name__ in _UNAVAILABLE for cls in type(exc).__mro__):
        LOG.warning("backend unavailable on %s %s: %s", request.method, request.path_info, exc)
        return error_response(request, 503, unavailable_message(exc))
    LOG.exception("unexpected error on %s %s", request.method, request.path_info)
    return error_response(request, 500, "Internal server error")


def _route_methods(registry) -> dict[str, frozenset[str]]:
    """Route name -> the methods some view of that route answers (built once, from Pyramid's registry)."""
    methods = getattr(registry, "ppc_route_methods", None)
    if methods is None:
        methods = {}
        for entry in registry.introspector.get_category("views") or ():
            view = entry["introspectable"]
            route = view.get("route_name")
            if route is None:
                continue
            declared = view.get("request_methods")
            if declared is None:  # a view for every method: nothing is ever "not allowed"
                methods[route] = None
                continue
            if isinstance(declared, str):
                declared = (declared,)
            if methods.get(route, frozenset()) is not None:
                extra = {"HEAD"} if "GET" in declared else set()
                methods[route] = methods.get(route, frozenset()) | set(declared) | extra
        registry.ppc_route_methods = methods
    return methods


@exception_view_config(PredicateMismatch)
def method_not_allowed(exc: PredicateMismatch, request) -> Response:
    """405 with ``Allow`` when the path exists but not for this method; else 404."""
    route = request.matched_route
    allowed = _route_methods(request.registry).get(route.name) if route is not None else None
    if not allowed or request.method in allowed:
        return error_response(request, 404, "Not Found")
    response = error_response(request, 405, f"Method {request.method} is not allowed here")
    response.headers["Allow"] = ", ".join(sorted(allowed))
    return response
