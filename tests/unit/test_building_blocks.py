"""The shared building blocks (issue 13): one LRU map, one hashing reader, one
environment-reference grammar, one set of time formats, one home for exceptions."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import pytest

from pypicloud import envrefs, errors, timefmt
from pypicloud.caching import BoundedLRU, PageCache
from pypicloud.hashing import HashingReader, sha256_of
from pypicloud.models import METADATA_SUFFIX, metadata_name
from pypicloud.settings import Settings
from pypicloud.sqldb import shared_database_key


# BoundedLRU ------------------------------------------------------------------
def test_lru_drops_the_least_recently_used_first():
    lru = BoundedLRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert lru.get("b") is None and lru.get("a") == 1 and lru.get("c") == 3
    assert list(lru) == ["a", "c"]


def test_lru_weight_bound_keeps_the_newest_value_even_alone():
    lru = BoundedLRU(10, max_weight=5, weight=len)
    lru.put("a", "xxx")
    lru.put("b", "yyy")  # 6 > 5: a goes
    assert list(lru) == ["b"] and lru.weight == 3
    lru.put("c", "z" * 9)  # alone over the bound, kept
    assert list(lru) == ["c"] and lru.weight == 9
    lru.put("c", "z")  # replacing a value re-weighs it
    assert lru.weight == 1


def test_lru_invalid_values_count_as_missing():
    lru = BoundedLRU(4)
    lru.put("a", 1)
    assert lru.get("a", "miss", valid=lambda v: v > 1, drop_invalid=False) == "miss"
    assert len(lru) == 1  # left in place
    assert lru.get("a", "miss", valid=lambda v: v > 1) == "miss"
    assert len(lru) == 0  # dropped


def test_lru_discard_if_and_clear():
    lru = BoundedLRU(4)
    for key, owner in (("k1", "alice"), ("k2", "bob"), ("k3", "alice")):
        lru.put(key, owner)
    lru.discard_if(lambda key, owner: owner == "alice")
    assert list(lru) == ["k2"]
    lru.clear()
    assert len(lru) == 0 and lru.weight == 0


def test_page_cache_answers_only_for_the_generation_stored():
    cache = PageCache(max_entries=2)
    cache.put("page", 7, b"body")
    assert cache.get("page", 7) == b"body"
    assert cache.get("page", 8) is None
    assert cache.get("page", 7) == b"body"  # another generation's read evicts nothing


def test_page_cache_with_a_byte_budget_drops_the_least_recently_used_pages():
    from pypicloud.caching import ENTRY_OVERHEAD
    from pypicloud.pagecache import Page

    page = Page(b"x" * 1000, "text/html", '"e"')
    cache = PageCache(max_entries=1000, max_bytes=3 * (1000 + ENTRY_OVERHEAD))
    for name in ("a", "b", "c"):
        cache.put(name, 1, page)
    assert cache.get("a", 1) is page  # "a" is now the most recently used
    cache.put("d", 1, page)  # over the budget: "b", the least recently used, goes
    assert [cache.get(k, 1) is not None for k in "abcd"] == [True, False, True, True]
    # Values without a body (file records) weigh the overhead alone.
    small = PageCache(max_entries=1000, max_bytes=2 * ENTRY_OVERHEAD)
    for key in "xyz":
        small.put(key, 1, object())
    assert [small.get(k, 1) is not None for k in "xyz"] == [False, True, True]


# HashingReader -------------------------------------------------------------------
def test_hashing_reader_counts_and_hashes_what_goes_through():
    data = b"0123456789" * 1000
    reader = HashingReader(io.BytesIO(data), ("sha256", "md5"))
    assert reader.read(10) == data[:10]
    reader.drain()
    assert reader.count == len(data)
    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()
    assert reader.hexdigest("md5") == hashlib.md5(data).hexdigest()
    assert sha256_of(io.BytesIO(data)) == hashlib.sha256(data).hexdigest()


# Environment references -------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "whole", "names"),
    [
        ("$DB_URL", "DB_URL", ["DB_URL"]),
        ("${DB_URL}", "DB_URL", ["DB_URL"]),
        ("s3://${BUCKET}/${PREFIX}x", None, ["BUCKET", "PREFIX"]),
        ("plain", None, []),
        ("$1NOPE", None, []),
    ],
)
def test_one_grammar_for_references(value, whole, names):
    assert envrefs.whole_reference(value) == whole
    assert envrefs.names(value) == names


def test_expand_reads_the_environment_as_the_server_does():
    env = {"A": "one", "B": "two"}
    assert envrefs.expand(" $A ", env.__getitem__) == "one"
    assert envrefs.expand("x-${A}-${B}", env.__getitem__) == "x-one-two"
    with pytest.raises(KeyError):
        envrefs.expand("${MISSING}", env.__getitem__)


# Time formats and names --------------------------------------------------------------
def test_time_formats():
    moment = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert timefmt.iso_utc(moment) == "2024-01-02T03:04:05.000006Z"
    assert timefmt.iso_seconds(moment) == "2024-01-02T03:04:05"
    assert timefmt.human_utc(moment) == "2024-01-02 03:04 UTC"


def test_metadata_name():
    assert metadata_name("demo-1.0-py3-none-any.whl") == "demo-1.0-py3-none-any.whl.metadata"
    assert METADATA_SUFFIX == ".metadata"


# The shared database -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, ("db.url", None)),
        ({"db.schema": "ppc"}, ("db.url", "ppc")),
        ({"auth.db.url": "sqlite://", "auth.db.schema": "a"}, ("auth.db.url", "a")),
        ({"pypi.db": "redis"}, ("auth.db.url", None)),
    ],
)
def test_access_shares_the_index_database_only_when_that_is_sql(raw, expected):
    assert shared_database_key(Settings(raw, environ={})) == expected


# Exceptions --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("pypicloud.upstream", "UpstreamError"),
        ("pypicloud.upstream", "UpstreamUnavailable"),
        ("pypicloud.access.editable", "InvalidAccessData"),
        ("pypicloud.access.editable", "AccessConflict"),
        ("pypicloud.access.editable", "PendingQueueFull"),
        ("pypicloud.access_admin", "ReadOnlyAccess"),
        ("pypicloud.access_admin", "AdminGuard"),
        ("pypicloud.access_admin", "NoSuchUser"),
        ("pypicloud.throttle", "TooManyAttempts"),
        ("pypicloud.views.negotiation", "NotAcceptable"),
        ("pypicloud.cli.make_config", "UsageError"),
        ("pypicloud.cli.migrate", "BadSource"),
    ],
)
def test_exceptions_live_in_errors_and_keep_their_old_import_path(module, name):
    import importlib

    assert getattr(importlib.import_module(module), name) is getattr(errors, name)
