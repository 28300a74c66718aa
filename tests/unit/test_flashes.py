"""The server-side flash store: one-time, bounded per session and in sessions, expiring."""

from __future__ import annotations

import time

from pypicloud.flashes import FlashStore


def test_messages_and_the_secret_are_handed_out_once():
    store = FlashStore()
    store.add("s1", "Uploaded a")
    store.add("s1", "b refused", "error")
    store.put_secret("s1", {"secret": "ppc_x"})
    messages, secret = store.pop("s1")
    assert messages == {"info": ["Uploaded a"], "error": ["b refused"]}
    assert secret == {"secret": "ppc_x"}
    assert store.pop("s1") == ({}, None)


def test_each_session_sees_only_its_own():
    store = FlashStore()
    store.add("s1", "one")
    store.add("s2", "two")
    assert store.pop("s2")[0] == {"info": ["two"]}
    assert store.pop("s1")[0] == {"info": ["one"]}


def test_bounded_per_session_per_message_and_in_sessions():
    store = FlashStore(max_sessions=3, max_messages=2, max_chars=10)
    for n in range(5):
        store.add("s1", f"message {n} is long")
    messages, _ = store.pop("s1")
    assert messages["info"] == ["(3 earlier messages not shown)", "message 3…", "message 4…"]
    for n in range(10):
        store.add(f"other{n}", "x")
    assert len(store) == 3
    assert store.pop("other0") == ({}, None)  # the least recently used went first
    assert store.pop("other9")[0] == {"info": ["x"]}


def test_unshown_messages_expire(monkeypatch):
    store = FlashStore(ttl=60)
    store.add("s1", "old")
    later = time.monotonic() + 61
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert store.pop("s1") == ({}, None)
