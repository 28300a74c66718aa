"""The audit log (issue 18, item 6; docs/audit.md): every state change, kept in the index.

:class:`AuditLog` subscribes to the app's :class:`~pypicloud.events.EventBus`
and writes each event to the metadata index; a failure to write is logged and
never undoes or blocks the change (it has happened). :class:`AuditService` is
what the admin page, the JSON-lines export and ``ppc-audit`` read it through:
it checks who asks, turns the filters people type into an
:class:`~pypicloud.index.eventlog.EventQuery` (a bad value is a 400 saying
which), and pages. ``audit.retention_days`` prunes older events at start-up
and once an hour after (:func:`start_retention`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from packaging.utils import canonicalize_name

from .errors import Forbidden, InvalidRequest, Unauthorized
from .events import ChangeRows, Event, EventBus, RowSubscriber
from .index.base import MetadataIndex
from .index.eventlog import MAX_EVENT_LIMIT, EventQuery
from .models import Identity, utcnow
from .settings import Settings

LOG = logging.getLogger(__name__)

#: Events on one page of the admin UI.
PAGE_SIZE = 50
#: How often the retention prunes while the server runs.
PRUNE_INTERVAL = 3600
# Action names are dotted lowercase words; a trailing dot means "every action under it".
_ACTION = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_EVENT_ID = re.compile(r"[0-9a-f]{32}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_FILTER = 255


class AuditLog(RowSubscriber):
    """The subscriber that writes every event to the index: one row per event,
    in the change's own transaction when the change offers it (``EventBus.publish_with``)."""

    def __init__(self, index: MetadataIndex):
        self.index = index

    def stage(self, event: Event, rows: ChangeRows) -> None:
        rows.events.append(event)

    def write(self, event: Event, rows: ChangeRows) -> None:
        for recorded in rows.events:
            try:
                self.index.add_event(recorded)
            except Exception as exc:  # the change has happened; the record of it is lost
                LOG.error(
                    "audit log: could not record %s %s by %s: %s",
                    recorded.action,
                    recorded.id,
                    recorded.actor,
                    exc,
                )


@dataclass(frozen=True)
class AuditFilters:
    """The filters as typed (shown again in the form, carried by the paging links)."""

    action: str = ""
    actor: str = ""
    project: str = ""
    since: str = ""
    until: str = ""

    def params(self) -> dict[str, str]:
        """The non-empty filters as GET parameters (``from``/``to`` for the times)."""
        names = {"since": "from", "until": "to"}
        return {names.get(k, k): v for k, v in vars(self).items() if v}


@dataclass(frozen=True)
class AuditPage:
    """One page of the admin UI: events newest first, and the cursor of the next page."""

    events: list[Event]
    filters: AuditFilters
    next_before: str | None
    enabled: bool


def parse_time(text: str, name: str, *, end: bool = False) -> datetime:
    """A date (``2025-03-01``) or an ISO time, as UTC; a date as a ``to`` bound
    (``end``) means the end of that day."""
    text = text.strip()
    try:
        if _DATE.fullmatch(text):
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return day + timedelta(days=1) if end else day
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"{name!r} must be a date (2025-03-01) or a UTC time (2025-03-01T09:30:00Z), not {text!r}"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _text(params: Mapping[str, str], name: str) -> str:
    value = params.get(name) or ""
    if not isinstance(value, str) or len(value) > MAX_FILTER or not value.isprintable():
        raise InvalidRequest(f"{name!r} must be printable text of at most {MAX_FILTER} characters")
    return value.strip()


def parse_filters(params: Mapping[str, str]) -> tuple[EventQuery, AuditFilters]:
    """The query of GET parameters ``action``, ``actor``, ``project``, ``from``,
    ``to``, ``before`` and ``limit`` (all optional); InvalidRequest names a bad one."""
    filters = AuditFilters(*(_text(params, n) for n in ("action", "actor", "project", "from", "to")))
    if filters.action and not _ACTION.fullmatch(filters.action):
        raise InvalidRequest(
            f"'action' must be an action name (file.upload) or a family ending in a dot (access.), "
            f"not {filters.action!r}"
        )
    since = parse_time(filters.since, "from") if filters.since else None
    until = parse_time(filters.until, "to", end=True) if filters.until else None
    if since is not None and until is not None and since >= until:
        raise InvalidRequest("'from' must be before 'to'")
    before = _text(params, "before") or None
    if before is not None and not _EVENT_ID.fullmatch(before):
        raise InvalidRequest("'before' must be an event id (32 hexadecimal digits)")
    limit = _text(params, "limit")
    if limit and not (limit.isdigit() and 1 <= int(limit) <= MAX_EVENT_LIMIT):
        raise InvalidRequest(f"'limit' must be a number from 1 to {MAX_EVENT_LIMIT}")
    query = EventQuery(
        action=filters.action or None,
        actor=filters.actor or None,
        project=canonicalize_name(filters.project) if filters.project else None,
        since=since,
        until=until,
        before=before,
        limit=int(limit) if limit else PAGE_SIZE,
    )
    return query, filters


class AuditService:
    """Reading and pruning the audit log (admins, and the operator at the CLI)."""

    def __init__(self, index: MetadataIndex, *, enabled: bool = True, retention_days: int | None = None):
        self.index = index
        self.enabled = enabled
        self.retention_days = retention_days

    @classmethod
    def from_settings(cls, settings: Settings, index: MetadataIndex) -> AuditService:
        days = settings.get_int("audit.retention_days", 0, minimum=0)
        return cls(index, enabled=settings.get_bool("audit.enabled", True), retention_days=days or None)

    def subscribe(self, events: EventBus) -> None:
        """Record every event of ``events`` (when ``audit.enabled``)."""
        if self.enabled:
            events.subscribe(AuditLog(self.index))

    @staticmethod
    def _require_admin(identity: Identity | None) -> None:
        # None: the operator at the command line (ppc-audit), trusted like an admin.
        if identity is None or identity.is_admin:
            return
        if not identity.authenticated:
            raise Unauthorized("Log in as an admin to read the audit log")
        raise Forbidden(f"User {identity.username!r} may not read the audit log")

    def page(self, identity: Identity | None, params: Mapping[str, str]) -> AuditPage:
        """One page of events for the admin UI (``before`` pages on)."""
        self._require_admin(identity)
        query, filters = parse_filters(params)
        events = self.index.list_events(query)
        more = len(events) == query.limit and self.index.list_events(
            replace(query, before=events[-1].id, limit=1)
        )
        return AuditPage(events, filters, events[-1].id if more else None, self.enabled)

    def export(self, identity: Identity | None, params: Mapping[str, str]) -> Iterator[str]:
        """Every matching event as one JSON line each, newest first (``limit``: at most that many).

        Checks and parses before returning, so a refusal is raised here, not midway.
        """
        self._require_admin(identity)
        params = dict(params)
        limit = _text(params, "limit")
        params.pop("limit", None)
        if limit and not (limit.isdigit() and int(limit) >= 1):
            raise InvalidRequest("'limit' must be a whole number of at least 1")
        query, _ = parse_filters(params)
        return self._lines(replace(query, limit=MAX_EVENT_LIMIT), int(limit) if limit else None)

    def _lines(self, query: EventQuery, total: int | None) -> Iterator[str]:
        sent = 0
        while total is None or sent < total:
            if total is not None:
                query = replace(query, limit=min(MAX_EVENT_LIMIT, total - sent))
            events = self.index.list_events(query)
            for event in events:
                yield json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
            sent += len(events)
            if len(events) < query.limit:
                return
            query = replace(query, before=events[-1].id)

    def prune_expired(self) -> int:
        """Delete events older than ``audit.retention_days`` (nothing when unset)."""
        if not self.retention_days:
            return 0
        removed = self.index.prune_events(utcnow() - timedelta(days=self.retention_days))
        if removed:
            LOG.info("audit log: pruned %d events older than %d days", removed, self.retention_days)
        return removed


def start_retention(audit: AuditService, interval: int = PRUNE_INTERVAL) -> None:
    """Prune now, then every ``interval`` seconds in a daemon thread (only with a retention)."""
    if not audit.retention_days:
        return
    _prune_once(audit)
    ref = weakref.ref(audit)  # the thread ends once the app is gone (tests build many)
    threading.Thread(target=_prune_loop, args=(ref, interval), name="ppc-audit-prune", daemon=True).start()


def _prune_once(audit: AuditService) -> None:
    try:
        audit.prune_expired()
    except Exception as exc:  # a backend outage: the next round tries again
        LOG.warning("audit log: pruning failed: %s", exc)


def _prune_loop(ref: weakref.ref[AuditService], interval: int) -> None:
    while True:
        time.sleep(interval)
        audit = ref()
        if audit is None:
            return
        _prune_once(audit)
        del audit
