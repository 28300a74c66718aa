"""Metadata index backends ("the cache" in the ini and in 1.x; SPEC section 7).

This package was `pypicloud.cache`; that name still imports (see `pypicloud/cache/`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..plugins import build
from .base import MetadataIndex

if TYPE_CHECKING:
    from ..settings import Settings

ALIASES = {
    "sql": "pypicloud.index.sql.SQLIndex",
    "redis": "pypicloud.index.redis.RedisIndex",
    "dynamo": "pypicloud.index.dynamo.DynamoIndex",
    # pypicloud 1.x's dotted names
    "pypicloud.cache.sqlcache": "pypicloud.index.sql.SQLIndex",
    "pypicloud.cache.sql.sqlcache": "pypicloud.index.sql.SQLIndex",
    "pypicloud.cache.rediscache": "pypicloud.index.redis.RedisIndex",
    "pypicloud.cache.redis_cache.rediscache": "pypicloud.index.redis.RedisIndex",
    "pypicloud.cache.dynamocache": "pypicloud.index.dynamo.DynamoIndex",
    "pypicloud.cache.dynamo.dynamocache": "pypicloud.index.dynamo.DynamoIndex",
}


def index_from_settings(settings: Settings) -> MetadataIndex:
    """Build the index backend named by ``pypi.db`` (default ``sql``)."""
    return build(settings, "pypi.db", "sql", ALIASES, MetadataIndex)


__all__ = ["MetadataIndex", "index_from_settings", "ALIASES"]
