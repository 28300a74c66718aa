"""Storage and index wrappers that fail, block or die at a named step.

Selected by dotted name in the ini of a real server process, around a real
backend::

    pypi.storage = tests.faults.wrappers.FaultyStorage
    faults.storage = s3                 ; the real backend (alias or dotted name)
    pypi.db = tests.faults.wrappers.FaultyIndex
    faults.db = sql
    faults.plan = /tmp/.../plan.json

The plan file is read at every step, so a test changes it while the server
runs. It is a JSON list of rules::

    {"id": "r1", "step": "index.add", "filename": "x.whl", "action": "fail",
     "times": 1}

``step`` is ``storage.<method>`` or ``index.<method>`` (the call about to be
made; ``storage.put.after`` fires after a put returned; ``index.add`` also before an
upload's ``finish_upload``, the call that writes its row). ``action``:

- ``fail``: raise BackendUnavailable (what an outage of that backend gives);
- ``kill``: SIGKILL this process (a crash at that point);
- ``block``: wait until the file ``<plan>.release.<id>`` exists, then go on;
- ``block_fail``: wait as ``block``, then fail.

When a rule fires the wrapper creates ``<plan>.reached.<id>`` so the test can
wait for it. ``times`` (default 1) bounds how often a rule fires in this
process; ``thread`` (optional) limits it to threads whose name starts with it
(``waitress`` for request threads, ``ppc-repair`` for the repair loop). Only
test code uses this module.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

from pypicloud import index, storage
from pypicloud.errors import BackendUnavailable
from pypicloud.index.base import MetadataIndex
from pypicloud.plugins import build
from pypicloud.settings import KNOWN_KEYS
from pypicloud.storage.base import Storage

BLOCK_LIMIT = 60.0  # seconds a block waits at most (a test never hangs forever)

_fired: dict[str, int] = {}
_lock = threading.Lock()


class Plan:
    def __init__(self, path: str | None):
        self.path = path

    def _rules(self) -> list[dict]:
        if not self.path:
            return []
        try:
            with open(self.path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return []

    def step(self, name: str, filename: str | None) -> None:
        for rule in self._rules():
            if rule.get("step") != name:
                continue
            if rule.get("filename") not in (None, filename):
                continue
            if not threading.current_thread().name.startswith(rule.get("thread", "")):
                continue
            rule_id = rule["id"]
            with _lock:
                count = _fired.get(rule_id, 0)
                if count >= rule.get("times", 1):
                    continue
                _fired[rule_id] = count + 1
            self._fire(rule, name)

    def _fire(self, rule: dict, name: str) -> None:
        rule_id, action = rule["id"], rule["action"]
        with open(f"{self.path}.reached.{rule_id}", "w", encoding="utf-8") as handle:
            handle.write(str(os.getpid()))
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if action in ("block", "block_fail"):
            release = f"{self.path}.release.{rule_id}"
            deadline = time.monotonic() + BLOCK_LIMIT
            while not os.path.exists(release) and time.monotonic() < deadline:
                time.sleep(0.02)
        if action in ("fail", "block_fail"):
            raise BackendUnavailable(f"injected outage at {name} (rule {rule_id})")


def _inner_settings(settings, key: str, inner_key: str):
    """The same settings with ``key`` naming the wrapped backend."""
    values = dict(settings)
    values[key] = settings.get_str(inner_key)
    return type(settings)(values, environ={}, here=getattr(settings, "here", None))


class FaultyStorage(Storage):
    """Any storage backend, with the steps of the plan injected."""

    # It wraps any backend, so it reads what any built-in one reads.
    SETTINGS_KEYS = frozenset(k for k in KNOWN_KEYS if k.startswith("storage."))

    def __init__(self, inner: Storage, plan: Plan):
        self.inner = inner
        self.plan = plan
        self.read_only = inner.read_only
        # Downloads keep their URLs and lifetimes (the Storage contract says whether there are any).
        self.hands_out_urls = inner.hands_out_urls
        self.download_url = inner.download_url
        self.url_lifetime = inner.url_lifetime
        self.location = inner.location

    @classmethod
    def from_settings(cls, settings) -> FaultyStorage:
        inner = storage.storage_from_settings(_inner_settings(settings, "pypi.storage", "faults.storage"))
        return cls(inner, Plan(settings.get_str("faults.plan")))

    def put(self, project, filename, stream, metadata, *, overwrite=False):
        self.plan.step("storage.put", filename)
        result = self.inner.put(project, filename, stream, metadata, overwrite=overwrite)
        self.plan.step("storage.put.after", filename)
        return result

    def open(self, project, filename, offset=0, length=None):
        return self.inner.open(project, filename, offset, length)

    def stat(self, project, filename):
        return self.inner.stat(project, filename)

    def delete(self, project, filename):
        self.plan.step("storage.delete", filename)
        return self.inner.delete(project, filename)

    def copy(self, project, filename, dest_project, dest_filename, metadata=None):
        return self.inner.copy(project, filename, dest_project, dest_filename, metadata)

    def update_metadata(self, project, filename, metadata):
        self.plan.step("storage.update_metadata", filename)
        return self.inner.update_metadata(project, filename, metadata)

    def list(self, metadata_for=None):
        return self.inner.list(metadata_for)

    def check_health(self):
        self.inner.check_health()

    def key_for(self, project, filename):
        return self.inner.key_for(project, filename)

    def close(self):
        self.inner.close()


class FaultyIndex(MetadataIndex):
    """Any metadata index, with the steps of the plan injected."""

    def __init__(self, inner: MetadataIndex, plan: Plan):
        self.inner = inner
        self.plan = plan

    @classmethod
    def from_settings(cls, settings) -> FaultyIndex:
        inner = index.index_from_settings(_inner_settings(settings, "pypi.db", "faults.db"))
        return cls(inner, Plan(settings.get_str("faults.plan")))

    def add(self, record):
        self.plan.step("index.add", record.filename)
        return self.inner.add(record)

    def get(self, filename):
        return self.inner.get(filename)

    def remove(self, filename):
        self.plan.step("index.remove", filename)
        return self.inner.remove(filename)

    def files(self, project):
        return self.inner.files(project)

    def projects(self):
        return self.inner.projects()

    def set_yanked(self, filename, yanked, reason=None):
        self.plan.step("index.set_yanked", filename)
        return self.inner.set_yanked(filename, yanked, reason)

    def generation(self):
        return self.inner.generation()

    def all_records(self):
        return self.inner.all_records()

    def replace_all(self, records):
        return self.inner.replace_all(records)

    def count(self):
        return self.inner.count()

    def get_url(self, key):
        return self.inner.get_url(key)

    def set_url(self, key, url, expires_at):
        return self.inner.set_url(key, url, expires_at)

    def check_health(self):
        self.inner.check_health()

    def begin_intent(self, op, project, filename):
        return self.inner.begin_intent(op, project, filename)

    def end_intent(self, intent_id):
        return self.inner.end_intent(intent_id)

    def open_intents(self, older_than):
        return self.inner.open_intents(older_than)

    def repair_lock(self):
        return self.inner.repair_lock()

    def mark_local(self, project):
        return self.inner.mark_local(project)

    def was_local(self, project):
        return self.inner.was_local(project)

    # An upload's three calls: the inner backend's own (the SQL index's one
    # transaction each), with the row's write as the step ``index.add``.
    def upload_view(self, project, filename):
        return self.inner.upload_view(project, filename)

    def begin_upload(self, project, filename):
        return self.inner.begin_upload(project, filename)

    def finish_upload(self, record, intent_id, rows):
        self.plan.step("index.add", record.filename)
        return self.inner.finish_upload(record, intent_id, rows)

    # The webhook queue: passed through unchanged.
    def enqueue_deliveries(self, deliveries):
        return self.inner.enqueue_deliveries(deliveries)

    def claim_deliveries(self, owner, now, lease, limit):
        return self.inner.claim_deliveries(owner, now, lease, limit)

    def complete_delivery(self, delivery_id, owner):
        return self.inner.complete_delivery(delivery_id, owner)

    def retry_delivery(self, delivery_id, owner, next_attempt_at, error):
        return self.inner.retry_delivery(delivery_id, owner, next_attempt_at, error)

    def fail_delivery(self, delivery_id, owner, error):
        return self.inner.fail_delivery(delivery_id, owner, error)

    def list_deliveries(self, state, limit):
        return self.inner.list_deliveries(state, limit)

    def count_deliveries(self, state):
        return self.inner.count_deliveries(state)

    def redeliver(self, delivery_id, now):
        return self.inner.redeliver(delivery_id, now)

    def add_event(self, event):
        return self.inner.add_event(event)

    def list_events(self, query):
        return self.inner.list_events(query)

    def prune_events(self, older_than):
        return self.inner.prune_events(older_than)

    def close(self):
        self.inner.close()


__all__ = ["FaultyIndex", "FaultyStorage", "Plan", "build"]
