"""The upstream index's HTTP client: project pages, files and PEP 658 metadata files.

Connect and read timeouts, a deadline for whole pages, a size bound, at most
``MAX_REDIRECTS`` redirects, credentials sent to the upstream's own origin only,
and no internal addresses for any other host (unless the admin allows them).
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast
from urllib.parse import urlsplit

import urllib3
from packaging.utils import canonicalize_name

from ..concurrency import SingleFlight
from ..errors import UpstreamError, UpstreamUnavailable
from ..simple_api import HTML, JSON
from .memo import PageMemo
from .pages import UpstreamProject, distributions_of, parse_project_page
from .urls import (
    _origin,
    _resolve,
    _without_credentials,
    check_base_url,
    json_api_url,
    project_url,
    simple_index_url,
    split_credentials,
)

LOG = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
DEFAULT_PAGE_TTL = 60.0
# PEP 691 JSON preferred; PEP 503 HTML accepted from indexes that only speak it.
ACCEPT = f"{JSON}, {HTML};q=0.2, text/html;q=0.01"
MAX_PAGE_SIZE = 32 * 1024 * 1024
MAX_REDIRECTS = 5
CHUNK = 1024 * 1024
# A page or metadata file must arrive whole within this many read timeouts (at
# least MIN_BODY_SECONDS): the read timeout bounds each read, and an upstream that
# drips a byte now and then would otherwise hold a worker for as long as it likes.
# Files have no such bound (a large one takes its time); each of their reads has.
BODY_DEADLINE_TIMEOUTS = 3
MIN_BODY_SECONDS = 30.0
USER_AGENT = "pypicloud-fallback/2"


def _describe(exc: Exception) -> str:
    """A short reason for a failed request (no URLs with credentials, no tracebacks)."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    # NewConnectionError subclasses ConnectTimeoutError in urllib3: test it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "connection refused or failed"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timed out"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "TLS error"
    return type(exc).__name__


@dataclass
class _Fetched:
    status: int
    url: str
    response: urllib3.BaseHTTPResponse = field(repr=False)


class UpstreamClient:
    """Reads the upstream simple index. One instance is shared by every request thread.

    ``timeout`` bounds connecting and each read (seconds). Project pages, and
    the fact that upstream has no such project, are remembered for
    ``page_ttl`` seconds (0: never), at most ``max_pages`` of them.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        page_ttl: float = DEFAULT_PAGE_TTL,
        max_pages: int = 1024,
        max_page_size: int = MAX_PAGE_SIZE,
        clock: Callable[[], float] = time.monotonic,
        pool: urllib3.PoolManager | None = None,
        allow_private: bool = False,
    ):
        url, self._authorization = split_credentials(check_base_url("pypi.fallback_base_url", base_url))
        # Never shown to clients (redirects) or in logs with its credentials.
        self.base_url = simple_index_url(url)
        self._auth_origin = _origin(self.base_url)
        # Hosts other than the upstream index's own (file hosts, redirect
        # targets) may not be internal addresses unless the admin allows it.
        self.allow_private = allow_private
        self.timeout = timeout
        self.body_seconds = max(BODY_DEADLINE_TIMEOUTS * timeout, MIN_BODY_SECONDS)
        self._clock = clock
        self.max_page_size = max_page_size
        self.pages = PageMemo(page_ttl, max_entries=max_pages, clock=clock)
        self._page_fetches = SingleFlight()
        self._serials = itertools.count(1)
        # Thread-safe connection pools; retries are ours to decide (none: a failure
        # is answered at once rather than multiplied by a retry loop).
        self._pool = pool or urllib3.PoolManager(
            num_pools=8,
            maxsize=8,
            block=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
        )

    def project_url(self, project: str) -> str:
        return project_url(self.base_url, project)

    def json_url(self, project: str) -> str | None:
        """Upstream's legacy JSON API for ``project``, where its address is known."""
        return json_api_url(self.base_url, project)

    # Requests ---------------------------------------------------------------
    def _open(self, url: str, accept: str | None = None) -> _Fetched:
        """GET ``url`` following up to MAX_REDIRECTS http(s) redirects; the body is not read.

        Everything is asked for uncompressed (``identity``): a ``.tar.gz`` is never
        decoded on the way, and no compressed page can expand beyond our size limits.
        """
        for _ in range(MAX_REDIRECTS + 1):
            self._check_target(url)
            headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
            if accept:
                headers["Accept"] = accept
            # Credentials of the base URL go to its own origin only (not to a
            # files host or wherever a redirect leads).
            if self._authorization and _origin(url) == self._auth_origin:
                headers["Authorization"] = self._authorization
            try:
                response = self._pool.request(
                    "GET", url, headers=headers, preload_content=False, redirect=False
                )
            except urllib3.exceptions.HTTPError as exc:
                raise UpstreamUnavailable(f"The upstream index is unavailable ({_describe(exc)})") from None
            location = response.get_redirect_location()
            if response.status in (301, 302, 303, 307, 308) and location:
                self._close(response, False)
                target = _resolve(url, location)
                if target is None:
                    raise UpstreamError("The upstream index redirected to a URL that is not http(s)")
                url = target
                continue
            return _Fetched(response.status, url, response)
        raise UpstreamError("The upstream index redirected too many times")

    def _check_target(self, url: str) -> None:
        """Refuse a host other than upstream's own that resolves to an internal address.

        Upstream pages choose the URLs of their files and may redirect
        anywhere: without this a page could make the server request its own
        network (loopback, private, link-local, multicast addresses). The
        upstream index's own origin is the admin's choice and always allowed.
        """
        if self.allow_private or _origin(url) == self._auth_origin:
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (OSError, ValueError, UnicodeError):
            raise UpstreamError("The upstream index linked to a host that cannot be resolved") from None
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if not address.is_global or address.is_multicast:
                LOG.warning(
                    "refused to fetch %s: %s is not a public address (pypi.fallback_allow_private)",
                    _without_credentials(url),
                    address,
                )
                raise UpstreamError("The upstream index could not provide this file")

    def _foreign(self, url: str) -> bool:
        return _origin(url) != self._auth_origin

    @staticmethod
    def _close(response: urllib3.BaseHTTPResponse, complete: bool) -> None:
        if not complete:
            # A half-read connection must not go back to the pool.
            response.close()
        response.release_conn()

    def _read_all(self, fetched: _Fetched, limit: int, what: str) -> bytes:
        response = fetched.response
        complete = False
        deadline = self._clock() + self.body_seconds
        try:
            chunks, total = [], 0
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                if self._clock() > deadline:
                    raise UpstreamUnavailable(
                        f"The upstream {what} did not arrive within {self.body_seconds:g} seconds"
                    )
                total += len(block)
                if total > limit:
                    raise UpstreamError(f"The upstream {what} is larger than {limit} bytes")
                chunks.append(block)
            complete = True
            return b"".join(chunks)
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamUnavailable(f"The upstream index is unavailable ({_describe(exc)})") from None
        finally:
            self._close(response, complete)

    # Pages ----------------------------------------------------------------------
    def project(self, project: str) -> UpstreamProject | None:
        """The upstream page of ``project``, or None when upstream does not know it.

        Raises UpstreamUnavailable / UpstreamError when upstream cannot answer.
        Failures are not remembered: the next request asks again.
        """
        key = canonicalize_name(project)
        hit = self.pages.get(key)
        if hit is not PageMemo._MISS:
            return cast("UpstreamProject | None", hit)
        # One fetch per project at a time: concurrent requests share its answer
        # (or its failure) instead of each fetching in turn.
        return self._page_fetches.run(key, lambda: self._fetch_and_remember(key))

    def _fetch_and_remember(self, key: str) -> UpstreamProject | None:
        hit = self.pages.get(key)  # a run that ended just before this one began
        if hit is not PageMemo._MISS:
            return cast("UpstreamProject | None", hit)
        page = self._fetch_project(key)
        self.pages.put(key, page)
        return page

    def _fetch_project(self, project: str) -> UpstreamProject | None:
        url = self.project_url(project)
        fetched = self._open(url, ACCEPT)
        if fetched.status in (404, 410):
            self._close(fetched.response, False)
            return None
        if fetched.status != 200:
            self._close(fetched.response, False)
            raise UpstreamError(f"The upstream index answered {fetched.status} for {project!r}")
        content_type = fetched.response.headers.get("Content-Type", "text/html")
        body = self._read_all(fetched, self.max_page_size, "project page")
        page = parse_project_page(body, content_type, fetched.url)
        # The page's own spelling of the name is shown, but only if it is this
        # project's name: a page cannot rename the project it is served for.
        same = page.name and canonicalize_name(page.name) == project
        return UpstreamProject(
            name=page.name if same else project,
            files=distributions_of(page, project),
            serial=next(self._serials),
        )

    # Files ----------------------------------------------------------------------
    @contextlib.contextmanager
    def open_file(self, url: str) -> Iterator[BinaryIO]:
        """A readable stream of a file's bytes (read it in chunks; never whole).

        Errors while reading raise UpstreamUnavailable; a non-200 answer raises
        UpstreamError before anything is read.
        """
        try:
            fetched = self._open(url)
            if fetched.status != 200:
                self._close(fetched.response, False)
                raise UpstreamError(f"The upstream index answered {fetched.status} for a file")
        except UpstreamError as exc:
            raise self._uniform(url, exc) from None
        stream = _ResponseReader(fetched.response)
        try:
            yield cast(BinaryIO, stream)  # callers only read(n) it
        finally:
            self._close(fetched.response, stream.complete)

    def read_metadata(self, url: str, limit: int) -> bytes:
        """A PEP 658 metadata file, at most ``limit`` bytes."""
        try:
            fetched = self._open(url)
            if fetched.status != 200:
                self._close(fetched.response, False)
                raise UpstreamError(f"The upstream index answered {fetched.status} for a metadata file")
            return self._read_all(fetched, limit, "metadata file")
        except UpstreamError as exc:
            raise self._uniform(url, exc) from None

    def _uniform(self, url: str, exc: UpstreamError) -> UpstreamError:
        """One answer for every failure on a host other than upstream's own.

        What a foreign host answered (refused, 401, 404, a protocol error)
        would tell the client which internal ports answer; it goes to the log.
        """
        if not self._foreign(url):
            return exc
        LOG.warning("fetching %s from the upstream index failed: %s", _without_credentials(url), exc.message)
        return UpstreamError("The upstream index could not provide this file")

    def close(self) -> None:
        self._pool.clear()


class _ResponseReader:
    """A file-like ``read(n)`` over a response that turns transport errors into ours."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response
        self.complete = False

    def read(self, size: int = CHUNK) -> bytes:
        try:
            block = self._response.read(size, decode_content=False)
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamUnavailable(f"The upstream index is unavailable ({_describe(exc)})") from None
        if not block:
            self.complete = True
        return block
