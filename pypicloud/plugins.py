"""Choose a backend class by short alias or by dotted Python name."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol, TypeVar

from .errors import ConfigError

if TYPE_CHECKING:
    from typing import Self

    from .settings import Settings


class Backend(Protocol):
    """What every backend family's base class offers: a constructor from the ini."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Self: ...


B = TypeVar("B", bound=Backend)


def resolve(key: str, value: str, aliases: dict[str, str], base: type[B]) -> type[B]:
    """Return the class that ``value`` names for setting ``key``.

    ``value`` is an alias from ``aliases`` (mapped to a dotted name) or a dotted
    name ``package.module.Class`` / ``package.module:Class``. The class must be a
    subclass of ``base``; anything else stops start-up with a ConfigError naming
    the key.
    """
    # 1.x resolved "package.module:Class" too: an alias matches either spelling.
    dotted = aliases.get(value.strip().lower().replace(":", "."), value.strip())
    module_name, sep, attr = dotted.replace(":", ".").rpartition(".")
    allowed = "one of " + ", ".join(sorted(aliases)) + " or a dotted class name"
    if not sep or not module_name:
        raise ConfigError(key, value, allowed)
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(key, value, f"{allowed} ({exc})") from exc
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(key, value, f"must name a subclass of {base.__module__}.{base.__name__}")
    return cls


def build(settings: Settings, key: str, default: str, aliases: dict[str, str], base: type[B]) -> B:
    """The backend instance that setting ``key`` (default ``default``) names, built from ``settings``."""
    cls = resolve(key, settings.get_str(key, default), aliases, base)
    return cls.from_settings(settings)
