"""What every index backend's audit log shares: the query and the stored form of an event.

The audit log (docs/audit.md) keeps one :class:`~pypicloud.events.Event` per
state change in the metadata index. :class:`EventQuery` is what a reader asks
for; :func:`event_to_text` / :func:`event_from_text` are the JSON form the
Redis and DynamoDB backends store (the SQL backend has a column per field).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..events import Event
from ..timefmt import ISO_UTC

#: The most events one call of ``list_events`` answers.
MAX_EVENT_LIMIT = 1000


@dataclass(frozen=True)
class EventQuery:
    """Which events to list, newest first.

    ``action``: an exact action (``file.upload``), or a prefix ending in a dot
    (``access.`` or ``access.user.``) for every action under it. ``actor`` and
    ``project`` match exactly (projects are canonical names). ``since``: only
    events at or after it; ``until``: only events before it (both UTC).
    ``before``: the id of an event the previous page ended with: only events
    older than that one (an unknown id gives nothing). ``limit``: at most this
    many events (1 to :data:`MAX_EVENT_LIMIT`).
    """

    action: str | None = None
    actor: str | None = None
    project: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: str | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_EVENT_LIMIT:
            raise ValueError(f"limit must be 1 to {MAX_EVENT_LIMIT}")

    @property
    def action_prefix(self) -> bool:
        """Whether ``action`` names a family of actions (it ends with a dot)."""
        return self.action is not None and self.action.endswith(".")

    def matches(self, event: Event) -> bool:
        """Whether ``event`` passes every filter but ``before`` and ``limit``."""
        if self.action:
            if self.action_prefix:
                if not event.action.startswith(self.action):
                    return False
            elif event.action != self.action:
                return False
        if self.actor is not None and event.actor != self.actor:
            return False
        if self.project is not None and event.project != self.project:
            return False
        if self.since is not None and event.at < self.since:
            return False
        return self.until is None or event.at < self.until


def action_prefixes(action: str) -> list[str]:
    """The names ``action`` is found under: each dotted prefix and itself.

    ``access.user.create`` -> ``access.``, ``access.user.``, ``access.user.create``.
    """
    parts = action.split(".")
    return [".".join(parts[:i]) + "." for i in range(1, len(parts))] + [action]


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as a JSON-able dict (:meth:`Event.to_json`)."""
    return event.to_json()


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """The event a :func:`event_to_dict` dict describes."""
    return Event(
        action=data["action"],
        actor=data.get("actor"),
        project=data.get("project"),
        version=data.get("version"),
        filename=data.get("filename"),
        detail=dict(data.get("detail") or {}),
        address=data.get("address"),
        request_id=data.get("request_id") or "-",
        at=parse_time(data["at"]),
        id=data["id"],
    )


def event_to_text(event: Event) -> str:
    return json.dumps(event_to_dict(event), separators=(",", ":"), ensure_ascii=False)


def event_from_text(text: str | bytes) -> Event:
    return event_from_dict(json.loads(text))


def parse_time(text: str) -> datetime:
    """A time as :func:`pypicloud.timefmt.iso_utc` writes it."""
    return datetime.strptime(text, ISO_UTC).replace(tzinfo=UTC)


def micros(when: datetime) -> int:
    """Microseconds since the epoch (exact; a sort key)."""
    delta = when.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
