"""Webhook settings: one ``webhooks.<name>.*`` block per receiver, and the retry policy.

::

    webhooks.ci.url = https://ci.example.internal/hooks/pypicloud
    webhooks.ci.secret = $CI_WEBHOOK_SECRET
    webhooks.ci.events = file.upload file.yank        (default: the four file actions)
    webhooks.ci.timeout = 10                          (seconds, default 10)
    webhooks.max_attempts = 8
    webhooks.backoff_base = 30                        (seconds before the 2nd attempt)
    webhooks.backoff_max = 3600                       (the longest wait between attempts)
    webhooks.poll_interval = 5                        (how often each process looks for due retries)

A secret is read from the environment with the ``$NAME`` syntax every setting
has. A bad block stops start-up with a message naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..events import DELETE, UNYANK, UPLOAD, YANK
from ..settings import Settings

PREFIX = "webhooks."
DEFAULT_EVENTS = (UPLOAD, DELETE, YANK, UNYANK)
FIELDS = ("url", "secret", "events", "timeout")
GLOBALS = ("max_attempts", "backoff_base", "backoff_max", "poll_interval")
# Documented keys, known to the settings' typo check.
GLOBAL_KEYS = frozenset(PREFIX + g for g in GLOBALS)
MIN_SECRET_CHARS = 16
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_ACTION = re.compile(r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$")


@dataclass(frozen=True)
class Webhook:
    """One receiver: where events go, the HMAC key, which actions it wants."""

    name: str
    url: str
    secret: str
    events: tuple[str, ...] = DEFAULT_EVENTS
    timeout: float = 10.0

    def wants(self, action: str) -> bool:
        """True for an action listed, or under a listed prefix (``file`` or ``file.*``), or ``*``."""
        for pattern in self.events:
            prefix = pattern[:-2] if pattern.endswith(".*") else pattern
            if pattern == "*" or action == prefix or action.startswith(prefix + "."):
                return True
        return False


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    backoff_base: float = 30.0
    backoff_max: float = 3600.0
    poll_interval: float = 5.0


def webhooks_from_settings(settings: Settings) -> tuple[list[Webhook], RetryPolicy]:
    """Every ``webhooks.<name>.*`` block and the policy; a bad one raises ConfigError."""
    blocks: dict[str, dict[str, str]] = {}
    for key, value in settings.with_prefix(PREFIX).items():
        name, sep, field = key.rpartition(".")
        if not sep and field in GLOBALS:
            continue
        if not sep or field not in FIELDS:
            allowed = "webhooks.<name>.<" + "|".join(FIELDS) + "> or webhooks.<" + "|".join(GLOBALS) + ">"
            raise ConfigError(PREFIX + key, value, allowed)
        if not _NAME.match(name):
            raise ConfigError(PREFIX + key, value, "a webhook name of letters, digits, '-' and '_'")
        blocks.setdefault(name, {})[field] = value.strip()
    return [_webhook(name, fields) for name, fields in sorted(blocks.items())], _policy(settings)


def _webhook(name: str, fields: dict[str, str]) -> Webhook:
    key = f"{PREFIX}{name}."
    url = fields.get("url") or ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key + "url", url or None, "an http:// or https:// URL of the receiver")
    secret = fields.get("secret") or ""
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            key + "secret",
            "(hidden)" if secret else None,
            f"a shared secret of at least {MIN_SECRET_CHARS} characters (e.g. $ENV_VARIABLE)",
        )
    events = tuple(w for w in re.split(r"[\s,]+", fields.get("events", "")) if w) or DEFAULT_EVENTS
    for pattern in events:
        if not _ACTION.match(pattern):
            raise ConfigError(
                key + "events", fields["events"], "actions such as file.upload, or prefixes (file.*)"
            )
    try:
        timeout = float(fields.get("timeout") or 10)
    except ValueError:
        timeout = -1
    if not 0 < timeout <= 300:
        raise ConfigError(key + "timeout", fields.get("timeout"), "seconds, more than 0 and at most 300")
    return Webhook(name=name, url=url, secret=secret, events=events, timeout=timeout)


def _positive(settings: Settings, name: str, default: float) -> float:
    value = settings.get_float(PREFIX + name, default)
    if value <= 0:
        raise ConfigError(PREFIX + name, str(value), "a number of seconds above 0")
    return value


def _policy(settings: Settings) -> RetryPolicy:
    base = _positive(settings, "backoff_base", 30.0)
    cap = _positive(settings, "backoff_max", 3600.0)
    if cap < base:
        raise ConfigError(PREFIX + "backoff_max", str(cap), f"at least webhooks.backoff_base ({base})")
    return RetryPolicy(
        max_attempts=settings.get_int(PREFIX + "max_attempts", 8, minimum=1),
        backoff_base=base,
        backoff_max=cap,
        poll_interval=_positive(settings, "poll_interval", 5.0),
    )
