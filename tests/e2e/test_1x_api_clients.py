"""pypicloud 1.x's own client workflows against a real server (issue 11, item 3).

``pip search --index http://host/pypi`` (XML-RPC), and what 1.x's API docs show
with curl, sent by a requests-based script: an upload with nothing but the file, the
REST listing, and ``GET /admin/rebuild``.
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import ok, pip_cmd, run, stored_packages
from tests.fixtures.server import USERS

pytestmark = pytest.mark.e2e

PROJECT = "acme-widget"
NO_MATCHES_FOUND = 23  # pip search's exit status when nothing matched


def test_pip_search_finds_what_the_caller_may_read(published, cenv):
    url = published.auth_url("alice") + "/pypi"
    out = ok(run(pip_cmd("search", "--index", url, "widget"), cenv))
    assert "Acme.Widget (1.1)" in out, out
    # With default_read = authenticated an anonymous search finds nothing (no leak).
    anonymous = run(pip_cmd("search", "--index", published.url + "/pypi", "widget"), cenv)
    assert anonymous.returncode == NO_MATCHES_FOUND, anonymous.stdout
    assert "Acme.Widget" not in anonymous.stdout
    miss = run(pip_cmd("search", "--index", url, "no-such-thing"), cenv)
    assert miss.returncode == NO_MATCHES_FOUND, miss.stdout


def test_1x_script_upload_with_only_the_file_and_rebuild_by_get(server, dists):
    """What 1.x's API docs show with curl, sent the way a requests-based 1.x script does."""
    import requests

    wheel = dists.wheel("1.0")
    session = requests.Session()
    session.trust_env = False  # no proxy or netrc of the environment
    admin = ("admin", USERS["admin"])
    with wheel.open("rb") as handle:
        response = session.post(f"{server.url}/simple/", files={"content": handle}, auth=admin, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["filename"] == wheel.name
    assert set(stored_packages(server, PROJECT)) == {wheel.name}
    listing = session.get(f"{server.url}/api/package/{PROJECT}/", auth=admin, timeout=60).json()
    (record,) = listing["packages"]
    assert record["version"] == "1.0" and isinstance(record["last_modified"], int)
    assert listing["write"] is True

    response = session.get(f"{server.url}/admin/rebuild", auth=admin, timeout=60)
    assert response.status_code == 200 and response.json()["files"] == 1
    anonymous = session.get(f"{server.url}/admin/rebuild", timeout=60)
    assert anonymous.status_code == 401
    assert set(anonymous.json()) == {"error", "message"}
