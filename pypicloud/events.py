"""State-change events: what changed, who changed it, from where and when.

The service (and the access administration, the token minting, the retention
run) publish one :class:`Event` per change on the app's :class:`EventBus`; the
audit log and the webhooks subscribe to it. Publishing never fails the change
it reports: a subscriber that raises is logged and skipped, because the change
has already happened (the audit log and the webhook queue are records of it,
not conditions of it).

The client address and the request id come from context variables that the
request-log tween sets for the request being answered, so that the service,
which never sees a request, still records where a change came from. Outside a
request (a CLI, a scheduled retention run) they are ``None`` and ``-``.
"""

from __future__ import annotations

import abc
import contextvars
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .models import utcnow
from .timefmt import iso_utc

if TYPE_CHECKING:
    from .index.webhook_queue import Delivery

LOG = logging.getLogger(__name__)

# The actions the package service publishes (every action: docs/audit.md).
UPLOAD = "file.upload"
DELETE = "file.delete"
YANK = "file.yank"
UNYANK = "file.unyank"

_client_address: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ppc_client_address", default=None
)
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("ppc_request_id", default="-")


class request_context:  # noqa: N801 - used as a function: ``with request_context(...):``
    """Within the block, events carry this client address and request id.

    A class rather than a generator-based context manager: every request enters it
    (the fast lane's included), and this costs a third as much.
    """

    __slots__ = ("_address", "_address_token", "_id_token", "_request_id")

    def __init__(self, address: str | None, request_id: str):
        self._address = address
        self._request_id = request_id

    def __enter__(self) -> None:
        self._address_token = _client_address.set(self._address)
        self._id_token = _request_id.set(self._request_id)

    def __exit__(self, *exc_info: object) -> None:
        _request_id.reset(self._id_token)
        _client_address.reset(self._address_token)


def current_address() -> str | None:
    """The client address of the request being answered (None outside requests)."""
    return _client_address.get()


def current_request_id() -> str:
    """The id of the request being answered (``-`` outside requests); the request log's too."""
    return _request_id.get()


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Event:
    """One state change.

    ``action`` is a dotted name (``file.upload``, ``access.user.create``, ...);
    ``actor`` the user name (None: anonymous or the server itself);
    ``detail`` a small JSON-able mapping of what else a reader needs
    (a yank reason, a grant's permission, a deleted count).
    """

    action: str
    actor: str | None
    project: str | None = None
    version: str | None = None
    filename: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    address: str | None = field(default_factory=current_address)
    request_id: str = field(default_factory=current_request_id)
    at: datetime = field(default_factory=utcnow)
    id: str = field(default_factory=_new_id)

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object (the audit export's lines and the webhook body)."""
        return {
            "id": self.id,
            "at": iso_utc(self.at),
            "action": self.action,
            "actor": self.actor,
            "address": self.address,
            "request_id": self.request_id,
            "project": self.project,
            "version": self.version,
            "filename": self.filename,
            "detail": dict(self.detail),
        }


Subscriber = Callable[[Event], None]


@dataclass
class ChangeRows:
    """Rows that record a change, to be written in the change's own index transaction.

    ``events``: audit log rows (``MetadataIndex.add_event``); ``deliveries``:
    webhook queue rows (``MetadataIndex.enqueue_deliveries``).
    """

    events: list[Event] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.deliveries)


class RowSubscriber(abc.ABC):
    """A subscriber whose whole work is writing rows to the index (audit log, webhook queue).

    The bus asks it for its rows first (:meth:`stage`) so that a change made in one
    index transaction can carry them (:meth:`EventBus.publish_with`); when the
    change cannot, or for :meth:`EventBus.publish`, it writes them itself
    (:meth:`write`). Either way :meth:`written` follows.
    """

    @abc.abstractmethod
    def stage(self, event: Event, rows: ChangeRows) -> None:
        """Add the rows that record ``event`` to ``rows`` (no I/O; may add nothing)."""

    @abc.abstractmethod
    def write(self, event: Event, rows: ChangeRows) -> None:
        """Write the rows :meth:`stage` added, in a transaction of their own.

        Must not raise: the change has happened, a lost record of it is logged.
        """

    def written(self, event: Event, rows: ChangeRows) -> None:
        """The rows of ``event`` are in the index (with the change, or by :meth:`write`)."""

    def __call__(self, event: Event) -> None:
        """As a plain subscriber: stage, write and report at once."""
        rows = ChangeRows()
        self.stage(event, rows)
        if rows:
            self.write(event, rows)
            self.written(event, rows)


class EventBus:
    """Hands each published event to every subscriber, in subscription order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: tuple[Subscriber | RowSubscriber, ...] = ()

    def subscribe(self, subscriber: Subscriber | RowSubscriber) -> None:
        """Call ``subscriber(event)`` for every event published from now on.

        A :class:`RowSubscriber`'s rows ride along with changes published by
        :meth:`publish_with`.
        """
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

    def publish(self, event: Event) -> None:
        """Deliver ``event``; a subscriber's error is logged, never raised to the publisher."""
        for subscriber in self._subscribers:
            self._call(subscriber, event)

    def publish_with(self, event: Event, change: Callable[[ChangeRows], bool]) -> None:
        """Make a change and record ``event`` with it: one index transaction for both.

        ``change(rows)`` makes the change; it returns True when it wrote ``rows``
        (every :class:`RowSubscriber`'s rows for ``event``) in its own transaction,
        False when it did not (they are then written the ordinary way). When
        ``change`` raises, the change did not happen: nothing is published and the
        error propagates. Plain subscribers are called after the change, as by
        :meth:`publish`.
        """
        subscribers = self._subscribers
        staged: dict[int, ChangeRows] = {}
        together = ChangeRows()
        for subscriber in subscribers:
            if isinstance(subscriber, RowSubscriber):
                rows = ChangeRows()
                try:
                    subscriber.stage(event, rows)
                except Exception:
                    LOG.exception("event subscriber %r failed on %s %s", subscriber, event.action, event.id)
                    continue
                staged[id(subscriber)] = rows
                together.events += rows.events
                together.deliveries += rows.deliveries
        carried = change(together)
        for subscriber in subscribers:
            if not isinstance(subscriber, RowSubscriber):
                self._call(subscriber, event)
                continue
            rows_of = staged.get(id(subscriber))
            if not rows_of:  # nothing staged (or staging failed, which is logged)
                continue
            try:
                if not carried:
                    subscriber.write(event, rows_of)
                subscriber.written(event, rows_of)
            except Exception:
                LOG.exception("event subscriber %r failed on %s %s", subscriber, event.action, event.id)

    @staticmethod
    def _call(subscriber: Subscriber | RowSubscriber, event: Event) -> None:
        try:
            subscriber(event)
        except Exception:
            LOG.exception("event subscriber %r failed on %s %s", subscriber, event.action, event.id)
