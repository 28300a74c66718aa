"""Alias of :mod:`pypicloud.index.base` (the package's old name; see :mod:`pypicloud.cache`)."""

import sys

from ..index import base as _module

# Importing this name hands back the real module, so classes and module state are shared.
sys.modules[__name__] = _module
