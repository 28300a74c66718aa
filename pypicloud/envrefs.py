"""References to environment variables in setting values: ``$NAME`` and ``${NAME}``.

One grammar for the server (:mod:`pypicloud.settings` expands the references when it
reads the ini) and for ``ppc-make-config`` (which writes them and lists the
variables an admin must set). A name is a shell variable name: a letter or ``_``,
then letters, digits and ``_``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(rf"^{NAME}$")
# The whole value is one reference: $NAME or ${NAME}.
_WHOLE = re.compile(rf"^\$(?:({NAME})|\{{({NAME})\}})$")
# The bare form only, for the server's "whole value" rule (see expand).
_WHOLE_BARE = re.compile(rf"^\$({NAME})$")
# ${NAME} anywhere in a value.
_BRACED = re.compile(rf"\$\{{({NAME})\}}")


def is_name(text: str) -> bool:
    """True when ``text`` can name an environment variable."""
    return bool(_NAME.match(text))


def whole_reference(value: str | None) -> str | None:
    """The NAME when ``value`` is exactly ``$NAME`` or ``${NAME}``, else None."""
    match = _WHOLE.match(value or "")
    return (match.group(1) or match.group(2)) if match else None


def names(value: str) -> list[str]:
    """Every variable ``value`` refers to, in order (a whole reference, or each ``${NAME}``)."""
    whole = whole_reference(value)
    return [whole] if whole else _BRACED.findall(value)


def expand(value: str, lookup: Callable[[str], str]) -> str:
    """``value`` with its references replaced by ``lookup(NAME)``.

    A value that is ``$NAME`` alone (surrounding blanks ignored) becomes the
    variable's value; otherwise each ``${NAME}`` is replaced where it stands.
    ``lookup`` raises for a variable that is not set.
    """
    match = _WHOLE_BARE.match(value.strip())
    if match:
        return lookup(match.group(1))
    return _BRACED.sub(lambda m: lookup(m.group(1)), value)
