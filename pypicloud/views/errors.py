"""One place that turns exceptions into HTTP answers."""

from __future__ import annotations

import logging
import re

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
        return error_response(request, 503, "A backend service is unavailable; try again shortly")
    LOG.exception("unexpected error on %s %s", request.method, request.path_info)
    return error_response(request, 500, "Internal server error")
