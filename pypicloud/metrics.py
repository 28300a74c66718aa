"""Prometheus metrics at ``GET /metrics`` (issue 18, part 1; docs/operations.md).

Off unless ``pypi.metrics = true``; then readable by admins (password, not a
token) and by clients whose address is in ``pypi.metrics_allow_from`` (CIDRs,
checked against the socket's address, never a forwarded header).

What is measured, without touching the views or the backends: a tween counts
every request by route, method and status and times it (downloads are counted
there too, by route); the storage and index objects the service holds get
their contract methods wrapped in a timer that also counts exceptions; the page
caches, the upstream client, the uploads and the login throttle are wrapped the
same way, on the instance, so ``isinstance`` and every other attribute stay as
they were. Wrapping happens once at start-up; nothing here is changed per request.

With ``PROMETHEUS_MULTIPROC_DIR`` in the environment (gunicorn, several worker
processes) prometheus-client writes every value to a file there, and the scrape
adds up the files of all processes.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import os
import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from pyramid.response import Response

from .errors import ConfigError, Forbidden, Unauthorized

ENABLED = "pypi.metrics"
ALLOW_FROM = "pypi.metrics_allow_from"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Bounded label values: a client can send any method, but it becomes "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_DOWNLOAD_ROUTES = frozenset({"api.file", "ui.file", "packages.file"})
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BACKEND_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
# Methods of the backend contracts that are pure or lifecycle, not calls worth timing.
_NOT_TIMED = frozenset({"from_settings", "check_writable", "key_for", "close", "publishes_in_place"})


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """The app's metric objects; one per app, shared by all its threads (prometheus-client locks)."""

    def __init__(self, allow_from: list[ipaddress.IPv4Network | ipaddress.IPv6Network]):
        self.allow_from = allow_from
        # Multiprocess mode keeps values in files, so the objects are not registered
        # anywhere; otherwise each app has its own registry (tests build many apps).
        self.registry = None if multiprocess_dir() else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "ppc_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "ppc_http_request_duration_seconds",
            "Time to the response (a streamed body is sent after)",
            ["route", "method"],
            buckets=_REQUEST_BUCKETS,
            registry=r,
        )
        self.uploads = Counter("ppc_uploads", "Accepted uploads", ["result"], registry=r)
        self.upload_bytes = Counter("ppc_upload_bytes", "Bytes of newly stored uploads", registry=r)
        self.downloads = Counter("ppc_downloads", "File downloads answered", ["served"], registry=r)
        self.download_bytes = Counter(
            "ppc_download_bytes", "Bytes of files streamed by the server", registry=r
        )
        self.backend_seconds = Histogram(
            "ppc_backend_call_duration_seconds",
            "Storage and index calls",
            ["backend", "operation"],
            buckets=_BACKEND_BUCKETS,
            registry=r,
        )
        self.backend_errors = Counter(
            "ppc_backend_call_errors",
            "Storage and index calls that raised",
            ["backend", "operation", "error"],
            registry=r,
        )
        self.cache_lookups = Counter(
            "ppc_page_cache_lookups",
            "In-memory page and record cache lookups",
            ["cache", "result"],
            registry=r,
        )
        self.upstream = Counter(
            "ppc_upstream_fetches", "Upstream index fetches", ["kind", "outcome"], registry=r
        )
        self.upstream_seconds = Histogram(
            "ppc_upstream_fetch_duration_seconds", "Upstream index fetches", ["kind"], registry=r
        )
        self.login_failures = Counter("ppc_login_failures", "Failed password or token checks", registry=r)
        self.login_throttled = Counter(
            "ppc_login_throttled", "Logins refused by the throttle (429)", registry=r
        )
        self._add_webhook_metrics(r)
        self.webhooks = None  # the dispatcher, when webhooks are configured

    def _add_webhook_metrics(self, r: CollectorRegistry | None) -> None:
        self.webhook_deliveries = Counter(
            "ppc_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, retried, failed)",
            ["webhook", "outcome"],
            registry=r,
        )
        self.webhook_queue = Gauge(
            "ppc_webhook_queue_depth",
            "Webhook deliveries in the shared queue, read at scrape time",
            ["state"],
            registry=r,
            multiprocess_mode="mostrecent",
        )

    # -- access -----------------------------------------------------------
    def address_allowed(self, address: str | None) -> bool:
        if not address or not self.allow_from:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.allow_from)

    def exposition(self) -> bytes:
        registry = self.registry
        if registry is None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    # -- wrappers ---------------------------------------------------------
    def timed(self, backend: str, operation: str, call: Callable) -> Callable:
        seconds = self.backend_seconds.labels(backend, operation)

        @functools.wraps(call)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            except Exception as exc:
                self.backend_errors.labels(backend, operation, type(exc).__name__).inc()
                raise
            finally:
                seconds.observe(time.perf_counter() - started)

        return wrapper

    def instrument_backend(self, obj, contract: type, backend: str) -> None:
        """Time every public method ``contract`` defines, on this instance only."""
        for name, attr in inspect.getmembers(contract):
            if name.startswith("_") or name in _NOT_TIMED or not inspect.isfunction(attr):
                continue
            bound = getattr(obj, name, None)
            if callable(bound):
                setattr(obj, name, self.timed(backend, name, bound))

    def instrument_cache(self, cache, label: str) -> None:
        get = cache.get
        hits, misses = self.cache_lookups.labels(label, "hit"), self.cache_lookups.labels(label, "miss")

        @functools.wraps(get)
        def counted_get(*args, **kwargs):
            value = get(*args, **kwargs)
            (misses if value is None else hits).inc()
            return value

        cache.get = counted_get

    def instrument_upstream(self, client) -> None:
        # The client's three ways of reaching the upstream index: a project page
        # (only on a memo miss), a PEP 658 metadata file, a distribution file.
        for name, kind in (("_fetch_project", "page"), ("read_metadata", "metadata"), ("open_file", "file")):
            call = getattr(client, name, None)
            if callable(call):
                setattr(client, name, self._upstream_wrapper(kind, call))

    def _upstream_wrapper(self, kind: str, call: Callable) -> Callable:
        @functools.wraps(call)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                result = call(*args, **kwargs)
            except Exception:
                self.upstream.labels(kind, "error").inc()
                raise
            finally:
                self.upstream_seconds.labels(kind).observe(time.perf_counter() - started)
            self.upstream.labels(kind, "ok").inc()
            return result

        return wrapper

    def instrument_uploads(self, service) -> None:
        for name in ("upload", "upload_file"):
            call = getattr(service, name, None)
            if callable(call):
                setattr(service, name, self._upload_wrapper(call))

    def _upload_wrapper(self, call: Callable) -> Callable:
        @functools.wraps(call)
        def wrapper(*args, **kwargs):
            result = call(*args, **kwargs)
            if result.created:
                self.uploads.labels("created").inc()
                self.upload_bytes.inc(result.record.size)
            else:
                self.uploads.labels("already_stored").inc()
            return result

        return wrapper

    def instrument_throttle(self, throttle) -> None:
        check, failed = throttle.check, throttle.failed

        @functools.wraps(check)
        def counted_check(*args, **kwargs):
            try:
                return check(*args, **kwargs)
            except Exception as exc:
                if getattr(exc, "status", None) == 429:
                    self.login_throttled.inc()
                raise

        @functools.wraps(failed)
        def counted_failed(*args, **kwargs):
            self.login_failures.inc()
            return failed(*args, **kwargs)

        throttle.check, throttle.failed = counted_check, counted_failed

    def instrument_webhooks(self, dispatcher) -> None:
        self.webhooks = dispatcher
        dispatcher.observers.append(
            lambda webhook, outcome: self.webhook_deliveries.labels(webhook, outcome).inc()
        )

    def update_webhook_queue(self) -> None:
        """The queue's depth now (two counts in the index; only when /metrics is read)."""
        if self.webhooks is None:
            return
        try:
            depth = self.webhooks.queue_depth()
        except Exception:  # an index outage: the scrape still answers
            return
        for state, count in depth.items():
            self.webhook_queue.labels(state).set(count)

    # -- per request ------------------------------------------------------
    def observe(self, request, status: int, content_length: int | None, seconds: float) -> None:
        route = request.matched_route.name if request.matched_route is not None else "none"
        method = request.method if request.method in _METHODS else "other"
        self.requests.labels(route, method, str(status)).inc()
        self.request_seconds.labels(route, method).observe(seconds)
        if route in _DOWNLOAD_ROUTES and method == "GET" and not request.path.endswith(".metadata"):
            if status in (200, 206):
                self.downloads.labels("stream").inc()
                self.download_bytes.inc(content_length or 0)
            elif status in (302, 303, 307):
                self.downloads.labels("redirect").inc()


def metrics_tween_factory(handler, registry):
    metrics: Metrics = registry.metrics

    def tween(request):
        started = time.perf_counter()
        try:
            response = handler(request)
        except BaseException:
            metrics.observe(request, 500, None, time.perf_counter() - started)
            raise
        metrics.observe(request, response.status_int, response.content_length, time.perf_counter() - started)
        return response

    return tween


def metrics_view(request):
    """``GET /metrics``: the text exposition format, for admins and listed addresses."""
    metrics: Metrics = request.registry.metrics
    # REMOTE_ADDR, not X-Forwarded-For: a header is the client's to choose. Behind a
    # proxy, let the server rewrite REMOTE_ADDR (waitress's trusted_proxy settings).
    if not metrics.address_allowed(request.remote_addr):
        identity = request.identity
        if not identity.authenticated:
            raise Unauthorized("Metrics are for admins and the addresses in pypi.metrics_allow_from")
        if not identity.is_admin or identity.token is not None:
            raise Forbidden("Metrics are for admins (password login) and listed addresses only")
    metrics.update_webhook_queue()
    response = Response(body=metrics.exposition(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
    response.content_type_params = {"version": "0.0.4", "charset": "utf-8"}
    response.headers["Cache-Control"] = "no-store"
    return response


def parse_networks(settings) -> list:
    networks = []
    for word in settings.get_list(ALLOW_FROM):
        try:
            networks.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            raise ConfigError(ALLOW_FROM, word, "IP addresses or CIDR networks such as 10.0.0.0/8") from None
    return networks


def includeme(config) -> None:
    """Register ``/metrics`` and the instrumentation when ``pypi.metrics`` is on (else: 404)."""
    services = config.registry.services
    settings = services.settings
    networks = parse_networks(settings)  # a typo stops start-up even while metrics are off
    if not settings.get_bool(ENABLED, False):
        return
    from .index.base import MetadataIndex
    from .storage.base import Storage

    registry = config.registry
    metrics = registry.metrics = Metrics(networks)
    service = services.service
    metrics.instrument_backend(service.storage, Storage, "storage")
    metrics.instrument_backend(service.index, MetadataIndex, "index")
    metrics.instrument_cache(services.pages, "pages")
    records = getattr(service, "_records", None)  # the service's file-record cache
    if records is not None:
        metrics.instrument_cache(records, "records")
    if getattr(service, "upstream", None) is not None:
        metrics.instrument_upstream(service.upstream)
    metrics.instrument_uploads(service)
    if services.login_throttle is not None:
        metrics.instrument_throttle(services.login_throttle)
    if services.webhooks is not None:
        metrics.instrument_webhooks(services.webhooks)
    config.add_route("metrics", "/metrics")
    config.add_view(metrics_view, route_name="metrics", request_method=("GET", "HEAD"))
    config.add_tween(
        "pypicloud.metrics.metrics_tween_factory", under="pypicloud.requestlog.request_log_tween_factory"
    )
