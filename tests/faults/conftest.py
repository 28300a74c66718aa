"""Fixtures of the fault-injection suite: a server process whose storage (the
moto S3 server) and index (PostgreSQL or Redis) are wrapped by
``tests.faults.wrappers``, and the plan file that steers the wrappers."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.faults.helpers import REPO
from tests.fixtures.s3 import s3_settings

INDEXES = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]


class FaultPlan:
    """The plan file of one test: rules in, 'reached' markers out, releases."""

    def __init__(self, path: Path):
        self.path = path
        self.set([])

    def set(self, rules: list[dict]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rules), encoding="utf-8")
        os.replace(tmp, self.path)

    def reached(self, rule_id: str) -> bool:
        return Path(f"{self.path}.reached.{rule_id}").exists()

    def wait_reached(self, rule_id: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.02) + 1):
            if self.reached(rule_id):
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        raise AssertionError(f"the server never reached rule {rule_id}")

    def release(self, rule_id: str) -> None:
        Path(f"{self.path}.release.{rule_id}").write_text("go", encoding="utf-8")


@pytest.fixture
def plan(tmp_path) -> FaultPlan:
    return FaultPlan(tmp_path / "plan.json")


@pytest.fixture(params=INDEXES)
def index_settings(request) -> dict[str, str]:
    """``[app:main]`` keys of the wrapped index: PostgreSQL (own schema) or Redis (own prefix)."""
    if request.param == "postgres":
        url, schema = request.getfixturevalue("postgres_schema")
        return {"faults.db": "sql", "db.url": url, "db.schema": schema}
    url, prefix = request.getfixturevalue("redis_prefix")
    return {"faults.db": "redis", "db.url": url, "db.prefix": prefix}


@pytest.fixture
def faulty_server(server_factory, moto_server, s3_bucket, plan, index_settings):
    """``start(**settings)``: a waitress process on the wrapped backends."""

    def start(name: str = "server", **extra):
        settings = {
            **s3_settings(moto_server, s3_bucket, prefix="packages/"),
            "pypi.storage": "tests.faults.wrappers.FaultyStorage",
            "faults.storage": "s3",
            "pypi.db": "tests.faults.wrappers.FaultyIndex",
            **index_settings,
            "faults.plan": str(plan.path),
            "pypi.repair_grace": "0",
            "pypi.repair_interval": "0",
            "storage.dir": None,
            **extra,
        }
        return server_factory(settings, name=name, env={"PYTHONPATH": str(REPO)})

    return start
