"""One-time messages for the web UI ("Uploaded x", "Token y created"), kept on the server.

The session cookie carries only a short random id (``flash`` in the session); the
messages themselves live here, so a batch of 40 upload results can never make the
cookie too long, and a new API token's secret is shown once from a one-time slot
without ever travelling in a cookie.

The store is in memory, per process, thread-safe and bounded three ways: at most
``max_sessions`` sessions hold messages (the least recently used are dropped), at
most ``max_messages`` per session (the oldest go; a line says how many), each
message clipped to ``max_chars``; and whatever is not shown within ``ttl``
seconds expires. With several server processes behind one address, the page
after a form may be answered by another process, which then shows no message:
the result of the action itself is on the page (see docs/ui.md).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

SESSION_KEY = "flash"
QUEUES = ("info", "error")


@dataclass
class _Slot:
    created: float
    messages: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    secret: dict | None = None


class FlashStore:
    """Messages and one-time secrets per session id; see the module docstring for the bounds."""

    def __init__(
        self, *, max_sessions: int = 10000, max_messages: int = 20, max_chars: int = 300, ttl: float = 600
    ):
        self.max_sessions = max_sessions
        self.max_messages = max_messages
        self.max_chars = max_chars
        self.ttl = ttl
        self._lock = threading.Lock()
        self._slots: OrderedDict[str, _Slot] = OrderedDict()

    def _slot(self, key: str, now: float) -> _Slot:
        slot = self._slots.get(key)
        if slot is None or now - slot.created > self.ttl:
            slot = self._slots[key] = _Slot(now)
        self._slots.move_to_end(key)
        while len(self._slots) > self.max_sessions:
            self._slots.popitem(last=False)
        return slot

    def _clip(self, text: str) -> str:
        return text if len(text) <= self.max_chars else text[: self.max_chars - 1] + "…"

    def add(self, key: str, message: str, queue: str = "info") -> None:
        with self._lock:
            slot = self._slot(key, time.monotonic())
            messages = slot.messages.setdefault(queue, [])
            messages.append(self._clip(message))
            if len(messages) > self.max_messages:
                del messages[0]
                slot.dropped[queue] = slot.dropped.get(queue, 0) + 1

    def put_secret(self, key: str, value: dict) -> None:
        """A value shown once (a new token): the next :meth:`pop` hands it out and forgets it."""
        with self._lock:
            self._slot(key, time.monotonic()).secret = dict(value)

    def pop(self, key: str) -> tuple[dict[str, list[str]], dict | None]:
        """Every message by queue (with a count of the dropped ones), and the secret; all forgotten."""
        with self._lock:
            slot = self._slots.pop(key, None)
        if slot is None or time.monotonic() - slot.created > self.ttl:
            return {}, None
        out: dict[str, list[str]] = {}
        for queue, messages in slot.messages.items():
            dropped = slot.dropped.get(queue, 0)
            out[queue] = ([f"({dropped} earlier messages not shown)"] if dropped else []) + messages
        return out, slot.secret

    def __len__(self) -> int:
        with self._lock:
            return len(self._slots)


def _key(request, create: bool) -> str | None:
    key = request.session.get(SESSION_KEY)
    if isinstance(key, str) and key:
        return key
    if not create:
        return None
    key = secrets.token_urlsafe(12)
    request.session[SESSION_KEY] = key
    return key


def flash(request, message: str, queue: str = "info") -> None:
    """Keep ``message`` for the next page this session sees."""
    request.services.flashes.add(_key(request, True), message, queue)


def flash_secret(request, value: dict) -> None:
    """Keep ``value`` for the next page of this session, once."""
    request.services.flashes.put_secret(_key(request, True), value)


def pop(request) -> tuple[dict[str, list[str]], dict | None]:
    """The messages and secret waiting for this session (the cookie is not rewritten)."""
    key = _key(request, False)
    if key is None:
        return {}, None
    return request.services.flashes.pop(key)
