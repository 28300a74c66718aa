"""One contract suite for every metadata index backend (SPEC section 7, cache/base.py).

Each test receives an ``IndexBackend`` helper that builds instances of one
implementation over one shared store (so a second instance stands for another
process or a restart): SQLIndex on a SQLite file in tmp_path, SQLIndex on
PostgreSQL in a fresh schema, SQLIndex on MariaDB in a fresh database, and
RedisIndex under a fresh key prefix, DynamoIndex on the moto server in tables
under a fresh namespace. The server runs skip where the service is absent (fail under CI=true).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from pypicloud.index.base import MetadataIndex
from pypicloud.index.dynamo import DynamoIndex
from pypicloud.index.redis import RedisIndex
from pypicloud.index.schema import metadata as schema_metadata
from pypicloud.index.sql import SQLIndex
from pypicloud.models import FileRecord, ProjectSummary
from tests import threads
from tests.fixtures.services import unique_name

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


# ---------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------
class SQLiteBackend:
    """SQLIndex on one SQLite file."""

    def __init__(self, tmp_path):
        self.url = f"sqlite:///{tmp_path / 'index.sqlite'}"
        self.opened: list[MetadataIndex] = []

    def open(self) -> MetadataIndex:
        index = SQLIndex(self.url)
        self.opened.append(index)
        return index

    def close(self) -> None:
        for index in self.opened:
            index.close()


class PostgresBackend(SQLiteBackend):
    """SQLIndex on PostgreSQL, in a schema of its own (dropped by the fixture)."""

    def __init__(self, url: str, schema: str):
        self.url, self.schema = url, schema
        self.opened = []

    def open(self) -> MetadataIndex:
        index = SQLIndex(self.url, schema=self.schema)
        self.opened.append(index)
        return index


class RedisBackend(SQLiteBackend):
    """RedisIndex under a key prefix of its own (removed by the fixture)."""

    def __init__(self, url: str, prefix: str):
        self.url, self.prefix = url, prefix
        self.opened = []

    def open(self) -> MetadataIndex:
        index = RedisIndex(self.url, prefix=self.prefix)
        self.opened.append(index)
        return index


class DynamoBackend(SQLiteBackend):
    """DynamoIndex on the moto server, in tables under a namespace of its own (dropped after)."""

    def __init__(self, endpoint_url: str):
        self.endpoint_url = endpoint_url
        self.namespace = unique_name("ppc") + "-"
        self.opened = []

    def open(self) -> MetadataIndex:
        index = DynamoIndex(endpoint_url=self.endpoint_url, region_name="us-east-1", namespace=self.namespace)
        self.opened.append(index)
        return index

    def close(self) -> None:
        cleaner = DynamoIndex(
            endpoint_url=self.endpoint_url, region_name="us-east-1", namespace=self.namespace, create=False
        )
        cleaner.delete_tables()
        cleaner.close()
        super().close()


class MemoryBackend(SQLiteBackend):
    """tests/fakes.py's in-memory index: instances share one store."""

    def __init__(self):
        from tests.fakes import IndexStore

        self.store = IndexStore()
        self.opened = []

    def open(self) -> MetadataIndex:
        from tests.fakes import MemoryIndex

        index = MemoryIndex(self.store)
        self.opened.append(index)
        return index


BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
    pytest.param("redis", marks=pytest.mark.redis),
    "dynamo",
]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    if request.param == "postgres":
        helper = PostgresBackend(*request.getfixturevalue("postgres_schema"))
    elif request.param == "mariadb":
        helper = PostgresBackend(*request.getfixturevalue("mariadb_database"))
    elif request.param == "redis":
        helper = RedisBackend(*request.getfixturevalue("redis_prefix"))
    elif request.param == "dynamo":
        helper = DynamoBackend(request.getfixturevalue("moto_server"))
    elif request.param == "memory":
        helper = MemoryBackend()
    else:
        helper = SQLiteBackend(tmp_path)
    helper.kind = request.param
    yield helper
    helper.close()


@pytest.fixture
def index(backend) -> MetadataIndex:
    return backend.open()


def rec(
    filename: str,
    project: str = "demo",
    *,
    name: str | None = None,
    version: str = "1.0",
    when: datetime = T0,
    summary: str | None = "A summary",
    **kw,
) -> FileRecord:
    return FileRecord(
        project=project,
        name=name or project,
        version=version,
        filename=filename,
        size=kw.pop("size", 1234),
        sha256=kw.pop("sha256", "a" * 64),
        md5=kw.pop("md5", "b" * 32),
        requires_python=kw.pop("requires_python", ">=3.8"),
        summary=summary,
        upload_time=when,
        uploader=kw.pop("uploader", "alice"),
        key=kw.pop("key", f"{project}/{filename}"),
        **kw,
    )


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------
def test_empty(index):
    assert index.count() == 0
    assert index.get("demo-1.0.tar.gz") is None
    assert index.files("demo") == []
    assert index.projects() == []
    assert list(index.all_records()) == []
    index.check_health()


def test_add_and_get_round_trip_every_field(index):
    record = rec(
        "demo-1.0-py3-none-any.whl",
        name="Demo",
        summary="Ünïcode summary ✓",
        requires_python=">=3.8,<4",
        yanked=True,
        yanked_reason="broken",
        metadata_sha256="c" * 64,
        size=2**40,
        uploader="bob",
    )
    index.add(record)
    assert index.get(record.filename) == record
    assert index.count() == 1


def test_the_storage_tag_round_trips_and_may_be_empty(index):
    """A rebuild keeps a row while storage lists the tag it remembers (equality ignores it)."""
    tagged = rec("demo-1.0.tar.gz", storage_tag='"0cc175b9"/1234/2026-01-02T03:04:05+00:00')
    index.replace_all([tagged, rec("demo-1.1.tar.gz", version="1.1")])
    assert index.get("demo-1.0.tar.gz").storage_tag == tagged.storage_tag
    assert index.get("demo-1.1.tar.gz").storage_tag == ""
    index.add(tagged.replace(storage_tag="other"))
    assert {r.filename: r.storage_tag for r in index.all_records()} == {
        "demo-1.0.tar.gz": "other",
        "demo-1.1.tar.gz": "",
    }


def test_optional_fields_may_be_empty(index):
    record = FileRecord(
        project="demo",
        name="demo",
        version="1.0",
        filename="demo-1.0.tar.gz",
        size=0,
        sha256="a" * 64,
        upload_time=T0,
    )
    index.add(record)
    assert index.get(record.filename) == record


def test_add_replaces_by_filename(index):
    index.add(rec("demo-1.0.tar.gz", sha256="1" * 64))
    index.add(rec("demo-1.0.tar.gz", sha256="2" * 64, summary="New"))
    assert index.count() == 1
    assert index.get("demo-1.0.tar.gz").sha256 == "2" * 64
    assert [r.sha256 for r in index.files("demo")] == ["2" * 64]
    assert index.projects()[0].summary == "New"


def test_add_moving_a_file_to_another_project_updates_both(index):
    index.add(rec("shared-1.0.tar.gz", project="old"))
    index.add(rec("shared-1.0.tar.gz", project="new"))
    assert index.files("old") == []
    assert [p.project for p in index.projects()] == ["new"]


def test_remove(index):
    index.add(rec("demo-1.0.tar.gz"))
    index.add(rec("demo-1.1.tar.gz", version="1.1"))
    assert index.remove("demo-1.0.tar.gz") is True
    assert index.get("demo-1.0.tar.gz") is None
    assert index.remove("demo-1.0.tar.gz") is False
    assert index.remove("never-1.0.tar.gz") is False
    assert [r.filename for r in index.files("demo")] == ["demo-1.1.tar.gz"]
    assert index.count() == 1


def test_files_are_per_project_and_ordered_by_filename(index):
    names = [
        "demo-2.0.tar.gz",
        "demo-1.0-py3-none-any.whl",
        "demo-1.0.tar.gz",
        "demo-10.0.tar.gz",
        "Demo-0.1.tar.gz",
    ]
    for i, filename in enumerate(names):
        index.add(rec(filename, when=T0 + timedelta(minutes=i)))
    index.add(rec("other-1.0.tar.gz", project="other"))
    assert [r.filename for r in index.files("demo")] == sorted(names)
    assert [r.filename for r in index.files("other")] == ["other-1.0.tar.gz"]
    assert index.files("nope") == []


def test_all_records_and_count(index):
    records = [rec(f"p{i}-1.0.tar.gz", project=f"p{i}") for i in range(5)]
    for record in records:
        index.add(record)
    assert sorted(index.all_records(), key=lambda r: r.filename) == records
    assert index.count() == 5


# ---------------------------------------------------------------------------
# Project summaries
# ---------------------------------------------------------------------------
def test_projects_summary_follows_the_newest_upload(index):
    index.add(rec("foo_bar-1.0.tar.gz", project="foo-bar", name="Foo_Bar", summary="Old", when=T0))
    index.add(
        rec(
            "foo_bar-2.0.tar.gz",
            project="foo-bar",
            name="foo.bar",
            summary="Newest",
            when=T0 + timedelta(days=2),
        )
    )
    index.add(
        rec(
            "foo_bar-1.5.tar.gz",
            project="foo-bar",
            name="FOO-BAR",
            summary="Middle",
            when=T0 + timedelta(days=1),
        )
    )
    [summary] = index.projects()
    assert summary == ProjectSummary(
        project="foo-bar", name="foo.bar", last_modified=T0 + timedelta(days=2), summary="Newest"
    )
    # Removing the newest file makes the next newest one the summary.
    index.remove("foo_bar-2.0.tar.gz")
    [summary] = index.projects()
    assert (summary.name, summary.summary) == ("FOO-BAR", "Middle")
    assert summary.last_modified == T0 + timedelta(days=1)


def test_projects_are_ordered_by_canonical_name(index):
    for project in ("zeta", "alpha", "mid-dle", "beta"):
        index.add(rec(f"{project}-1.0.tar.gz", project=project, name=project.upper()))
    assert [p.project for p in index.projects()] == ["alpha", "beta", "mid-dle", "zeta"]
    assert [p.name for p in index.projects()] == ["ALPHA", "BETA", "MID-DLE", "ZETA"]


def test_project_disappears_with_its_last_file(index):
    index.add(rec("demo-1.0.tar.gz"))
    index.add(rec("demo-1.1.tar.gz", version="1.1"))
    index.add(rec("keep-1.0.tar.gz", project="keep"))
    index.remove("demo-1.0.tar.gz")
    assert [p.project for p in index.projects()] == ["demo", "keep"]
    index.remove("demo-1.1.tar.gz")
    assert [p.project for p in index.projects()] == ["keep"]
    assert index.files("demo") == []


# ---------------------------------------------------------------------------
# Yanking
# ---------------------------------------------------------------------------
def test_set_yanked(index):
    index.add(rec("demo-1.0.tar.gz"))
    assert index.set_yanked("demo-1.0.tar.gz", True, "security issue") is True
    record = index.get("demo-1.0.tar.gz")
    assert record.yanked is True and record.yanked_reason == "security issue"
    assert index.files("demo")[0].yanked is True
    assert index.set_yanked("demo-1.0.tar.gz", False) is True
    record = index.get("demo-1.0.tar.gz")
    assert record.yanked is False and record.yanked_reason is None
    assert index.set_yanked("demo-1.0.tar.gz", True) is True
    assert index.get("demo-1.0.tar.gz").yanked_reason is None
    # Unyanking drops a reason even if one is passed.
    index.set_yanked("demo-1.0.tar.gz", True, "x")
    index.set_yanked("demo-1.0.tar.gz", False, "ignored")
    assert index.get("demo-1.0.tar.gz").yanked_reason is None


def test_set_yanked_on_a_missing_file(index):
    assert index.set_yanked("nope-1.0.tar.gz", True, "why") is False
    assert index.get("nope-1.0.tar.gz") is None
    assert index.count() == 0


# ---------------------------------------------------------------------------
# The change counter
# ---------------------------------------------------------------------------
def test_generation_grows_on_every_change(index):
    seen = [index.generation()]

    def changed():
        now = index.generation()
        assert now > seen[-1]
        seen.append(now)

    index.add(rec("demo-1.0.tar.gz"))
    changed()
    index.add(rec("demo-1.0.tar.gz", sha256="f" * 64))  # a replacement is a change
    changed()
    index.add(rec("demo-1.1.tar.gz", version="1.1"))
    changed()
    index.set_yanked("demo-1.0.tar.gz", True, "r")
    changed()
    index.set_yanked("demo-1.0.tar.gz", False)
    changed()
    index.remove("demo-1.1.tar.gz")
    changed()
    index.replace_all([rec("other-1.0.tar.gz", project="other")])
    changed()
    index.replace_all([])
    changed()


def test_generation_does_not_move_on_reads(index):
    index.add(rec("demo-1.0.tar.gz"))
    before = index.generation()
    index.get("demo-1.0.tar.gz")
    index.get("nope")
    index.files("demo")
    index.projects()
    list(index.all_records())
    index.count()
    index.get_url("demo/demo-1.0.tar.gz")
    index.check_health()
    assert index.generation() == before


def test_caching_a_signed_url_is_not_a_change_of_the_records(index):
    index.add(rec("demo-1.0.tar.gz"))
    before = index.generation()
    index.set_url("demo/demo-1.0.tar.gz", "https://storage.invalid/x?sig=1", T0 + timedelta(hours=1))
    assert index.generation() == before


@pytest.mark.parametrize("noop", ["remove", "set_yanked"])
def test_generation_does_not_move_when_nothing_changed(index, noop):
    """cache/base.py: remove "bumps the counter when it removed one"; a yank of a missing
    file changes nothing either. A needless bump throws away every cached page."""
    index.add(rec("demo-1.0.tar.gz"))
    before = index.generation()
    if noop == "remove":
        assert index.remove("nope-1.0.tar.gz") is False
    else:
        assert index.set_yanked("nope-1.0.tar.gz", True) is False
    assert index.generation() == before


def test_generation_is_shared_by_instances_and_survives_a_restart(backend):
    first = backend.open()
    second = backend.open()
    first.add(rec("demo-1.0.tar.gz"))
    assert second.generation() == first.generation()
    assert second.get("demo-1.0.tar.gz") == first.get("demo-1.0.tar.gz")
    generation = first.generation()
    first.close()
    third = backend.open()
    assert third.generation() == generation
    assert third.count() == 1
    third.add(rec("demo-1.1.tar.gz", version="1.1"))
    assert second.generation() > generation


# ---------------------------------------------------------------------------
# replace_all
# ---------------------------------------------------------------------------
def test_replace_all(index):
    index.add(rec("gone-1.0.tar.gz", project="gone"))
    index.add(rec("demo-1.0.tar.gz", summary="stale"))
    records = [
        rec("demo-1.0.tar.gz", summary="Old", when=T0),
        rec(
            "demo-2.0.tar.gz",
            version="2.0",
            name="Demo",
            summary="New",
            when=T0 + timedelta(hours=1),
            yanked=True,
            yanked_reason="r",
        ),
        rec("other-1.0.tar.gz", project="other"),
    ]
    index.replace_all(records)
    assert sorted(index.all_records(), key=lambda r: r.filename) == sorted(records, key=lambda r: r.filename)
    assert index.count() == 3
    assert index.get("gone-1.0.tar.gz") is None
    assert [(p.project, p.name, p.summary) for p in index.projects()] == [
        ("demo", "Demo", "New"),
        ("other", "other", "A summary"),
    ]
    assert index.get("demo-2.0.tar.gz").yanked_reason == "r"


def test_replace_all_with_nothing_empties(index):
    index.add(rec("demo-1.0.tar.gz"))
    index.replace_all([])
    assert index.count() == 0 and index.projects() == []


def test_replace_all_accepts_an_iterator(index):
    index.replace_all(rec(f"p-{i}.0.tar.gz", project="p", version=f"{i}.0") for i in range(3))
    assert index.count() == 3


# ---------------------------------------------------------------------------
# Signed URL cache
# ---------------------------------------------------------------------------
def test_signed_urls(index):
    key = "ab12/demo/demo-1.0.tar.gz"
    assert index.get_url(key) is None
    # A backend may forget URLs once they expired, so use times to come.
    expires = datetime.now(UTC).replace(microsecond=123456) + timedelta(hours=24)
    index.set_url(key, "https://storage.invalid/a?X-Sig=1", expires)
    assert index.get_url(key) == ("https://storage.invalid/a?X-Sig=1", expires)
    # A new URL replaces the old one.
    later = expires + timedelta(hours=1)
    index.set_url(key, "https://storage.invalid/a?X-Sig=2", later)
    url, when = index.get_url(key)
    assert (url, when) == ("https://storage.invalid/a?X-Sig=2", later)
    assert when.utcoffset() == timedelta(0)
    assert index.get_url("other/key") is None


def test_signed_url_expiry_in_another_zone_means_the_same_instant(index):
    cet = timezone(timedelta(hours=2))
    expires = (datetime.now(UTC) + timedelta(days=1)).astimezone(cet)
    index.set_url("k", "https://storage.invalid/k", expires)
    _, when = index.get_url("k")
    assert when == expires and when.utcoffset() == timedelta(0)


def test_signed_urls_are_shared_between_instances(backend):
    first, second = backend.open(), backend.open()
    expires = datetime.now(UTC) + timedelta(hours=1)
    first.set_url("k", "https://storage.invalid/k", expires)
    assert second.get_url("k") == ("https://storage.invalid/k", expires)


# ---------------------------------------------------------------------------
# Time zones
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "when",
    [
        T0,
        datetime(2024, 5, 1, 14, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
        datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-8))),
        datetime(1999, 1, 1, tzinfo=UTC),
    ],
)
def test_upload_times_round_trip_as_aware_utc(index, when):
    index.add(rec("demo-1.0.tar.gz", when=when))
    stored = index.get("demo-1.0.tar.gz").upload_time
    assert stored == when  # the same instant, to the microsecond
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert index.files("demo")[0].upload_time == when
    summary = index.projects()[0].last_modified
    assert summary == when and summary.utcoffset() == timedelta(0)
    assert next(iter(index.all_records())).upload_time.utcoffset() == timedelta(0)


def test_newest_upload_is_decided_by_instant_not_by_local_clock(index):
    # 12:00 UTC is later than 13:00 at UTC+2 (11:00 UTC).
    index.add(rec("demo-1.0.tar.gz", summary="utc noon", when=T0))
    index.add(
        rec(
            "demo-1.1.tar.gz",
            version="1.1",
            summary="earlier",
            when=T0.replace(hour=13).astimezone(timezone(timedelta(hours=2))).replace(hour=13),
        )
    )
    assert index.projects()[0].summary == "utc noon"


# ---------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------
def test_concurrent_adds_from_many_threads(index):
    threads_count, per_thread = 8, 25
    before = index.generation()

    def work(t):
        for i in range(per_thread):
            index.add(
                rec(
                    f"p{t}-{i}.0.tar.gz",
                    project=f"p{t}",
                    version=f"{i}.0",
                    when=T0 + timedelta(seconds=i),
                )
            )

    # run_together fails the test if a thread is still alive after the timeout.
    outcomes = threads.run_together([lambda t=t: work(t) for t in range(threads_count)], timeout=120)
    errors = threads.errors_of(outcomes)
    assert errors == []
    assert index.count() == threads_count * per_thread
    assert {r.filename for r in index.all_records()} == {
        f"p{t}-{i}.0.tar.gz" for t in range(threads_count) for i in range(per_thread)
    }
    summaries = index.projects()
    assert [p.project for p in summaries] == sorted(f"p{t}" for t in range(threads_count))
    assert all(p.last_modified == T0 + timedelta(seconds=per_thread - 1) for p in summaries)
    assert index.generation() - before >= threads_count * per_thread


def test_concurrent_writers_on_separate_instances(backend):
    """Two instances stand for two processes sharing one index."""
    instances = [backend.open(), backend.open()]

    def work(n):
        for i in range(20):
            instances[n].add(rec(f"demo-{n}.{i}.tar.gz", version=f"{n}.{i}"))
            instances[n].files("demo")

    errors = threads.errors_of(threads.run_together([lambda n=n: work(n) for n in range(2)], timeout=120))
    assert errors == []
    assert instances[0].count() == instances[1].count() == 40
    assert len(instances[1].files("demo")) == 40


# ---------------------------------------------------------------------------
# SQL only: the migrations build what schema.py describes
# ---------------------------------------------------------------------------
def test_migrations_build_the_schema_py_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'migrated.sqlite'}"
    index = SQLIndex(url)  # runs the alembic migrations
    try:
        inspector = sa.inspect(index.engine)
        built = set(inspector.get_table_names()) - {"ppc_alembic_version"}
        assert built == set(schema_metadata.tables)
        for name, table in schema_metadata.tables.items():
            columns = {c["name"]: c for c in inspector.get_columns(name)}
            assert set(columns) == {c.name for c in table.columns}, name
            for column in table.columns:
                assert columns[column.name]["nullable"] == column.nullable, (name, column.name)
            primary = inspector.get_pk_constraint(name)["constrained_columns"]
            assert primary == [c.name for c in table.primary_key.columns], name
            indexed = {tuple(i["column_names"]) for i in inspector.get_indexes(name)}
            for idx in table.indexes:
                assert tuple(c.name for c in idx.columns) in indexed, (name, idx.name)
        # The counter row exists from the start.
        assert index.generation() >= 0
    finally:
        index.close()


def test_migrating_twice_is_harmless(tmp_path):
    url = f"sqlite:///{tmp_path / 'twice.sqlite'}"
    first = SQLIndex(url)
    first.add(rec("demo-1.0.tar.gz"))
    generation = first.generation()
    first.close()
    second = SQLIndex(url)
    try:
        assert second.count() == 1 and second.generation() == generation
    finally:
        second.close()


# ---------------------------------------------------------------------------
# Local-project marks and shared counters (issue 12)
# ---------------------------------------------------------------------------
def test_local_marks_are_shared_and_survive_rebuilds(backend):
    first, second = backend.open(), backend.open()
    assert not first.was_local("private-lib")
    first.mark_local("private-lib")
    first.mark_local("private-lib")  # idempotent
    assert second.was_local("private-lib") and not second.was_local("other")
    second.replace_all([rec("other-1.0.tar.gz", "other")])
    assert first.was_local("private-lib")


def test_shared_counters_add_up_across_instances_and_expire(backend, monkeypatch):
    first, second = backend.open(), backend.open()
    assert first.counter("login-fail:x") == 0
    assert first.incr_counter("login-fail:x", ttl=60) == 1
    assert second.incr_counter("login-fail:x", ttl=60) == 2
    assert first.counter("login-fail:x") == 2
    assert second.incr_counter("session:alice") == 1  # no ttl: kept
    # An expired counter counts as 0 and starts again.
    first.incr_counter("short", ttl=1)
    if backend.kind == "redis":
        first.client.pexpire(first._k("counter", "short"), 1)
        import time

        deadline = time.monotonic() + 5
        while first.counter("short") and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        later = datetime.now(UTC) + timedelta(seconds=5)

        class Clock(datetime):
            @classmethod
            def now(cls, tz=None):
                return later

        monkeypatch.setattr("pypicloud.index.sql_state.datetime", Clock)
        monkeypatch.setattr("pypicloud.index.dynamo_items.datetime", Clock)
        monkeypatch.setattr("tests.fakes.datetime", Clock)
    assert first.counter("short") == 0
    assert first.incr_counter("short", ttl=60) == 1
    assert second.counter("session:alice") == 1


def test_concurrent_first_increments_have_exactly_one_winner(backend):
    # Trusted publishing spends each OIDC token's jti with incr_counter: of several
    # processes presenting the same token at once, exactly one may see 1.
    if backend.kind == "dynamo":
        # DynamoDB's ADD is atomic, but moto applies concurrent updates without a
        # lock (two of them can read the same old value), so it cannot show it.
        pytest.skip("moto does not serialise concurrent update_item calls")
    instances = [backend.open() for _ in range(4)]
    results = threads.run_all(
        [lambda index=i: index.incr_counter("oidc-jti:same", ttl=600) for i in instances]
    )
    assert sorted(results) == [1, 2, 3, 4]


# Write protocol: the intent log, the repair lock, concurrent signed-URL writes
# ---------------------------------------------------------------------------
def test_intent_log_round_trip_without_moving_the_counter(backend):
    index, other = backend.open(), backend.open()
    before = index.generation()
    first = index.begin_intent("upload", "demo", "demo-1.0.tar.gz")
    second = index.begin_intent("delete", "demo", "demo-0.9.tar.gz")
    assert first and second and first != second
    assert index.generation() == before
    now = datetime.now(UTC)
    seen = other.open_intents(now + timedelta(seconds=1))
    assert [(i.op, i.project, i.filename) for i in seen] == [
        ("upload", "demo", "demo-1.0.tar.gz"),
        ("delete", "demo", "demo-0.9.tar.gz"),
    ]
    assert all(abs((i.created - now).total_seconds()) < 60 for i in seen)
    assert other.open_intents(now - timedelta(hours=1)) == []  # none that old
    other.end_intent(first)
    assert [i.id for i in index.open_intents(now + timedelta(seconds=1))] == [second]
    index.end_intent(second)
    index.end_intent(second)  # twice is harmless
    assert index.open_intents(now + timedelta(seconds=1)) == []


def test_intents_survive_a_rebuild(index):
    intent = index.begin_intent("upload", "demo", "demo-1.0.tar.gz")
    index.replace_all([rec("demo-1.0.tar.gz")])
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert [i.id for i in index.open_intents(later)] == [intent]


def test_repair_lock_admits_one_holder_across_instances(backend):
    first, second = backend.open(), backend.open()
    with first.repair_lock() as got:
        assert got is True
        with second.repair_lock() as other:
            assert other is False
    with second.repair_lock() as got:
        assert got is True


def test_concurrent_first_signed_url_writes_never_fail(backend):
    """Many processes storing the URL of one new file at once (repro F)."""
    instances = [backend.open() for _ in range(2)]
    errors: list[BaseException] = []  # what the server would answer 500 for
    expires = datetime.now(UTC) + timedelta(hours=1)
    for round_ in range(10):

        def work(n, key=f"new/file-{round_}.whl"):
            instances[n % 2].set_url(key, f"https://storage.invalid/{n}", expires)

        errors += threads.errors_of(threads.run_together([lambda n=n: work(n) for n in range(8)], timeout=30))
    assert errors == []
    url, _ = instances[0].get_url("new/file-3.whl")
    assert url.startswith("https://storage.invalid/")
