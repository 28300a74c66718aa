"""Warm pages, downloads and ``.metadata`` files make no index round trip (issue 17 items 3 and 5).

The app caches rendered pages and file records per change counter, and a
PostgreSQL or Redis index keeps the counter in memory while its listener is up
(index/push.py). So once warm, the project page, a download and a PEP 658
metadata file are answered without asking the index anything; and a change made
through another process (here: another index object that announces nothing in
this one) still reaches them: the deleted file is gone from the page and its
download answers 404.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event

from pypicloud.index.redis import RedisIndex
from pypicloud.index.sql import SQLIndex

from .helpers import auth_headers, make_wheel, service, upload_dist

KINDS = [pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("redis", marks=pytest.mark.redis)]


def settings_for(kind: str, request) -> dict[str, str]:
    if kind == "postgres":
        url, schema = request.getfixturevalue("postgres_schema")
        return {"pypi.db": "sql", "db.url": url, "db.schema": schema}
    url, prefix = request.getfixturevalue("redis_prefix")
    return {"pypi.db": "redis", "db.url": url, "db.prefix": prefix}


def other_process(index):
    """An index object on the same database that announces nothing in this process."""
    if isinstance(index, SQLIndex):
        return SQLIndex(
            str(index.url.render_as_string(hide_password=False)), schema=index.schema, listen=False
        )
    kwargs = index.client.connection_pool.connection_kwargs
    return RedisIndex(
        f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}", prefix=index.prefix, listen=False
    )


class IndexTrips:
    """Counts what the calling thread sends to the index: SQL statements, counter reads, Redis commands."""

    def __init__(self, index, monkeypatch):
        self.count = 0
        me = threading.get_ident()

        def mine():
            if threading.get_ident() == me:
                self.count += 1

        if isinstance(index, SQLIndex):
            event.listen(index.engine, "before_cursor_execute", lambda *a: mine())  # gone with the app
            original = index._query_generation

            def query():
                mine()
                return original()

            monkeypatch.setattr(index, "_query_generation", query)
        else:
            original = index.client.execute_command

            def command(*args, **kwargs):
                mine()
                return original(*args, **kwargs)

            monkeypatch.setattr(index.client, "execute_command", command)


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"not within 20 s: {what}"
        time.sleep(0.01)


@pytest.mark.parametrize("kind", KINDS)
def test_warm_paths_ask_the_index_nothing_and_still_see_other_processes(kind, request, make_app, monkeypatch):
    app = make_app(settings_for(kind, request))
    filename, data = make_wheel("Warm.Pkg", "1.0")
    upload_dist(app, (filename, data))
    index = service(app).index
    index.generation()
    wait_until(lambda: index._push.live, "the index listener is up")
    headers = auth_headers("bob")
    page, download = "/simple/warm-pkg/", f"/api/package/warm-pkg/{filename}"
    for path in (page, download, download + ".metadata"):
        app.get(path, headers=headers, status=200)  # warm

    trips = IndexTrips(index, monkeypatch)
    for _ in range(3):
        assert filename in app.get(page, headers=headers, status=200).text
        assert app.get(download, headers=headers, status=200).body == data
        assert b"Name: Warm.Pkg" in app.get(download + ".metadata", headers=headers, status=200).body
    assert trips.count == 0

    before = index.generation()
    other = other_process(index)
    try:
        assert other.remove(filename)
    finally:
        other.close()
    wait_until(lambda: index.generation() > before, "the other process's change arrives")
    assert filename not in app.get(page, headers=headers, expect_errors=True).text
    app.get(download, headers=headers, status=404)
    app.get(download + ".metadata", headers=headers, status=404)
