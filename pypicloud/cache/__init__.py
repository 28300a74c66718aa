"""The old name of :mod:`pypicloud.index`, kept so ini files and plugins that name it work.

pypicloud 1.x and earlier 2.x releases called the metadata index backends "the cache";
``pypi.db = pypicloud.cache.sql.SQLIndex`` and ``from pypicloud.cache.base import
MetadataIndex`` still work: each submodule here is the very module object of
``pypicloud.index`` (same classes, same state), not a copy.
"""

from __future__ import annotations

from ..index import ALIASES, MetadataIndex, index_from_settings

__all__ = ["ALIASES", "MetadataIndex", "index_from_settings"]
