"""The rules of the admin UI's webhooks page: what an admin sees, and a manual retry."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Forbidden, InvalidRequest
from ..index.webhook_queue import FAILED, PENDING, Delivery, WebhookQueue
from ..models import Identity, utcnow
from .config import Webhook
from .dispatcher import WebhookDispatcher

LISTED = 100


@dataclass(frozen=True)
class WebhooksOverview:
    webhooks: list[Webhook]
    pending: list[Delivery]
    failed: list[Delivery]
    pending_count: int
    failed_count: int


class WebhookAdmin:
    """Admins only: the queue as the page shows it, and "Retry"."""

    def __init__(self, index: WebhookQueue, dispatcher: WebhookDispatcher | None):
        self.index = index
        self.dispatcher = dispatcher

    @staticmethod
    def _require_admin(identity: Identity) -> None:
        if not identity.is_admin or identity.token is not None:
            raise Forbidden("The webhooks page is for admins")

    def overview(self, identity: Identity, limit: int = LISTED) -> WebhooksOverview:
        self._require_admin(identity)
        webhooks = list(self.dispatcher.webhooks.values()) if self.dispatcher is not None else []
        return WebhooksOverview(
            webhooks=webhooks,
            pending=self.index.list_deliveries(PENDING, limit),
            failed=self.index.list_deliveries(FAILED, limit),
            pending_count=self.index.count_deliveries(PENDING),
            failed_count=self.index.count_deliveries(FAILED),
        )

    def redeliver(self, identity: Identity, delivery_id: str) -> None:
        """Send a delivery again now, with a fresh count of attempts."""
        self._require_admin(identity)
        if not self.index.redeliver(delivery_id, utcnow()):
            raise InvalidRequest(
                "That delivery is being sent right now or is no longer queued; reload the page"
            )
        if self.dispatcher is not None:
            self.dispatcher.wake()
