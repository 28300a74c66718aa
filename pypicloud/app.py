"""The composition root: every long-lived object of the server, built once from the ini.

:func:`build_services` turns validated settings into one frozen
:class:`AppServices` (the service, the page cache, the access administration,
the login throttle and the settings-derived values the views need). The WSGI
app (:mod:`pypicloud.webapp`) builds it once at start-up and hands it to views
as ``request.services``; the command-line tools call :func:`build_service`
here without importing the WSGI app factory. Nothing here imports Pyramid.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass, field

from .access import access_from_settings
from .access_manager import AccessManager
from .audit import AuditService, start_retention
from .errors import ConfigError
from .flashes import FlashStore
from .index import index_from_settings
from .metadata_files import DEFAULT_METADATA_CACHE_MB
from .pagecache import PageCache
from .retention.config import RetentionConfig, retention_from_settings
from .retention.schedule import RetentionSchedule
from .service import PackageIndex
from .settings import Settings
from .signup_tokens import SignupTokens
from .simple_pages import SimplePages
from .storage import storage_from_settings
from .throttle import LoginThrottle
from .upstream import fallback_from_settings
from .webhooks import WebhookAdmin, WebhookDispatcher, dispatcher_from_settings

LOG = logging.getLogger(__name__)

# How long a web UI login lasts at most, whatever its activity (``session.lifetime``).
DEFAULT_SESSION_LIFETIME = 12 * 3600
# Rendered index pages kept in memory (``pypi.page_cache_mb``): bounded by size; the
# count bound only guards against a flood of tiny pages.
DEFAULT_PAGE_CACHE_MB = 128
MAX_PAGES = 1_000_000


@dataclass(frozen=True)
class AppServices:
    """What the views of one app share, built once at start-up (thread-safe, read-only).

    ``pages`` is the rendered-page cache (:class:`SimplePages` decides what goes
    in it); ``index_cache_control`` the ``Cache-Control`` of index pages;
    ``package_max_age`` that of files; ``realm`` the HTTP Basic realm of a 401;
    ``session_lifetime`` the longest a web UI login lasts, in seconds;
    ``ui_upload_limit`` the largest body of the browser's multi-file upload form;
    ``signup_tokens`` makes and checks 1.x's sign-up tokens (``auth.signing_key``);
    ``retention`` the retention policies and ``retention_schedule`` their thread
    (None unless ``retention.schedule`` is set; started by :func:`start`);
    ``webhooks`` queues and sends webhook deliveries (None: no webhook configured),
    ``webhook_admin`` holds the rules of the admin UI's webhooks page;
    ``audit`` reads the audit log that every change is recorded in (docs/audit.md);
    ``flashes`` keeps the web UI's one-time messages (per process, in memory).
    """

    settings: Settings
    service: PackageIndex
    pages: PageCache
    simple_pages: SimplePages
    access_admin: AccessManager
    login_throttle: LoginThrottle
    signup_tokens: SignupTokens
    realm: str
    package_max_age: int
    index_cache_control: str
    session_lifetime: int
    ui_upload_limit: int | None
    retention: RetentionConfig
    retention_schedule: RetentionSchedule | None
    webhook_admin: WebhookAdmin
    audit: AuditService
    webhooks: WebhookDispatcher | None = None
    flashes: FlashStore = field(default_factory=FlashStore)

    def stop(self) -> None:
        """Stop the background work this app started (the webhook worker, the retention schedule)."""
        if self.retention_schedule is not None:
            self.retention_schedule.stop()
        if self.webhooks is not None:
            self.webhooks.stop()


def spool_dir(settings: Settings) -> str | None:
    """``pypi.spool_dir`` as an absolute folder (created if missing), or None: the system temp folder."""
    value = settings.get_str("pypi.spool_dir")
    if not value or not value.strip():
        return None
    path = settings.path(value.strip())
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigError("pypi.spool_dir", value, f"a folder this process can create ({exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError("pypi.spool_dir", value, "a folder this process may write to")
    return path


def build_service(settings: Settings) -> PackageIndex:
    """Build the three backends, the upstream client and the service from validated settings."""
    # Fallback settings first: a bad one stops start-up before any backend is touched.
    fallback, upstream = fallback_from_settings(settings)
    spool = spool_dir(settings)
    storage = storage_from_settings(settings)
    index = index_from_settings(settings)
    access = access_from_settings(settings)
    metadata_cache_mb = settings.get_int("pypi.metadata_cache_mb", DEFAULT_METADATA_CACHE_MB, minimum=0)
    return PackageIndex(
        storage,
        index,
        access,
        max_upload_size=settings.get_size("pypi.max_upload_size"),
        stream_files=settings.get_bool("pypi.stream_files", False),
        redirect_urls=settings.get_bool("storage.redirect_urls", True),
        max_metadata_size=settings.get_size("pypi.max_metadata_size", 4 * 1024 * 1024),
        metadata_cache_bytes=metadata_cache_mb * 1024 * 1024,
        spool_dir=spool,
        graceful_reload=settings.get_bool("db.graceful_reload", False),
        fallback=fallback,
        upstream=upstream,
    )


def build_services(settings: Settings) -> AppServices:
    """Everything the WSGI app shares, from validated settings (nothing started yet)."""
    retention = retention_from_settings(settings)  # bad policies stop start-up first
    service = build_service(settings)
    audit = AuditService.from_settings(settings, service.index)
    audit.subscribe(service.events)
    webhooks = dispatcher_from_settings(settings, service.index)
    if webhooks is not None:
        service.events.subscribe(webhooks)
    # Bounded by memory, not by count: every project page of a large index fits
    # by default (100,000 pages of one release are about 120 MB), so requests spread over
    # all projects are served from memory (docs/performance.md).
    page_cache_mb = settings.get_int("pypi.page_cache_mb", DEFAULT_PAGE_CACHE_MB, minimum=1)
    pages = PageCache(max_entries=MAX_PAGES, max_bytes=page_cache_mb * 1024 * 1024)
    max_age = settings.get_int("pypi.index_max_age", 0, minimum=0)
    return AppServices(
        settings=settings,
        service=service,
        pages=pages,
        simple_pages=SimplePages(service, pages),
        access_admin=AccessManager(service.access, events=service.events),
        login_throttle=LoginThrottle.from_settings(settings, service.index),
        signup_tokens=SignupTokens.from_settings(settings),
        realm=settings.get_str("pypi.realm", "pypi"),
        package_max_age=settings.get_int("pypi.package_max_age", 31536000, minimum=0),
        # Short enough that a new upload is visible to pip and uv at once (SPEC section 4).
        index_cache_control=f"max-age={max_age}, must-revalidate",
        session_lifetime=settings.get_int("session.lifetime", DEFAULT_SESSION_LIFETIME, minimum=60),
        # The browser's upload form sends several files at once; each has pypi.max_upload_size.
        ui_upload_limit=settings.get_size(
            "pypi.max_browser_upload_size",
            service.max_upload_size * 16 if service.max_upload_size is not None else None,
        ),
        retention=retention,
        retention_schedule=RetentionSchedule(service, retention) if retention.schedule else None,
        webhook_admin=WebhookAdmin(service.index, webhooks),
        webhooks=webhooks,
        audit=audit,
    )


def start(services: AppServices) -> None:
    """The server's start-up work: an empty index is rebuilt from storage, spool files
    of killed processes are removed, the repair of unfinished writes begins, the
    retention schedule starts (``retention.schedule``) and so does the webhook worker
    (it also sends what the queue kept over a restart)."""
    service = services.service
    rebuilt = service.rebuild_if_empty()
    if rebuilt:
        LOG.info("index was empty: rebuilt %d files from storage", rebuilt)
    service.sweep_spool_files()
    start_repair(service, services.settings)
    start_retention(services.audit)
    if services.retention_schedule is not None and not service.storage.read_only:
        services.retention_schedule.start()
    if services.webhooks is not None:
        services.webhooks.start()


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
