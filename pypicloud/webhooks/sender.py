"""One HTTP POST of a delivery to its receiver (urllib3, already a dependency through boto3)."""

from __future__ import annotations

import urllib3

from ..index.webhook_queue import Delivery
from .config import Webhook
from .signing import headers_for

# How much of a refusing receiver's answer is kept as the delivery's last error.
ERROR_BODY_CHARS = 200


class WebhookSender:
    """Sends deliveries; thread-safe (urllib3's pool manager is), no retries of its own."""

    def __init__(self) -> None:
        self._http = urllib3.PoolManager(retries=False, maxsize=4)

    def send(self, webhook: Webhook, delivery: Delivery) -> str | None:
        """POST ``delivery`` to ``webhook``: None when the receiver answered 2xx, else why not."""
        body = delivery.body.encode("utf-8")
        headers = headers_for(webhook.secret, body, delivery.action, delivery.id, delivery.attempts)
        try:
            response = self._http.request(
                "POST",
                webhook.url,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=webhook.timeout, read=webhook.timeout),
                redirect=False,
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            return f"cannot reach the receiver: {reason}"
        try:
            if 200 <= response.status < 300:
                return None
            text = response.read(ERROR_BODY_CHARS, decode_content=True).decode("utf-8", "replace")
            return f"HTTP {response.status} from the receiver: {text.strip()}".strip(": ")
        except urllib3.exceptions.HTTPError as exc:
            return f"the receiver's answer broke off: {exc}"
        finally:
            # An answer is never read in full (it can be anything): the connection goes.
            response.close()
            response.release_conn()

    def close(self) -> None:
        self._http.clear()
