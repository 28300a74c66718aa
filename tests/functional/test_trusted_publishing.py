"""Trusted publishing (issue 18, part 5) through the real WSGI app, with a local issuer
on loopback that signs GitHub Actions and GitLab CI tokens with its own keys."""

from __future__ import annotations

import json

import pytest

from pypicloud.errors import ConfigError
from tests.fixtures.oidc_issuer import AUDIENCE, _new_key

from .helpers import assert_nothing_left, auth_headers, make_wheel, project_names, upload, upload_dist


def settings(issuer, **extra) -> dict[str, str]:
    values = {
        "oidc.audience": AUDIENCE,
        "session.secret": "a-test-secret-of-enough-length",
        "oidc.publisher.widget.provider": "github",
        "oidc.publisher.widget.issuer": issuer.url,
        "oidc.publisher.widget.repository": "Acme/Widget",
        "oidc.publisher.widget.workflow": "release.yml",
        "oidc.publisher.widget.environment": "release",
        "oidc.publisher.widget.projects": "acme-widget, Acme.Widget.Extras",
        "oidc.publisher.gl.provider": "gitlab",
        "oidc.publisher.gl.issuer": issuer.url,
        "oidc.publisher.gl.repository": "acme/gadget",
        "oidc.publisher.gl.workflow": ".gitlab-ci.yml",
        "oidc.publisher.gl.ref": "main",
        "oidc.publisher.gl.projects": "acme-gadget",
    }
    values.update(extra)
    return values


def mint(app, token, status=200):
    response = app.post(
        "/_/oidc/mint-token",
        json.dumps({"token": token}),
        content_type="application/json",
        expect_errors=True,
    )
    assert response.status_int == status, response.text
    return response.json


def refused(app, token, status=422) -> str:
    body = mint(app, token, status)
    assert body["message"] == "Token request failed"
    return body["errors"][0]["description"]


@pytest.fixture
def app(make_app, oidc_issuer):
    return make_app(settings(oidc_issuer))


def test_a_github_job_mints_a_token_and_uploads_only_to_its_projects(app, oidc_issuer):
    body = mint(app, oidc_issuer.github_token())
    assert body["success"] is True and body["projects"] == ["acme-widget", "acme-widget-extras"]
    token = body["token"]
    upload_dist(app, make_wheel("acme-widget", "1.0"), user="__token__", password=token)
    assert "acme-widget" in project_names(app)
    record = app.app.registry.service.index.files("acme-widget")[0]
    assert record.uploader == "trusted-publisher:widget"
    # Another project, and anything but uploading, stays closed.
    other = make_wheel("other-project", "1.0")
    response = upload(app, *other, user="__token__", password=token)
    assert response.status_int == 403
    assert_nothing_left(app, app.ppc_base, "other-project", other[0])
    filename = make_wheel("acme-widget", "1.0")[0]
    delete = app.delete(
        f"/api/package/acme-widget/{filename}", headers=auth_headers("__token__", token), expect_errors=True
    )
    assert delete.status_int in (401, 403)
    assert app.app.registry.service.index.files("acme-widget")


def test_a_gitlab_job_mints_a_token(app, oidc_issuer):
    token = mint(app, oidc_issuer.gitlab_token(project_path="acme/gadget"))["token"]
    upload_dist(app, make_wheel("acme-gadget", "2.0"), user="__token__", password=token)
    for wrong in (
        oidc_issuer.gitlab_token(project_path="acme/gadget", ref="feature"),  # not the trusted branch
        oidc_issuer.gitlab_token(project_path="acme/gadget", pipeline="other.yml"),
        oidc_issuer.gitlab_token(project_path="acme/widget"),
    ):
        assert "no trusted publisher matches" in refused(app, wrong)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("expired", "expired"),
        ("wrong_audience", "audience"),
        ("wrong_repository", "no trusted publisher matches"),
        ("wrong_workflow", "no trusted publisher matches"),
        ("wrong_environment", "no trusted publisher matches"),
        ("not_yet_valid", "not valid yet"),
        ("unknown_key", "key the issuer does not publish"),
        ("bad_signature", "signature"),
        ("unknown_issuer", "no trusted publisher is configured"),
        ("no_jti", "jti"),
    ],
)
def test_bad_tokens_are_refused_and_change_nothing(app, oidc_issuer, case, expected):
    github = oidc_issuer.github_token
    now_claims = oidc_issuer.base_claims
    tokens = {
        "expired": lambda: github(exp=now_claims()["iat"] - 3600, iat=now_claims()["iat"] - 4000, nbf=None),
        "wrong_audience": lambda: github(aud="somebody-else"),
        "wrong_repository": lambda: github(repository="evil/widget"),
        "wrong_workflow": lambda: github(workflow="other.yml"),
        "wrong_environment": lambda: github(environment="test"),
        "not_yet_valid": lambda: github(nbf=now_claims()["iat"] + 3600),
        "unknown_key": lambda: oidc_issuer.sign(
            now_claims(repository="acme/widget"), key=_new_key(), kid="nope"
        ),
        "bad_signature": lambda: oidc_issuer.sign(now_claims(), key=_new_key()),
        "unknown_issuer": lambda: github(iss="https://issuer.invalid"),
        "no_jti": lambda: github(jti=None),
    }
    token = tokens[case]()
    assert expected in refused(app, token)
    assert not app.app.registry.service.index.files("acme-widget")


def test_a_token_is_accepted_once(app, oidc_issuer):
    token = oidc_issuer.github_token()
    mint(app, token)
    assert "already used" in refused(app, token)


def test_key_rotation_is_picked_up(make_app, oidc_issuer):
    app = make_app(settings(oidc_issuer, **{"oidc.jwks_min_refresh": "0"}))
    mint(app, oidc_issuer.github_token())
    oidc_issuer.rotate()
    mint(app, oidc_issuer.github_token())  # unknown kid -> keys fetched again
    assert oidc_issuer.jwks_fetches == 2


def test_refreshes_are_rate_limited(app, oidc_issuer):
    mint(app, oidc_issuer.github_token())
    for _ in range(5):
        refused(app, oidc_issuer.sign(oidc_issuer.base_claims(), key=_new_key(), kid="forged"))
    assert oidc_issuer.jwks_fetches == 1  # forged key ids never reach the issuer again


def test_an_issuer_that_is_down_blocks_nothing_else(make_app, oidc_issuer):
    app = make_app(settings(oidc_issuer))
    oidc_issuer.down = True
    assert "cannot be fetched" in refused(app, oidc_issuer.github_token(), status=503)
    upload_dist(app, make_wheel("acme-widget", "1.0"))  # an admin's upload
    assert app.get("/simple/acme-widget/", headers=auth_headers("alice")).status_int == 200
    assert app.get("/health").status_int == 200


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b'{"token": 5}', b'{"token": "a.b.c"}', b'{"other": "x"}']
)
def test_malformed_requests_get_422(app, body):
    response = app.post("/_/oidc/mint-token", body, content_type="application/json", expect_errors=True)
    assert response.status_int == 422 and response.json["errors"][0]["code"].startswith("invalid")


def test_forged_and_expired_upload_tokens_are_refused(make_app, oidc_issuer):
    app = make_app(settings(oidc_issuer, **{"oidc.token_lifetime": "60"}))
    token = mint(app, oidc_issuer.github_token())["token"]
    body, _, mac = token.rpartition(".")
    for forged in (body + "." + mac[::-1], token + "x", "ppc-oidc-garbage"):
        response = upload(app, *make_wheel("acme-widget", "1.0"), user="__token__", password=forged)
        assert response.status_int == 401
    other = make_app(
        settings(oidc_issuer, **{"session.secret": "another-secret-entirely"}), base=app.ppc_base
    )
    assert (
        upload(other, *make_wheel("acme-widget", "1.0"), user="__token__", password=token).status_int == 401
    )
    assert not app.app.registry.service.index.files("acme-widget")


def test_audience_endpoint_and_off_means_404(make_app, app):
    assert app.get("/_/oidc/audience").json == {"audience": AUDIENCE}
    plain = make_app(base=app.ppc_base / "plain")
    assert plain.post("/_/oidc/mint-token", "{}", expect_errors=True).status_int == 404


@pytest.mark.parametrize(
    "key, value",
    [
        ("oidc.publisher.widget.provider", "bitbucket"),
        ("oidc.publisher.widget.issuer", "http://ci.example.com"),
        ("oidc.publisher.widget.projects", ""),
        ("oidc.publisher.widget.colour", "blue"),
        ("oidc.publisher.widget.workflow", ".github/workflows/release.yml"),
    ],
)
def test_bad_publisher_settings_stop_start_up(make_app, oidc_issuer, key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        make_app(settings(oidc_issuer, **{key: value}))
