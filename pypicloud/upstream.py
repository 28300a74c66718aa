"""The upstream index of the fallback modes (SPEC section 9).

Three parts, each usable alone:

- :class:`FallbackPolicy`: what the ini says (``pypi.fallback``,
  ``pypi.always_show_upstream``, ``pypi.disallow_fallback``, ``pypi.cache_update``).
  The rules that use it live in :class:`pypicloud.service.PackageIndex`.
- :func:`parse_project_page`: a PEP 691 JSON or PEP 503 HTML project page turned
  into :class:`UpstreamFile` entries (pure functions, no I/O).
- :class:`UpstreamClient`: the HTTP side. Fetches project pages (kept in memory for
  ``page_ttl`` seconds, bounded and thread-safe), streams files and PEP 658 metadata
  files, with connect/read timeouts so a slow upstream never holds a worker for long.

The upstream base URL has no default: an admin names the index they trust.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import ipaddress
import itertools
import json
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import BinaryIO, TypeVar
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import urllib3
from packaging.utils import canonicalize_name

from . import dists
from .errors import ConfigError, InvalidUpload, PypicloudError

LOG = logging.getLogger(__name__)
T = TypeVar("T")

MODES = ("none", "redirect", "cache")
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
# PEP 691 JSON preferred; PEP 503 HTML accepted from indexes that only speak it.
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.01"
# Recorded as the uploader of files fetched from upstream. Not a possible user name
# of the ini (parentheses), so a real user's upload is never mistaken for a cached file.
UPSTREAM_UPLOADER = "(upstream)"

DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 3600.0
DEFAULT_PAGE_TTL = 60.0
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


class UpstreamError(PypicloudError):
    """The upstream index answered something we cannot use (a 5xx, a broken page, a bad hash)."""

    status = 502


class UpstreamUnavailable(UpstreamError):
    """The upstream index cannot be reached (refused, timed out)."""

    status = 503


# ---------------------------------------------------------------------------
# Policy
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FallbackPolicy:
    """The fallback settings, validated. ``disallow`` holds canonical names."""

    mode: str = "none"
    always_show_upstream: bool = False
    disallow: frozenset[str] = frozenset()
    cache_update: frozenset[str] = frozenset({"authenticated"})

    def applies_to(self, project: str) -> bool:
        """True when ``project`` may be looked up upstream at all."""
        return self.mode != "none" and canonicalize_name(project) not in self.disallow


def check_base_url(key: str, value: str | None) -> str:
    """An http(s) URL with a host, or ConfigError naming ``key`` (and not its credentials)."""
    example = "the simple index of the upstream, e.g. https://upstream.example/simple/"
    if not value:
        raise ConfigError(key, None, "required when pypi.fallback is not none: " + example)
    if not _http_url(value):
        raise ConfigError(key, _without_credentials(value), "an http:// or https:// URL: " + example)
    return value


def _without_credentials(url: str) -> str:
    """``url`` with its ``user:password@`` shown as ``***@`` (for messages).

    The user name goes too: some indexes take a token as the user name alone.
    """
    scheme, sep, rest = url.partition("://")
    authority = rest.split("/", 1)[0]
    if not sep or "@" not in authority:
        return url
    return f"{scheme}://***@{authority.rsplit('@', 1)[1]}{rest[len(authority) :]}"


def simple_index_url(base_url: str) -> str:
    """The simple index under ``base_url``.

    A URL without a path (``https://upstream.example``) means that host's
    ``/simple/``, as pypicloud 1.x's ``pypi.fallback_base_url`` did.
    """
    if urlsplit(base_url).path in ("", "/"):
        return base_url.rstrip("/") + "/simple/"
    return base_url


def split_credentials(url: str) -> tuple[str, str | None]:
    """``(url without user:password@, Basic authorization value or None)``."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    token = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=host).geturl(), "Basic " + base64.b64encode(token.encode("utf-8")).decode(
        "ascii"
    )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def default_upstream_url() -> str | None:
    """The public index pip installs from by default, as pip itself names it.

    pypicloud 1.x fell back to that index when ``pypi.fallback`` was set and
    no URL was given, so a 1.x ini with ``pypi.fallback = redirect`` and no
    URL starts with the same meaning. pip knows the address; asking it keeps a
    second copy out of this code. None when pip is not importable (the setting
    is then required).
    """
    try:
        from pip._internal.models.index import PyPI
    except Exception:  # pip absent or its internals moved
        return None
    url = getattr(PyPI, "simple_url", None)
    return url + "/" if isinstance(url, str) and not url.endswith("/") else url


def fallback_from_settings(settings) -> tuple[FallbackPolicy, UpstreamClient | None]:
    """The policy and (unless the mode is ``none``) the client, from the ini."""
    mode = settings.get_choice("pypi.fallback", MODES, "none")
    if settings.get_str("pypi.fallback") is None:
        # The default differs from 1.x's on purpose; say so once, at start-up.
        LOG.warning(
            "pypi.fallback is not set, so projects that are not stored here are not "
            "found (404). pypicloud 1.x redirected them to the public index by "
            "default; to keep that, add the line: pypi.fallback = redirect "
            "(or set pypi.fallback = none to silence this warning)"
        )
    if "pypi.cache_update" in settings:
        cache_update = settings.get_list("pypi.cache_update", ())
    else:
        cache_update = ["authenticated"]
    policy = FallbackPolicy(
        mode=mode,
        always_show_upstream=settings.get_bool("pypi.always_show_upstream", False),
        disallow=frozenset(canonicalize_name(n) for n in settings.get_list("pypi.disallow_fallback")),
        cache_update=frozenset(cache_update),
    )
    if mode == "none":
        return policy, None
    base_url = settings.get_str("pypi.fallback_base_url") or default_upstream_url()
    base_url = check_base_url("pypi.fallback_base_url", base_url)
    timeout = settings.get_float("pypi.fallback_timeout", DEFAULT_TIMEOUT)
    # "nan" and "inf" parse as floats, but no socket takes them (every request would fail
    # with a 500), and "no timeout at all" is what this setting exists to prevent.
    if timeout is None or not 0 < timeout <= MAX_TIMEOUT:
        raise ConfigError(
            "pypi.fallback_timeout",
            settings.get_str("pypi.fallback_timeout"),
            f"a number of seconds greater than 0, at most {MAX_TIMEOUT:g}",
        )
    ttl = settings.get_int("pypi.fallback_page_ttl", int(DEFAULT_PAGE_TTL), minimum=0)
    return policy, UpstreamClient(
        base_url,
        timeout=timeout,
        page_ttl=float(ttl),
        allow_private=settings.get_bool("pypi.fallback_allow_private", False),
    )


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class UpstreamFile:
    """One file of an upstream project page.

    ``url`` is absolute and without fragment. ``sha256`` is None when upstream gave
    none. ``metadata_sha256`` is the PEP 658 file's sha256, None when upstream
    offers no metadata file or no hash for it.
    """

    filename: str
    url: str
    sha256: str | None = None
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    metadata_sha256: str | None = None
    size: int | None = None
    upload_time: str | None = None
    version: str | None = None  # set by distributions_of()

    @property
    def metadata_url(self) -> str:
        """PEP 658: the metadata file lives at the file's URL plus ``.metadata``."""
        return self.url + ".metadata"


@dataclass(frozen=True)
class UpstreamProject:
    """An upstream project page. ``serial`` differs between two fetches (a cache-key part)."""

    name: str
    files: tuple[UpstreamFile, ...]
    serial: int = 0

    def file(self, filename: str) -> UpstreamFile | None:
        for entry in self.files:
            if entry.filename == filename:
                return entry
        return None


def project_url(base_url: str, project: str) -> str:
    """``<base>/<canonical name>/`` (PEP 503: one canonical URL per project)."""
    return base_url.rstrip("/") + "/" + canonicalize_name(project) + "/"


def json_api_url(base_url: str, project: str) -> str | None:
    """The legacy JSON API URL of ``project`` on an upstream whose simple index is at
    ``<root>/simple/``: ``<root>/pypi/<canonical name>/json``. None for an upstream whose
    simple index lives elsewhere (no JSON API at a known address)."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if not path.endswith("/simple"):
        return None
    root = path[: -len("simple")]
    return parts._replace(
        path=f"{root}pypi/{canonicalize_name(project)}/json", query="", fragment=""
    ).geturl()


def _hex(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text
    return None


def _metadata_hash(value: object) -> str | None:
    """sha256 of the PEP 658/714 metadata from a JSON value (dict) or an HTML attribute."""
    if isinstance(value, dict):
        return _hex(value.get("sha256"))
    if isinstance(value, str):
        name, _, digest = value.partition("=")
        if name.strip().lower() == "sha256":
            return _hex(digest)
    return None


def _http_url(url: str) -> bool:
    """An absolute http(s) URL with a host and a valid port (urllib3 can ask it)."""
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _resolve(base: str, href: str) -> str | None:
    """``href`` made absolute against ``base``, without fragment; None for an http(s)
    URL it cannot be (``urljoin`` raises on some, e.g. a broken ``[IPv6]`` host)."""
    try:
        url = urldefrag(urljoin(base, href))[0]
    except ValueError:
        return None
    return url if _http_url(url) else None


def parse_json_page(body: bytes, page_url: str) -> UpstreamProject:
    """A PEP 691 project page. Raises UpstreamError when it is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise UpstreamError("The upstream index sent a project page that is not valid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise UpstreamError("The upstream index sent a JSON page without a list of files")
    meta = doc.get("meta") or {}
    if not isinstance(meta, dict):
        raise UpstreamError("The upstream index sent a JSON page whose meta is not an object")
    version = str(meta.get("api-version", "1.0"))
    if not version.startswith("1."):
        raise UpstreamError(f"The upstream index speaks simple API {version}; 1.x is supported")
    files = []
    for entry in doc["files"]:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("filename"), str)
            or not isinstance(entry.get("url"), str)
        ):
            continue
        url = _resolve(page_url, entry["url"])
        if url is None:
            continue
        hashes = entry.get("hashes") if isinstance(entry.get("hashes"), dict) else {}
        yanked = entry.get("yanked", False)
        metadata = entry.get("core-metadata", entry.get("dist-info-metadata"))
        size = entry.get("size")
        upload_time = entry.get("upload-time")
        requires_python = entry.get("requires-python")
        files.append(
            UpstreamFile(
                filename=entry["filename"],
                url=url,
                sha256=_hex(hashes.get("sha256")),
                requires_python=requires_python
                if isinstance(requires_python, str) and requires_python
                else None,
                yanked=bool(yanked),
                yanked_reason=yanked if isinstance(yanked, str) and yanked else None,
                metadata_sha256=_metadata_hash(metadata),
                size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
                upload_time=upload_time if isinstance(upload_time, str) else None,
            )
        )
    name = doc.get("name") if isinstance(doc.get("name"), str) else ""
    return UpstreamProject(name=name, files=tuple(files))


class _LinkCollector(HTMLParser):
    """Collects the ``<a>`` elements of a PEP 503 page (and a ``<base href>``)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[tuple[dict[str, str | None], str]] = []
        self.title = ""
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self._finish()
            self._current = dict(attrs)
            self._text = []
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "a":
            self._finish()
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._current is not None:
            self._text.append(data)
        if self._in_title:
            self.title += data

    def _finish(self):
        if self._current is not None:
            self.links.append((self._current, "".join(self._text).strip()))
        self._current = None

    def close(self):
        super().close()
        self._finish()


def parse_html_page(body: bytes, page_url: str) -> UpstreamProject:
    """A PEP 503 project page (parsed with the standard library's HTML parser)."""
    parser = _LinkCollector()
    try:
        parser.feed(body.decode("utf-8", "replace"))
        parser.close()
    except AssertionError:  # how _markupbase gives up, e.g. on "<![unknown[" sections
        raise UpstreamError("The upstream index sent an HTML page that cannot be parsed") from None
    # A base href that is no URL is ignored, as browsers do (links count from the page).
    base = (_resolve(page_url, parser.base) if parser.base else None) or page_url
    files = []
    for attrs, text in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        url = _resolve(base, href)
        if url is None:
            continue
        fragment = urldefrag(href)[1]
        # PEP 503: the link text is the filename; the URL's last segment says the same.
        filename = text or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        hash_name, _, digest = fragment.partition("=")
        yanked = "data-yanked" in attrs
        metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        files.append(
            UpstreamFile(
                filename=filename,
                url=url,
                sha256=_hex(digest) if hash_name.lower() == "sha256" else None,
                requires_python=attrs.get("data-requires-python") or None,
                yanked=yanked,
                yanked_reason=(attrs.get("data-yanked") or None) if yanked else None,
                metadata_sha256=_metadata_hash(metadata),
            )
        )
    title = parser.title.strip()
    name = title[len("Links for ") :].strip() if title.startswith("Links for ") else ""
    return UpstreamProject(name=name, files=tuple(files))


def distributions_of(page: UpstreamProject, project: str) -> tuple[UpstreamFile, ...]:
    """The files of ``page`` that are wheels or sdists of ``project``, with their versions.

    Anything else (other projects' files, ``.exe``/``.egg`` and other formats,
    unsafe names) could be neither served nor cached, so it is left out.
    """
    wanted = canonicalize_name(project)
    kept, seen = [], set()
    for entry in page.files:
        try:
            dist = dists.parse_filename(entry.filename)
        except InvalidUpload:
            continue
        # A filename listed twice is one file: the first entry counts.
        if dist.project == wanted and entry.filename not in seen:
            seen.add(entry.filename)
            kept.append(dataclasses.replace(entry, version=dist.version))
    return tuple(kept)


def parse_project_page(body: bytes, content_type: str, page_url: str) -> UpstreamProject:
    """Either format, chosen by the answer's ``Content-Type``."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media.endswith("json"):
        return parse_json_page(body, page_url)
    return parse_html_page(body, page_url)


# ---------------------------------------------------------------------------
# Small thread-safe helpers
# ---------------------------------------------------------------------------
class _Run:
    """One run of :meth:`SingleFlight.run`: its outcome, once ``done`` is set."""

    def __init__(self):
        self.done = threading.Event()
        self.value = None
        self.error: BaseException | None = None


class SingleFlight:
    """Concurrent calls for one key share one run of the work: its result or its error.

    Callers that come while a run for their key is under way wait for it and get
    what it gave, a failure included: with a stalled upstream every waiting
    request then costs one timeout, not one per request queued before it (as
    with a plain per-key lock, where each waiter would try again in turn).
    Nothing is kept after a run: the next caller runs the work again.
    """

    def __init__(self):
        self._guard = threading.Lock()
        self._runs: dict[str, _Run] = {}

    def run(self, key: str, work: Callable[[], T]) -> T:
        with self._guard:
            current = self._runs.get(key)
            leading = current is None
            if leading:
                current = self._runs[key] = _Run()
        if not leading:
            current.done.wait()
            if current.error is not None:
                raise current.error
            return current.value
        try:
            current.value = work()
            return current.value
        except BaseException as exc:
            current.error = exc
            raise
        finally:
            with self._guard:
                del self._runs[key]
            current.done.set()


class PageMemo:
    """Upstream pages by project, each kept ``ttl`` seconds; thread-safe.

    Bounded twice, least recently used first out: at most ``max_entries``
    pages, and at most ``max_files`` file entries over all pages (a page of a
    project with thousands of files weighs as much as thousands of small pages).
    """

    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = 1024,
        max_files: int = 250_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_files = max_files
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, UpstreamProject | None]] = OrderedDict()
        self._files = 0

    @staticmethod
    def _weight(value: UpstreamProject | None) -> int:
        return 1 + (len(value.files) if value is not None else 0)

    _MISS = object()

    def get(self, key: str):
        """The remembered value (an UpstreamProject, or None for "upstream has no such
        project"), or ``PageMemo._MISS``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return self._MISS
            if entry[0] <= self.clock():
                del self._entries[key]
                self._files -= self._weight(entry[1])
                return self._MISS
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: str, value: UpstreamProject | None) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._files -= self._weight(old[1])
            self._entries[key] = (self.clock() + self.ttl, value)
            self._files += self._weight(value)
            # The newest page always stays, even alone over the file bound.
            while len(self._entries) > 1 and (
                len(self._entries) > self.max_entries or self._files > self.max_files
            ):
                _, (_, dropped) = self._entries.popitem(last=False)
                self._files -= self._weight(dropped)

    def __len__(self) -> int:
        return len(self._entries)


# ---------------------------------------------------------------------------
# The HTTP client
# ---------------------------------------------------------------------------
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
                url = _resolve(url, location)
                if url is None:
                    raise UpstreamError("The upstream index redirected to a URL that is not http(s)")
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
    def _close(response, complete: bool) -> None:
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
            return hit
        # One fetch per project at a time: concurrent requests share its answer
        # (or its failure) instead of each fetching in turn.
        return self._page_fetches.run(key, lambda: self._fetch_and_remember(key))

    def _fetch_and_remember(self, key: str) -> UpstreamProject | None:
        hit = self.pages.get(key)  # a run that ended just before this one began
        if hit is not PageMemo._MISS:
            return hit
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
            yield stream
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

    def __init__(self, response):
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
