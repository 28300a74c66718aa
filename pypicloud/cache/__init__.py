"""Metadata index backends ("the cache" in the ini; SPEC section 7)."""

from __future__ import annotations

from ..plugins import build
from .base import MetadataIndex

ALIASES = {
    "sql": "pypicloud.cache.sql.SQLIndex",
    "redis": "pypicloud.cache.redis.RedisIndex",
    "dynamo": "pypicloud.cache.dynamo.DynamoIndex",
    # pypicloud 1.x's dotted names
    "pypicloud.cache.sqlcache": "pypicloud.cache.sql.SQLIndex",
    "pypicloud.cache.sql.sqlcache": "pypicloud.cache.sql.SQLIndex",
    "pypicloud.cache.rediscache": "pypicloud.cache.redis.RedisIndex",
    "pypicloud.cache.redis_cache.rediscache": "pypicloud.cache.redis.RedisIndex",
    "pypicloud.cache.dynamocache": "pypicloud.cache.dynamo.DynamoIndex",
    "pypicloud.cache.dynamo.dynamocache": "pypicloud.cache.dynamo.DynamoIndex",
}


def index_from_settings(settings) -> MetadataIndex:
    """Build the index backend named by ``pypi.db`` (default ``sql``)."""
    return build(settings, "pypi.db", "sql", ALIASES, MetadataIndex)


__all__ = ["MetadataIndex", "index_from_settings", "ALIASES"]
