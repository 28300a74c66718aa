"""Fixtures of the end-to-end layer (the server fixtures are in tests/fixtures/server.py)."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import client_env, ok, twine_upload


@pytest.fixture
def cenv(tmp_path):
    """Environment for pip / uv / twine subprocesses, isolated from the user's config."""
    return client_env(tmp_path / "client")


@pytest.fixture
def published(server, dists, cenv):
    """The default server with Acme.Widget 1.0 and 1.1 (wheel + sdist) uploaded by twine."""
    files = [*dists.build("1.0"), *dists.build("1.1")]
    ok(twine_upload(server, files, cenv))
    return server
