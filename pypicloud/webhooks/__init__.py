"""Webhooks (issue 18, part 4; docs/webhooks.md): a signed JSON POST per event to each configured receiver.

``config`` reads the ``webhooks.*`` settings, ``signing`` makes the body,
headers and signature, ``sender`` POSTs one delivery, ``dispatcher`` queues
deliveries for events (in the index, see ``pypicloud.index.webhook_queue``)
and sends them from a background thread, ``admin`` holds the rules of the
admin UI's page.
"""

from __future__ import annotations

from ..index.webhook_queue import WebhookQueue
from .admin import WebhookAdmin
from .config import GLOBAL_KEYS, webhooks_from_settings
from .dispatcher import WebhookDispatcher

__all__ = ["GLOBAL_KEYS", "WebhookAdmin", "WebhookDispatcher", "dispatcher_from_settings"]


def dispatcher_from_settings(settings, index: WebhookQueue) -> WebhookDispatcher | None:
    """The dispatcher of the configured webhooks, or None when there are none."""
    webhooks, policy = webhooks_from_settings(settings)
    if not webhooks:
        return None
    return WebhookDispatcher(index, webhooks, policy)
