"""Shared pytest configuration: fixtures live in tests/fixtures/ and are loaded here.

Also: every test gets the marker of its layer (its top folder under tests/), so
``-m unit`` or ``-m "not e2e and not browser"`` picks layers; and a guard fails
any test that opens a network connection beyond this host (tests/netguard.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import netguard

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.s3",
    "tests.fixtures.azurite",
    "tests.fixtures.cloudfront",
    "tests.fixtures.gcs",
    "tests.fixtures.server",
    "tests.fixtures.upstream",
    "tests.fixtures.ldap",
    "tests.fixtures.remote_access",
    "tests.fixtures.oidc_issuer",
]

TESTS = Path(__file__).resolve().parent
# Top folder under tests/ -> the layer marker (registered in pyproject.toml).
LAYERS = {
    "unit": "unit",
    "contract": "contract",
    "functional": "functional",
    "e2e": "e2e",
    "browser": "browser",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            top = Path(item.fspath).resolve().relative_to(TESTS).parts[0]
        except (ValueError, IndexError):
            continue
        layer = LAYERS.get(top)
        if layer is not None:
            item.add_marker(layer)


@pytest.fixture(scope="session", autouse=True)
def loopback_only():
    """Refuse non-loopback connections for the whole session (tests/netguard.py)."""
    uninstall = netguard.install()
    yield
    uninstall()


@pytest.fixture(autouse=True)
def _no_connection_beyond_loopback(loopback_only):
    """Fail the test that tried, even when the code under test swallowed the refusal."""
    netguard.take_attempts()
    yield
    attempts = netguard.take_attempts()
    if attempts:
        pytest.fail("the test tried to reach beyond loopback: " + "; ".join(attempts), pytrace=False)
