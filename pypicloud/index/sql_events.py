"""The audit log of the SQL index: one row per event in ``ppc_events`` (schema.py).

Mixed into :class:`pypicloud.index.sql.SQLIndex`. Pages are read newest first
by ``seq`` (the order rows were added), with ``at``, ``action``, ``actor`` and
``project`` indexed, so every filter and page is one indexed query.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from ..events import Event
from .eventlog import EventQuery
from .schema import events

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

T = TypeVar("T")

# Longer values are cut to the column's size rather than losing the event.
_SIZES = {"action": 64, "actor": 255, "address": 64, "request_id": 128, "project": 255, "version": 255}


def _clip(name: str, value: str | None) -> str | None:
    size = _SIZES.get(name, 255)
    return value[:size] if value is not None else None


def _event_row(event: Event) -> dict[str, Any]:
    row: dict[str, Any] = {
        name: _clip(name, getattr(event, name))
        for name in ("action", "actor", "address", "request_id", "project", "version", "filename")
    }
    row.update(id=event.id, at=event.at, detail=json.dumps(dict(event.detail), ensure_ascii=False))
    return row


def _event(row: Any) -> Event:
    data = row._mapping
    return Event(
        action=data["action"],
        actor=data["actor"],
        project=data["project"],
        version=data["version"],
        filename=data["filename"],
        detail=json.loads(data["detail"]),
        address=data["address"],
        request_id=data["request_id"] or "-",
        at=data["at"],
        id=data["id"],
    )


def _filtered(statement: Any, query: EventQuery) -> Any:
    columns = events.c
    if query.action:
        if query.action_prefix:
            statement = statement.where(columns.action.startswith(query.action, autoescape=True))
        else:
            statement = statement.where(columns.action == query.action)
    if query.actor is not None:
        statement = statement.where(columns.actor == query.actor)
    if query.project is not None:
        statement = statement.where(columns.project == query.project)
    if query.since is not None:
        statement = statement.where(columns.at >= query.since)
    if query.until is not None:
        statement = statement.where(columns.at < query.until)
    return statement


class SQLEventLog:
    """``add_event``, ``list_events`` and ``prune_events`` on ``ppc_events``."""

    if TYPE_CHECKING:

        def _run(self, fn: Callable[[Connection], T]) -> T: ...

    def add_event(self, event: Event) -> None:
        row = _event_row(event)
        self._run(lambda conn: conn.execute(events.insert().values(**row)))

    def list_events(self, query: EventQuery) -> list[Event]:
        def read(conn: Connection) -> list[Any]:
            statement = _filtered(sa.select(events), query)
            if query.before is not None:
                seq = conn.execute(sa.select(events.c.seq).where(events.c.id == query.before)).scalar()
                if seq is None:
                    return []
                statement = statement.where(events.c.seq < seq)
            return list(conn.execute(statement.order_by(events.c.seq.desc()).limit(query.limit)).all())

        return [_event(row) for row in self._run(read)]

    def prune_events(self, older_than: datetime) -> int:
        def work(conn: Connection) -> int:
            return int(conn.execute(events.delete().where(events.c.at < older_than)).rowcount)

        return self._run(work)
