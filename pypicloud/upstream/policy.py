"""The fallback policy: what the ini says about the upstream index.

``pypi.fallback``, ``pypi.always_show_upstream``, ``pypi.disallow_fallback`` and
``pypi.cache_update``, validated once at start-up. The rules that use the policy
live in :class:`pypicloud.service.PackageIndex`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..settings import Settings

LOG = logging.getLogger(__name__)

MODES = ("none", "redirect", "cache")
# Recorded as the uploader of files fetched from upstream. Not a possible user name
# of the ini (parentheses), so a real user's upload is never mistaken for a cached file.
UPSTREAM_UPLOADER = "(upstream)"
MAX_TIMEOUT = 3600.0


@dataclass(frozen=True)
class FallbackPolicy:
    """The fallback settings, validated. ``disallow`` holds canonical names."""

    mode: str = "none"
    always_show_upstream: bool = False
    disallow: frozenset[str] = frozenset()
    cache_update: frozenset[str] = frozenset({"authenticated"})

    def applies_to(self, project: str) -> bool:
        """True when ``project`` may be looked up upstream at all."""
        return self.mode != "none" and canonicalize_name(project) not in self.disallow


def policy_from_settings(settings: Settings) -> FallbackPolicy:
    """The policy of the ini; warns once when ``pypi.fallback`` is not set at all."""
    mode = settings.get_choice("pypi.fallback", MODES, "none")
    if settings.get_str("pypi.fallback") is None:
        # The default differs from 1.x's on purpose; say so once, at start-up.
        LOG.warning(
            "pypi.fallback is not set, so projects that are not stored here are not "
            "found (404). pypicloud 1.x redirected them to the public index by "
            "default; to keep that, add the line: pypi.fallback = redirect "
            "(or set pypi.fallback = none to silence this warning)"
        )
    if "pypi.cache_update" in settings:
        cache_update = settings.get_list("pypi.cache_update", ())
    else:
        cache_update = ["authenticated"]
    return FallbackPolicy(
        mode=mode,
        always_show_upstream=settings.get_bool("pypi.always_show_upstream", False),
        disallow=frozenset(canonicalize_name(n) for n in settings.get_list("pypi.disallow_fallback")),
        cache_update=frozenset(cache_update),
    )


def timeout_from_settings(settings: Settings, default: float) -> float:
    """``pypi.fallback_timeout`` in seconds: greater than 0, at most MAX_TIMEOUT."""
    timeout = settings.get_float("pypi.fallback_timeout", default)
    # "nan" and "inf" parse as floats, but no socket takes them (every request would fail
    # with a 500), and "no timeout at all" is what this setting exists to prevent.
    if timeout is None or not 0 < timeout <= MAX_TIMEOUT:
        raise ConfigError(
            "pypi.fallback_timeout",
            settings.get_str("pypi.fallback_timeout"),
            f"a number of seconds greater than 0, at most {MAX_TIMEOUT:g}",
        )
    return timeout
