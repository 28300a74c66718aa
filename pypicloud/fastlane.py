"""The fast lane: the hot, read-only requests answered in front of Pyramid.

A cached index page, a ``.metadata`` file or a small download costs the service
one cache or index lookup, but going through Pyramid costs several times that:
the router, URL dispatch (a regex per route until one matches), the tweens, the
security policy and a few WebOb ``Response`` objects (docs/performance.md).
This WSGI middleware sits in front of the Pyramid app and answers, by itself,

- GET/HEAD of ``/simple/`` when the page cache already holds the page for this
  caller (:meth:`SimplePages.peek_index`: nothing is rendered here);
- GET/HEAD of ``/simple/<canonical project>/``: from the page cache, or, when no
  upstream is configured, rendered by :meth:`SimplePages.project` with the view's
  own renderer (``views.simple.project_renderer``) and kept, as the view would;
- GET/HEAD of ``/packages/<canonical project>/<file>`` and
  ``/api/package/<canonical project>/<file>`` (files and PEP 658 ``.metadata``)
  stored here, through the very service calls of views/files.py (upstream's
  files, fetched or passed on, are the full path's work: upstream is asked once).

It is a cache front, never a second implementation of the rules: who may read
what is decided by the same service methods, and the headers come from the same
functions (pypicloud/read_headers.py) as the views'. The fall-through rule: the
request goes, unchanged, to Pyramid whenever anything is not a plain success -
the service raises (not found, forbidden, unauthorized, too many logins, a backend
down, a file not stored here), the project list is not cached, a project page is
not cached and upstream is configured, the download is a redirect, the request has a
``Range``, a ``format=`` query, an Authorization header that is not well-formed
Basic credentials, or a path that is not plain ASCII. Pyramid then answers (and
renders errors) exactly as without the lane; the identity already decided (and a
wrong password already counted) is kept in the environ, as the security policy
keeps it, and so is the request id.

What Pyramid adds to these answers is added here too: ``X-Request-ID`` (the
request log), ``X-Content-Type-Options: nosniff`` (webapp's subscriber), the one
access line (same fields, same route name) and the request context of events.
The lane is off when ``pypi.fast_reads = false``, and while ``pypi.metrics`` is
on (the metrics tween counts every request by route; the lane does not count).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import NamedTuple

from packaging.utils import canonicalize_name
from pyramid.request import Request
from webob.request import BaseRequest

from .events import request_context
from .models import ANONYMOUS, Identity
from .read_headers import (
    FILE_TYPE,
    file_headers,
    metadata_headers,
    page_cache_control,
    page_headers,
    page_not_modified_headers,
)
from .records import METADATA_SUFFIX
from .requestlog import HEADER as REQUEST_ID_HEADER
from .requestlog import ID_KEY, LOG, access_line, log_format, request_id_for
from .security import IDENTITY_KEY, credentials_identity, parse_basic
from .views.files import file_body
from .views.negotiation import negotiate_accept
from .views.simple import project_renderer, site_key_of

# Set in the environ of every request the lane answered itself (tests look at it).
SERVED_KEY = "ppc.fast_lane"
NOSNIFF = ("X-Content-Type-Options", "nosniff")
_NOT_MODIFIED = "304 Not Modified"


def fast_reads_enabled(settings) -> bool:
    """``pypi.fast_reads`` (default on), and never while ``pypi.metrics`` is on."""
    return settings.get_bool("pypi.fast_reads", True) and not settings.get_bool("pypi.metrics", False)


class Target(NamedTuple):
    """What a path names: the Pyramid route it matches, the project, the file.

    (Named tuples here: made on every request of the lane, they cost a third of a
    frozen dataclass.)"""

    route: str
    project: str | None = None
    filename: str | None = None


def target_of(path: str) -> Target | None:
    """The lane's share of Pyramid's routes (routes.py): only canonical project names,
    only plain ASCII paths; anything else (redirects included) is Pyramid's."""
    if not path.isascii():
        return None
    if path == "/simple/":
        return Target("simple.index")
    parts = path.split("/")
    if len(parts) == 4 and parts[0] == "":
        if parts[1] == "simple" and parts[2] and parts[3] == "":
            target = Target("simple.project", parts[2])
        elif parts[1] == "packages" and parts[2] and parts[3]:
            target = Target("packages.file", parts[2], parts[3])
        else:
            return None
    elif len(parts) == 5 and parts[0] == "" and parts[1] == "api" and parts[2] == "package":
        if not (parts[3] and parts[4]):
            return None
        target = Target("api.file", parts[3], parts[4])
    else:
        return None
    return target if canonicalize_name(target.project or "") == target.project else None


class Answer(NamedTuple):
    """A successful answer: status line, headers (without the two every answer gets), body."""

    status: str
    headers: list[tuple[str, str]]
    body: Iterable[bytes]
    size: int | None


class FastLane:
    """WSGI middleware in front of the Pyramid app (see the module's docstring)."""

    def __init__(self, app, services):
        self.app = app
        # Keep the Pyramid registry reachable for tests and tools (as RejectUndecodable does).
        self.registry = getattr(app, "registry", None)
        self.services = services
        self.log_format = log_format(services.settings)

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            target = target_of(environ.get("PATH_INFO", ""))
            if target is not None:
                return self._serve(environ, start_response, target)
        return self.app(environ, start_response)

    def _serve(self, environ, start_response, target: Target):
        request = BaseRequest(environ)
        rid = request_id_for(environ)
        with request_context(request.client_addr, rid):
            logged = LOG.isEnabledFor(logging.INFO)
            started = time.perf_counter() if logged else 0.0
            try:
                answer = self._answer(request, target)
            except Exception:
                # A refusal, a miss or a failure: Pyramid answers it as it always did
                # (errors are rendered there only).
                answer = None
            if answer is not None and logged:
                seconds = time.perf_counter() - started
                status = int(answer.status[:3])
                LOG.info(
                    "%s",
                    access_line(request, target.route, status, answer.size, seconds, rid, self.log_format),
                )
        if answer is None:
            environ[ID_KEY] = rid  # the same id on every log line of this request
            return self.app(environ, start_response)
        environ[SERVED_KEY] = True
        start_response(answer.status, [*answer.headers, (REQUEST_ID_HEADER, rid), NOSNIFF])
        if environ["REQUEST_METHOD"] == "HEAD":
            close = getattr(answer.body, "close", None)
            if close is not None:
                close()
            return []
        return answer.body

    def _answer(self, request, target: Target) -> Answer | None:
        if target.filename is None:
            return self._page(request, target.project)
        assert target.project is not None
        return self._file(request, target.project, target.filename)

    def _identity(self, request) -> Identity | None:
        """Who asks, as the security policy decides it (None: leave it to the policy)."""
        environ = request.environ
        cached = environ.get(IDENTITY_KEY)
        if cached is not None:
            return cached
        header = environ.get("HTTP_AUTHORIZATION")
        if not header:
            identity = ANONYMOUS  # these routes never look at the browser session
        else:
            credentials = parse_basic(header)  # malformed: ValueError, Pyramid answers 401
            if credentials is None:
                return None  # another scheme
            identity = credentials_identity(self.services, request.client_addr, *credentials)
        # Kept where the security policy keeps it: if Pyramid answers after all, the
        # credentials are not checked (nor a wrong password counted) a second time.
        environ[IDENTITY_KEY] = identity
        return identity

    def _page(self, request, project: str | None) -> Answer | None:
        environ = request.environ
        if "format=" in environ.get("QUERY_STRING", ""):
            return None
        # Negotiated before the identity is asked for, in the view's order.
        fmt = negotiate_accept(environ.get("HTTP_ACCEPT"))
        identity = self._identity(request)
        if identity is None:
            return None
        pages = self.services.simple_pages
        site = site_key_of(environ)
        if project is None:
            found = pages.peek_index(identity, fmt, site)
        else:
            found = pages.peek_project(identity, project, fmt, site)
            if found is None and self.services.service.upstream is None:
                # Not cached yet: rendered here, by the view's own renderer, unless
                # upstream could be asked (that is the full path's work).
                found = pages.project(
                    identity, project, fmt, site, self._project_renderer(request, project, fmt)
                )
        if found is None or found.page is None:
            return None
        page = found.page
        cache_control = page_cache_control(self.services.index_cache_control, found.private)
        if "HTTP_IF_NONE_MATCH" in environ and page.etag.strip('"') in request.if_none_match:
            return Answer(_NOT_MODIFIED, page_not_modified_headers(page, cache_control), [], None)
        size = len(page.body)
        headers = page_headers(page, found.serial, cache_control)
        headers.append(("Content-Length", str(size)))
        return Answer("200 OK", headers, [page.body], size)

    def _project_renderer(self, request, project: str, fmt: str):
        """The view's renderer over a Pyramid request on the same environ (its route
        URLs and templates come from the registry)."""
        page_request = Request(request.environ)
        page_request.registry = self.registry
        return project_renderer(page_request, project, fmt)

    def _file(self, request, project: str, filename: str) -> Answer | None:
        environ = request.environ
        if "HTTP_RANGE" in environ or "HTTP_IF_RANGE" in environ:
            return None
        identity = self._identity(request)
        if identity is None:
            return None
        service = self.services.service
        max_age = self.services.package_max_age
        if filename.endswith(METADATA_SUFFIX):
            record, data = service.core_metadata(
                identity, project, filename[: -len(METADATA_SUFFIX)], stored_only=True
            )
            headers = metadata_headers(record, service.is_public(record.project), max_age)
            if record.metadata_sha256 in request.if_none_match:
                return Answer(_NOT_MODIFIED, list(headers.items()), [], None)
            return Answer("200 OK", _file_head(len(data), headers), [data], len(data))
        result = service.download(identity, project, filename, stored_only=True)
        if result.redirect is not None:
            return None
        record = result.record
        headers = file_headers(record, service.is_public(record.project), max_age)
        if record.sha256 in request.if_none_match:
            return Answer(_NOT_MODIFIED, list(headers.items()), [], None)
        # Last: nothing after it may fail, so the stream is always handed on (and closed).
        stream = service.open_file(record, 0, record.size)
        return Answer("200 OK", _file_head(record.size, headers), file_body(environ, stream), record.size)


def _file_head(size: int, headers: dict[str, str]) -> list[tuple[str, str]]:
    return [("Content-Type", FILE_TYPE), ("Content-Length", str(size)), *headers.items()]
