"""One log line per request, and a request id that ties every log line of a request together.

The id comes from the proxy's ``X-Request-ID`` header when it is a plain token
(letters, digits, ``.``, ``_``, ``-``; at most 128 characters), otherwise it is made
here; it is returned in the response's ``X-Request-ID`` and set on every log record
made while the request runs (``%(request_id)s`` in a formatter; ``-`` outside
requests). The access line goes to the logger ``pypicloud.requests`` at INFO, as
text or, with ``logging.format = json``, as one JSON object; nothing is formatted
when that logger is off. Every value that came from the client is escaped, so a
CR or LF in a path cannot forge a line.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
import uuid
from datetime import UTC, datetime

from pyramid.tweens import INGRESS

from .events import current_request_id, request_context
from .timefmt import iso_utc

LOG = logging.getLogger("pypicloud.requests")
HEADER = "X-Request-ID"
_ENVIRON_KEY = "HTTP_X_REQUEST_ID"
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def install_record_factory() -> None:
    """Give every log record a ``request_id`` attribute (once per process)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "ppc_request_id", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        record.request_id = current_request_id()
        return record

    factory.ppc_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def escape(text: str) -> str:
    """Control characters as ``\\xNN``: a value the client chose stays on one line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# Where the fast lane leaves the id it used when it hands a request on to Pyramid,
# so that every log line of one request carries one id.
ID_KEY = "ppc.request_id"


def request_id_for(environ: dict) -> str:
    """The request's id: the one already given to it, the proxy's, or a new one."""
    given = environ.get(ID_KEY)
    if given is not None:
        return given
    offered = environ.get(_ENVIRON_KEY, "")
    return offered if _TOKEN.fullmatch(offered) else f"{_ids.getrandbits(128):032x}"


# Request ids are for telling log lines apart, not secrets (a client may even choose
# its own): drawn from a generator seeded once from the OS, not ``uuid4``, whose
# ``os.urandom`` system call releases the GIL on every request, which then has to be
# won back from the other busy server threads. Reseeded in every forked child, so
# that worker processes never share a sequence.
_ids = random.Random(uuid.uuid4().int)
os.register_at_fork(after_in_child=lambda: _ids.seed(uuid.uuid4().int))


def log_format(settings) -> str:
    """``logging.format``: text or json."""
    return settings.get_str("logging.format", "text").strip().lower()


def _who(request) -> str:
    # Only if something already asked who it is: never a password check just to log.
    identity = request.environ.get("ppc.identity")
    if identity is None or identity.username is None:
        return "-"
    if identity.token is not None:
        return f"{identity.username} (token {identity.token.token_id})"
    return identity.username


def access_line(
    request, route: str, status: int, size: int | None, seconds: float, rid: str, fmt: str
) -> str:
    """The access line of a request (``request``: a WebOb request; ``route``: its route's name)."""
    fields = {
        "time": iso_utc(datetime.now(UTC)),
        "request_id": rid,
        "client": request.client_addr or "-",
        "user": _who(request),
        "method": request.method,
        "path": request.path_qs,
        "route": route,
        "status": status,
        "bytes": size,
        "duration_ms": round(seconds * 1000, 2),
    }
    if fmt == "json":
        return json.dumps(fields, ensure_ascii=True)  # escapes control characters itself
    return (
        f'{fields["client"]} {escape(fields["user"])} "{escape(request.method)} '
        f'{escape(request.path_qs)}" {status} {size if size is not None else "-"} '
        f"{fields['duration_ms']}ms route={route} id={rid}"
    )


def _line(request, status: int, size: int | None, seconds: float, rid: str, fmt: str) -> str:
    route = request.matched_route.name if request.matched_route is not None else "-"
    return access_line(request, route, status, size, seconds, rid, fmt)


def request_log_tween_factory(handler, registry):
    fmt = log_format(registry.services.settings)

    def tween(request):
        rid = request_id_for(request.environ)
        # The id (and the client address, for events) hold for every log record
        # of the request, the access line included.
        with request_context(request.client_addr, rid):
            started = time.perf_counter()
            try:
                response = handler(request)
            except BaseException:
                if LOG.isEnabledFor(logging.INFO):
                    LOG.info("%s", _line(request, 500, None, time.perf_counter() - started, rid, fmt))
                raise
            response.headers[HEADER] = rid
            if LOG.isEnabledFor(logging.INFO):
                LOG.info(
                    "%s",
                    _line(
                        request,
                        response.status_int,
                        response.content_length,
                        time.perf_counter() - started,
                        rid,
                        fmt,
                    ),
                )
            return response

    return tween


def includeme(config) -> None:
    fmt = log_format(config.registry.services.settings)
    if fmt not in ("text", "json"):
        from .errors import ConfigError

        raise ConfigError("logging.format", fmt, "text or json")
    install_record_factory()
    config.add_tween("pypicloud.requestlog.request_log_tween_factory", under=INGRESS)
