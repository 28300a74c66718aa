"""The WSGI application: Pyramid wired around one :class:`pypicloud.app.AppServices`.

:func:`make_config` builds the services once (:func:`pypicloud.app.build_services`),
runs the start-up work, attaches them to a :class:`PpcRegistry` and exposes them
to views as ``request.services``. What Pyramid's own configuration decides
(which methods each route answers, which first path segments belong to fixed
routes) is computed once when the app is created (:class:`RouteTable`), never
from a request thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import canonicalize_name
from pyramid.config import Configurator
from pyramid.events import ApplicationCreated, NewResponse
from pyramid.interfaces import IRoutesMapper
from pyramid.registry import Registry
from pyramid.request import Request

from .app import AppServices, build_services, start
from .fastlane import FastLane, fast_reads_enabled
from .settings import Settings
from .storage import storage_class
from .wsgi import RejectUndecodable

# First path segments 1.x or this server use (or used) for fixed URLs; a project
# of that name is only served under /simple/ and /pypi/ (see views/compat.py).
RESERVED_SEGMENTS = frozenset(
    {"admin", "api", "login", "logout", "health", "simple", "packages", "pypi", "static", "acct"}
)


@dataclass(frozen=True)
class RouteTable:
    """What the app's routes and views answer, computed once when the app is created.

    ``methods``: route name -> the methods some view of that route answers (None:
    a view for every method). ``fixed_segments``: the canonical first segments of
    every route with a literal first segment, and :data:`RESERVED_SEGMENTS`.
    """

    methods: dict[str, frozenset[str] | None]
    fixed_segments: frozenset[str]

    @classmethod
    def from_registry(cls, registry: Registry) -> RouteTable:
        return cls(_route_methods(registry), _fixed_segments(registry))


def _route_methods(registry: Registry) -> dict[str, frozenset[str] | None]:
    methods: dict[str, frozenset[str] | None] = {}
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
        known = methods.get(route, frozenset())
        if known is not None:
            extra = {"HEAD"} if "GET" in declared else set()
            methods[route] = known | set(declared) | extra
    return methods


def _fixed_segments(registry: Registry) -> frozenset[str]:
    names = set(RESERVED_SEGMENTS)
    mapper = registry.queryUtility(IRoutesMapper)
    for route in mapper.get_routes() if mapper is not None else ():
        first = route.pattern.lstrip("/").split("/", 1)[0]
        if first and "{" not in first and "*" not in first:
            names.add(canonicalize_name(first))
    return frozenset(names)


class PpcRegistry(Registry):
    """Pyramid's registry with the app's services as one typed attribute.

    ``routes`` is set once, when the app is created. Code of this package reads
    :attr:`services` (views: ``request.services``). The read-only properties are
    kept for others: they are the six names the registry carried before the
    composition root (``service``, ``ppc_settings``, ``pages``, ``realm``,
    ``package_max_age``, ``index_cache_control``), which a third-party
    ``config.include`` or a test may still read; they all read :attr:`services`.
    Add no new ones: new values go on :class:`AppServices`.
    """

    def __init__(self, services: AppServices):
        super().__init__("pypicloud")
        self.services: AppServices = services
        self.routes: RouteTable | None = None

    @property
    def service(self):
        return self.services.service

    @property
    def ppc_settings(self) -> Settings:
        return self.services.settings

    @property
    def pages(self):
        return self.services.pages

    @property
    def realm(self) -> str:
        return self.services.realm

    @property
    def package_max_age(self) -> int:
        return self.services.package_max_age

    @property
    def index_cache_control(self) -> str:
        return self.services.index_cache_control


def route_table(registry: Registry) -> RouteTable:
    """The app's :class:`RouteTable` (computed on the spot only for a registry
    that is not a created app's, as in a bare Pyramid test configuration)."""
    table = getattr(registry, "routes", None)
    return table if isinstance(table, RouteTable) else RouteTable.from_registry(registry)


def _app_created(event) -> None:
    registry = event.app.registry
    if isinstance(registry, PpcRegistry):
        registry.routes = RouteTable.from_registry(registry)


class PpcRequest(Request):
    """Pyramid's request with ``request.services`` (the app's :class:`AppServices`).

    A class attribute rather than ``add_request_method(..., reify=True)``: a
    reified request method makes Pyramid derive a new request class for every
    request (``InstancePropertyHelper.apply_properties``), a cost on every page.
    """

    @property
    def services(self) -> AppServices:
        return self.registry.services


def _nosniff(event) -> None:
    # Files and pages are never to be reinterpreted by a browser as another type.
    event.response.headers["X-Content-Type-Options"] = "nosniff"


def make_config(global_config: dict | None, raw_settings: dict, environ: dict | None = None) -> Configurator:
    """The configured (not yet committed) Pyramid app over freshly built services."""
    here = (global_config or {}).get("here") or raw_settings.get("here")
    settings = Settings(raw_settings, environ=environ, here=here)
    settings.warn_unknown(storage_keys=storage_class(settings).SETTINGS_KEYS)
    services = build_services(settings)
    start(services)

    config = Configurator(registry=PpcRegistry(services))
    config.setup_registry(settings=dict(settings))
    config.set_request_factory(PpcRequest)
    config.add_subscriber(_app_created, ApplicationCreated)
    config.include("pyramid_jinja2")
    config.add_jinja2_renderer(".html")
    config.add_jinja2_search_path("pypicloud:templates", name=".html")
    config.include("pypicloud.requestlog")
    config.include("pypicloud.security")
    config.include("pypicloud.crosssite")
    config.include("pypicloud.sessions")
    config.include("pypicloud.routes")
    config.include("pypicloud.oidc")  # trusted publishing, when oidc.publisher.* blocks exist
    config.include("pypicloud.metrics")  # /metrics and its instrumentation, when pypi.metrics is on
    config.add_subscriber(_nosniff, NewResponse)
    config.scan("pypicloud.views")
    return config


def main(global_config: dict | None = None, **settings) -> object:
    """The WSGI application factory (``paste.app_factory``)."""
    app = make_config(global_config, settings).make_wsgi_app()
    services = app.registry.services
    if fast_reads_enabled(services.settings):
        # The hot reads are answered in front of the router (pypicloud/fastlane.py).
        app = FastLane(app, services)
    return RejectUndecodable(app)
