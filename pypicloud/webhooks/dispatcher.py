"""The webhook dispatcher: queues deliveries for events, and sends them from a background thread.

:class:`WebhookDispatcher` (a :class:`~pypicloud.events.RowSubscriber` of the
app's event bus) stores one delivery per matching webhook in the index's queue,
in the change's own transaction when the change offers it, and wakes the
worker; it never sends anything itself and never raises, so a receiver that is
down (or a queue that cannot be written) costs an upload nothing. The worker thread (one per process, a daemon) claims due deliveries
with a lease, POSTs them, and settles each: received, retried later with
backoff, or failed after ``webhooks.max_attempts``. Several processes sharing
one index each run a worker; the claim hands every delivery to one of them.

After a fork (gunicorn workers) the child's worker starts again at the next
event; the parent's keeps running.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta

from ..events import ChangeRows, Event, RowSubscriber
from ..index.webhook_queue import FAILED, PENDING, Delivery, WebhookQueue
from ..models import utcnow
from .config import RetryPolicy, Webhook
from .sender import WebhookSender
from .signing import backoff, body_of

LOG = logging.getLogger(__name__)

# Deliveries claimed per round; the lease covers sending all of them.
BATCH = 5
LEASE_MARGIN = 30.0
DELIVERED, RETRIED, FAILED_OUTCOME = "delivered", "retried", "failed"

# Outcome observer: (webhook name, outcome) -> None (the /metrics counters).
Observer = Callable[[str, str], None]

_DISPATCHERS: weakref.WeakSet[WebhookDispatcher] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for dispatcher in list(_DISPATCHERS):
        dispatcher._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class WebhookDispatcher(RowSubscriber):
    """Queues and sends the deliveries of the configured webhooks (thread-safe)."""

    def __init__(
        self,
        index: WebhookQueue,
        webhooks: list[Webhook],
        policy: RetryPolicy,
        *,
        sender: WebhookSender | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.index = index
        self.webhooks = {w.name: w for w in webhooks}
        self.policy = policy
        self.sender = sender or WebhookSender()
        self.clock = clock
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.observers: list[Observer] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        _DISPATCHERS.add(self)

    # -- the subscriber ---------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Queue one delivery per webhook that wants ``event``; log (never raise) a failure."""
        self(event)

    def stage(self, event: Event, rows: ChangeRows) -> None:
        """One delivery per webhook that wants ``event`` (queued with the change, or by :meth:`write`)."""
        now = self.clock()
        rows.deliveries.extend(
            Delivery(
                id=uuid.uuid4().hex,
                webhook=w.name,
                action=event.action,
                body=body_of(w.name, event),
                created=now,
                next_attempt_at=now,
            )
            for w in self.webhooks.values()
            if w.wants(event.action)
        )

    def write(self, event: Event, rows: ChangeRows) -> None:
        try:
            self.index.enqueue_deliveries(rows.deliveries)
        except Exception:
            LOG.exception("webhooks: could not queue %s %s; it will not be delivered", event.action, event.id)
            rows.deliveries.clear()  # nothing to wake the worker for

    def written(self, event: Event, rows: ChangeRows) -> None:
        if rows.deliveries:
            self.wake()

    # -- the worker thread --------------------------------------------------
    def start(self) -> None:
        """Start this process's worker thread (again after a fork); idempotent."""
        with self._lock:
            self._started = True
            if self._stop.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            ref = weakref.ref(self)
            self._thread = threading.Thread(
                target=_run, args=(ref, self._wake, self._stop), name="ppc-webhooks", daemon=True
            )
            self._thread.start()

    def wake(self) -> None:
        """Make the worker look at the queue now (and start it in a forked child)."""
        if self._started and (self._thread is None or not self._thread.is_alive()):
            self.start()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker: it finishes the delivery it is sending, then ends."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.sender.close()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _forked(self) -> None:
        # The parent's thread does not exist here: a fresh one starts at the next wake().
        # New locks and events: the parent's thread may have held theirs at the fork.
        stopped = self._stop.is_set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        if stopped:
            self._stop.set()
        self._thread = None
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.sender = WebhookSender()

    def run_once(self) -> int:
        """Claim due deliveries and send them; returns how many were settled."""
        lease = BATCH * max((w.timeout for w in self.webhooks.values()), default=10.0) + LEASE_MARGIN
        claimed = self.index.claim_deliveries(self.owner, self.clock(), lease, BATCH)
        for delivery in claimed:
            if self._stop.is_set():
                break  # the lease runs out and another process (or the next start) takes it
            self._deliver(delivery)
        return len(claimed)

    def _deliver(self, delivery: Delivery) -> None:
        webhook = self.webhooks.get(delivery.webhook)
        error: str | None = f"the webhook {delivery.webhook!r} is no longer configured"
        if webhook is not None:
            error = self.sender.send(webhook, delivery)
        if error is None:
            if not self.index.complete_delivery(delivery.id, self.owner):
                LOG.warning(
                    "webhook %s: delivery %s took longer than its lease and was taken again; "
                    "the receiver may see it twice",
                    delivery.webhook,
                    delivery.id,
                )
            self._observe(delivery.webhook, DELIVERED)
            return
        policy = self.policy
        if webhook is None or delivery.attempts >= policy.max_attempts:
            LOG.warning(
                "webhook %s: delivery %s failed after %d attempts: %s",
                delivery.webhook,
                delivery.id,
                delivery.attempts,
                error,
            )
            self.index.fail_delivery(delivery.id, self.owner, error)
            self._observe(delivery.webhook, FAILED_OUTCOME)
            return
        wait = backoff(delivery.attempts, policy.backoff_base, policy.backoff_max)
        self.index.retry_delivery(delivery.id, self.owner, self.clock() + timedelta(seconds=wait), error)
        self._observe(delivery.webhook, RETRIED)

    def _observe(self, webhook: str, outcome: str) -> None:
        for observer in self.observers:
            try:
                observer(webhook, outcome)
            except Exception:
                LOG.exception("webhook outcome observer failed")

    def queue_depth(self) -> dict[str, int]:
        return {state: self.index.count_deliveries(state) for state in (PENDING, FAILED)}


def _run(ref: weakref.ref[WebhookDispatcher], wake: threading.Event, stop: threading.Event) -> None:
    """The worker loop; holds the dispatcher only while working, so a dropped app ends it."""
    while not stop.is_set():
        dispatcher = ref()
        if dispatcher is None:
            return
        interval = dispatcher.policy.poll_interval
        wake.clear()  # a wake-up from now on is seen by the wait below
        try:
            busy = dispatcher.run_once() >= BATCH
        except Exception as exc:  # an index outage: try again at the next poll
            LOG.warning("webhooks: cannot read the delivery queue: %s", exc)
            busy = False
        del dispatcher
        if busy:
            continue  # more may be due right now
        wake.wait(interval)
