"""Trusted publishing end to end (issue 18, part 5): a real server installed from the wheel,
a local issuer on loopback, and the real clients.

- the flow of the GitHub publish action: mint with the CI token over HTTP, then
  ``twine upload -u __token__`` with the minted token;
- ``uv publish -u __token__`` with a minted token (uv's own automatic flow,
  ``--trusted-publishing always``, only speaks https to the index, so it cannot
  run against this plain-http loopback server);
- an issuer that is down: minting answers 503, installs and password uploads go on.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import UV, api_files, ok, run, twine_upload
from tests.fixtures.oidc_issuer import AUDIENCE

pytestmark = pytest.mark.e2e


@pytest.fixture
def tp_server(server_factory, oidc_issuer):
    return server_factory(
        {
            "oidc.audience": AUDIENCE,
            "session.secret": "an-e2e-secret-of-enough-length",
            "oidc.publisher.widget.issuer": oidc_issuer.url,
            "oidc.publisher.widget.provider": "github",
            "oidc.publisher.widget.repository": "acme/widget",
            "oidc.publisher.widget.workflow": "release.yml",
            "oidc.publisher.widget.projects": "acme-widget",
        }
    )


def mint(server, token: str):
    status, _, body = server.request(
        "POST",
        "/_/oidc/mint-token",
        body=json.dumps({"token": token}).encode(),
        headers={"Content-Type": "application/json"},
    )
    return status, json.loads(body)


def test_twine_uploads_with_a_minted_token(tp_server, oidc_issuer, dists, cenv):
    status, body = mint(tp_server, oidc_issuer.github_token())
    assert status == 200, body
    wheel, sdist = dists.build("1.0")
    ok(twine_upload(tp_server, [wheel, sdist], cenv, user="__token__", password=body["token"]))
    files = api_files(tp_server, "acme-widget")
    assert set(files) == {wheel.name, sdist.name}
    assert {f["uploader"] for f in files.values()} == {"trusted-publisher:widget"}
    # The same CI token again is refused; a wrong repository gets nothing.
    replay = oidc_issuer.github_token(jti="fixed-jti")
    assert mint(tp_server, replay)[0] == 200
    assert mint(tp_server, replay)[0] == 422
    assert mint(tp_server, oidc_issuer.github_token(repository="evil/widget"))[0] == 422


def test_uv_publish_uploads_with_a_minted_token(tp_server, oidc_issuer, dists, cenv):
    status, body = mint(tp_server, oidc_issuer.github_token())
    assert status == 200, body
    wheel, sdist = dists.build("2.0", normalized=True)
    argv = [
        UV,
        "publish",
        "--publish-url",
        f"{tp_server.url}/simple/",
        "-u",
        "__token__",
        "-p",
        body["token"],
    ]
    ok(run([*argv, str(wheel), str(sdist)], cenv))
    files = api_files(tp_server, "acme-widget")
    assert set(files) == {wheel.name, sdist.name}


def test_an_issuer_that_is_down_blocks_no_upload_or_install(tp_server, oidc_issuer, dists, cenv):
    oidc_issuer.down = True
    status, body = mint(tp_server, oidc_issuer.github_token())
    assert status == 503 and body["errors"][0]["code"] == "issuer-unavailable"
    wheel, sdist = dists.build("1.0")
    ok(twine_upload(tp_server, [wheel, sdist], cenv))
    assert tp_server.request("GET", "/simple/acme-widget/", user="alice")[0] == 200
    assert tp_server.health() == 200
