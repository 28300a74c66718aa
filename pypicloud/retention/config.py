"""The ``retention.*`` settings: policy blocks, ``keep`` pins and the schedule.

One block per policy (docs/retention.md)::

    retention.nightlies.projects = acme-* widget
    retention.nightlies.keep_latest = 10
    retention.nightlies.prerelease_days = 30
    retention.nightlies.yanked_days = 90
    retention.nightlies.keep_latest_final = true      (the default)
    retention.keep =
        widget==1.4.2
        acme-core
    retention.schedule = 24h

Every key is read and checked at start-up: an unknown key, a bad number or a
bad pin stops the server (and ``ppc-cleanup``) with a :class:`ConfigError`
naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from ..errors import ConfigError

PREFIX = "retention."
KEEP = PREFIX + "keep"
SCHEDULE = PREFIX + "schedule"

# The keys of one policy block and the rules among them (a block needs a rule).
FIELDS = frozenset({"projects", "keep_latest", "prerelease_days", "yanked_days", "keep_latest_final"})
RULES = ("keep_latest", "prerelease_days", "yanked_days")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_INTERVAL = re.compile(r"(\d+)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

#: The shortest schedule: a run lists every record of the index.
MIN_INTERVAL = 60
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Policy:
    """One ``retention.<name>.*`` block.

    ``projects`` are glob patterns on canonical names; a rule left None is off.
    ``keep_latest_final``: the newest final release that is not entirely
    yanked is never deleted by ``keep_latest`` or ``prerelease_days``.
    """

    name: str
    projects: tuple[str, ...] = ("*",)
    keep_latest: int | None = None
    prerelease_days: int | None = None
    yanked_days: int | None = None
    keep_latest_final: bool = True


@dataclass(frozen=True)
class Pin:
    """One line of ``retention.keep``: a project (every release) or a project and a specifier."""

    project: str
    specifier: SpecifierSet | None = None

    def protects(self, project: str, version: Version | None) -> bool:
        """True when this pin keeps the release ``version`` (None: not PEP 440) of ``project``."""
        if project != self.project:
            return False
        if self.specifier is None:
            return True
        return version is not None and self.specifier.contains(version, prereleases=True)


@dataclass(frozen=True)
class RetentionConfig:
    """Every policy (by name), the pins and the schedule's interval in seconds (None: off)."""

    policies: tuple[Policy, ...] = ()
    pins: tuple[Pin, ...] = ()
    schedule: int | None = None

    def selected(self, names: list[str] | None) -> tuple[Policy, ...]:
        """The policies called ``names`` (None: all); an unknown name is a ConfigError."""
        if not names:
            return self.policies
        known = {p.name: p for p in self.policies}
        for name in names:
            if name not in known:
                allowed = ", ".join(sorted(known)) or "none configured"
                raise ConfigError(f"{PREFIX}{name}", None, f"a configured policy ({allowed})")
        return tuple(p for p in self.policies if p.name in names)


def retention_from_settings(settings: Mapping[str, str]) -> RetentionConfig:
    """Read and check every ``retention.*`` key (see the module docstring)."""
    blocks: dict[str, dict[str, str]] = {}
    for key, value in settings.items():
        if not key.startswith(PREFIX) or key in (KEEP, SCHEDULE):
            continue
        name, sep, field = key[len(PREFIX) :].rpartition(".")
        if not sep or field not in FIELDS or not _NAME.fullmatch(name):
            wanted = "retention.keep, retention.schedule or retention.<name>.<" + "|".join(sorted(FIELDS))
            raise ConfigError(key, value, wanted + ">")
        blocks.setdefault(name, {})[field] = value.strip()
    policies = tuple(_policy(name, fields) for name, fields in sorted(blocks.items()))
    return RetentionConfig(
        policies=policies,
        pins=parse_pins(settings.get(KEEP, "")),
        schedule=parse_interval(SCHEDULE, settings.get(SCHEDULE, "")),
    )


def _policy(name: str, fields: dict[str, str]) -> Policy:
    key = f"{PREFIX}{name}."
    patterns = tuple(canonicalize_name(p) for p in re.split(r"[\s,]+", fields.get("projects", "")) if p)
    numbers = {
        rule: _number(key + rule, fields.get(rule), 1 if rule == "keep_latest" else 0) for rule in RULES
    }
    if all(number is None for number in numbers.values()):
        raise ConfigError(
            key + "keep_latest", None, "a policy needs keep_latest, prerelease_days or yanked_days"
        )
    return Policy(
        name=name,
        projects=patterns or ("*",),
        keep_latest=numbers["keep_latest"],
        prerelease_days=numbers["prerelease_days"],
        yanked_days=numbers["yanked_days"],
        keep_latest_final=_flag(key + "keep_latest_final", fields.get("keep_latest_final")),
    )


def _number(key: str, text: str | None, minimum: int) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) < minimum:
        raise ConfigError(key, text, f"a whole number, at least {minimum}")
    return int(text)


def _flag(key: str, text: str | None) -> bool:
    if not text or text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ConfigError(key, text, "use true/false, yes/no, on/off or 1/0")


def parse_pins(text: str) -> tuple[Pin, ...]:
    """``retention.keep``: one ``project`` or ``project<specifier>`` per line (``#`` starts a comment)."""
    pins = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            raise ConfigError(
                KEEP, line, "a project name, optionally with a version specifier (widget==1.4)"
            ) from None
        if req.url or req.extras or req.marker:
            raise ConfigError(
                KEEP, line, "a project name and a version specifier only (no extras, markers or URLs)"
            )
        pins.append(Pin(canonicalize_name(req.name), req.specifier if str(req.specifier) else None))
    return tuple(pins)


def parse_interval(key: str, text: str) -> int | None:
    """``24h``, ``30m``, ``2d``, ``3600`` (seconds) -> seconds; empty, ``off`` or 0 -> None."""
    value = text.strip().lower()
    if value in ("", "off", "no", "false", "never"):
        return None
    match = _INTERVAL.fullmatch(value)
    if not match:
        raise ConfigError(key, text, "an interval such as 24h, 30m, 2d or off")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds == 0:
        return None
    if seconds < MIN_INTERVAL:
        raise ConfigError(key, text, f"at least {MIN_INTERVAL} seconds (1m), or off")
    return seconds
