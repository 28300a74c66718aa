"""pypicloud: a private Python package index.

``main`` is the PasteDeploy ``paste.app_factory``, so ``pserve development.ini``
serves the app.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref

from pyramid.config import Configurator
from pyramid.events import NewResponse

from .access import access_from_settings
from .index import index_from_settings
from .pagecache import PageCache
from .requestlog import install_record_factory
from .service import PackageIndex
from .settings import Settings
from .storage import storage_from_settings
from .throttle import LoginThrottle
from .upstream import fallback_from_settings
from .wsgi import RejectUndecodable

# Before anything of ours logs: every record gets a request_id (``-`` outside
# requests), so an ini formatter using %(request_id)s works from the first line.
install_record_factory()

__version__ = "2.0.0.dev0"
LOG = logging.getLogger(__name__)


def build_service(settings: Settings) -> PackageIndex:
    """Build the three backends, the upstream client and the service from validated settings."""
    # Fallback settings first: a bad one stops start-up before any backend is touched.
    fallback, upstream = fallback_from_settings(settings)
    storage = storage_from_settings(settings)
    index = index_from_settings(settings)
    access = access_from_settings(settings)
    return PackageIndex(
        storage,
        index,
        access,
        max_upload_size=settings.get_size("pypi.max_upload_size"),
        stream_files=settings.get_bool("pypi.stream_files", False),
        redirect_urls=settings.get_bool("storage.redirect_urls", True),
        max_metadata_size=settings.get_size("pypi.max_metadata_size", 4 * 1024 * 1024),
        graceful_reload=settings.get_bool("db.graceful_reload", False),
        fallback=fallback,
        upstream=upstream,
    )


def _nosniff(event) -> None:
    # Files and pages are never to be reinterpreted by a browser as another type.
    event.response.headers["X-Content-Type-Options"] = "nosniff"


def start_repair(service: PackageIndex, settings: Settings) -> None:
    """Settle the writes that crashed processes left unfinished: once now, then
    every ``pypi.repair_interval`` seconds in a daemon thread (0: only now).

    Only intents older than ``pypi.repair_grace`` seconds are settled, so a
    write still running in another process is left alone.
    """
    grace = settings.get_int("pypi.repair_grace", 120, minimum=0)
    interval = settings.get_int("pypi.repair_interval", 300, minimum=0)
    if service.storage.read_only:
        return
    _repair_once(service, grace)
    if interval:
        ref = weakref.ref(service)  # the thread ends once the app is gone (tests build many)
        thread = threading.Thread(
            target=_repair_loop, args=(ref, grace, interval), name="ppc-repair", daemon=True
        )
        thread.start()


def _repair_once(service: PackageIndex, grace: int) -> None:
    try:
        done = service.repair(grace)
    except Exception as exc:  # a backend outage: the next round tries again
        LOG.warning("repair of unfinished writes failed: %s", exc)
        return
    if done:
        LOG.info("repair: settled %d unfinished writes", done)


def _repair_loop(ref: weakref.ref[PackageIndex], grace: int, interval: int) -> None:
    while True:
        time.sleep(interval)
        service = ref()
        if service is None:
            return
        _repair_once(service, grace)
        del service


def make_config(global_config: dict | None, raw_settings: dict, environ: dict | None = None) -> Configurator:
    here = (global_config or {}).get("here") or raw_settings.get("here")
    settings = Settings(raw_settings, environ=environ, here=here)
    settings.warn_unknown()
    service = build_service(settings)
    rebuilt = service.rebuild_if_empty()
    if rebuilt:
        LOG.info("index was empty: rebuilt %d files from storage", rebuilt)
    service.sweep_spool_files()
    start_repair(service, settings)

    config = Configurator(settings=dict(settings))
    config.registry.ppc_settings = settings
    config.registry.service = service
    # The web UI's and ppc-access's access rules (views never touch the backend itself);
    # imported here because access_admin reads this package's __version__.
    from .access_manager import AccessManager

    config.registry.access_admin = AccessManager(service.access)
    config.registry.pages = PageCache()
    config.registry.realm = settings.get_str("pypi.realm", "pypi")
    config.registry.login_throttle = LoginThrottle.from_settings(settings, service.index)
    # The browser's upload form sends several files at once; each has pypi.max_upload_size.
    single = service.max_upload_size
    config.registry.ui_upload_limit = settings.get_size(
        "pypi.max_browser_upload_size", single * 16 if single is not None else None
    )
    config.registry.package_max_age = settings.get_int("pypi.package_max_age", 31536000, minimum=0)
    max_age = settings.get_int("pypi.index_max_age", 0, minimum=0)
    # Short enough that a new upload is visible to pip and uv at once (SPEC section 4).
    config.registry.index_cache_control = f"max-age={max_age}, must-revalidate"
    config.include("pyramid_jinja2")
    config.add_jinja2_renderer(".html")
    config.add_jinja2_search_path("pypicloud:templates", name=".html")
    config.include("pypicloud.requestlog")
    config.include("pypicloud.security")
    config.include("pypicloud.crosssite")
    config.include("pypicloud.sessions")
    config.include("pypicloud.flashes")
    config.include("pypicloud.routes")
    config.add_subscriber(_nosniff, NewResponse)
    config.scan("pypicloud.views")
    return config


def main(global_config: dict | None = None, **settings) -> object:
    """The WSGI application factory (``paste.app_factory``)."""
    return RejectUndecodable(make_config(global_config, settings).make_wsgi_app())
