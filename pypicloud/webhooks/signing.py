"""What a receiver gets: the JSON body, the headers, the HMAC-SHA256 signature; and the retry delays."""

from __future__ import annotations

import hashlib
import hmac
import json
import random

from .. import __version__ as VERSION
from ..events import Event

SIGNATURE_HEADER = "X-Pypicloud-Signature"
EVENT_HEADER = "X-Pypicloud-Event"
DELIVERY_HEADER = "X-Pypicloud-Delivery"
ATTEMPT_HEADER = "X-Pypicloud-Attempt"


def body_of(webhook: str, event: Event) -> str:
    """The JSON text POSTed for ``event`` to the webhook ``webhook`` (fixed once, sent on every attempt)."""
    return json.dumps({"webhook": webhook, "event": event.to_json()}, separators=(",", ":"), sort_keys=True)


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does (docs/webhooks.md): compare in constant time."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)


def headers_for(secret: str, body: bytes, action: str, delivery_id: str, attempt: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"pypicloud-webhooks/{VERSION}",
        EVENT_HEADER: action,
        DELIVERY_HEADER: delivery_id,
        ATTEMPT_HEADER: str(attempt),
        SIGNATURE_HEADER: signature(secret, body),
    }


def backoff(attempts: int, base: float, cap: float, rand: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: doubling from ``base``,
    at most ``cap``, with jitter (between half and all of it) so that many
    deliveries failed by one outage do not all come back at the same moment."""
    delay: float = min(cap, base * 2.0 ** max(attempts - 1, 0))
    jitter: float = (rand or random).uniform(0, delay / 2)
    return delay / 2 + jitter
