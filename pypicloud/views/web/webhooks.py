"""The admin UI's webhooks page: deliveries waiting or failed, and "Retry" (docs/webhooks.md).

The rules (admins only, what a retry does) are in
:class:`pypicloud.webhooks.WebhookAdmin`; these views collect the form and show results.
"""

from __future__ import annotations

from pyramid.view import view_config

from ...timefmt import iso_seconds
from .common import field, page, require_admin


@view_config(route_name="ui.webhooks", request_method="GET")
def webhooks_page(request):
    identity = require_admin(request)
    overview = request.registry.services.webhook_admin.overview(identity)
    return page(request, "webhooks.html", overview=overview, when=_when)


def _when(value) -> str:
    return iso_seconds(value) if value is not None else "—"


def _redeliver(request, identity):
    delivery_id = field(request, "delivery")
    request.registry.services.webhook_admin.redeliver(identity, delivery_id)
    return f"Delivery {delivery_id} will be sent again now", "ui.webhooks", {}


# Admin-only forms, served by the UI's one action view (actions.py).
ACTIONS = {"retry-delivery": _redeliver}
