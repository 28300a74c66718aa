"""Helpers of the fault-injection tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def fetch_sha256(srv, project: str, filename: str) -> str:
    """sha256 of a download through the server (its redirect to S3 followed)."""
    status, headers, body = srv.request("GET", f"/api/package/{project}/{filename}", user="admin")
    if status in (302, 303, 307):
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            headers["Location"], timeout=30
        ) as resp:
            body = resp.read()
    else:
        assert status == 200, (status, body[:300])
    return hashlib.sha256(body).hexdigest()
