"""Trusted publishers: which claims match (GitHub Actions and GitLab CI), and the ini's checks."""

from __future__ import annotations

import pytest

from pypicloud.errors import ConfigError
from pypicloud.oidc.publishers import GITHUB_ISSUER, GITLAB_ISSUER, publishers_from_settings
from pypicloud.settings import Settings


def publisher(**fields):
    raw = {f"oidc.publisher.p.{k}": v for k, v in fields.items()}
    (result,) = publishers_from_settings(Settings(raw, environ={}))
    return result


GITHUB = {
    "repository": "Acme/Widget",
    "job_workflow_ref": "Acme/Widget/.github/workflows/release.yml@refs/heads/main",
    "ref": "refs/heads/main",
    "environment": "Release",
}
GITLAB = {
    "project_path": "acme/gadget",
    "ci_config_ref_uri": "gitlab.example/acme/gadget//.gitlab-ci.yml@refs/heads/main",
    "ref_path": "refs/heads/main",
}


def test_github_defaults_and_matching():
    p = publisher(repository="acme/widget", workflow="release.yml", projects="Acme.Widget other")
    assert p.provider == "github" and p.issuer == GITHUB_ISSUER
    assert p.projects == frozenset({"acme-widget", "other"})
    assert p.matches(GITHUB)  # repository names compare case-insensitively
    assert not p.matches({**GITHUB, "repository": "acme/widget2"})
    assert not p.matches(
        {**GITHUB, "job_workflow_ref": "Acme/Widget/.github/workflows/Release.yml@refs/heads/main"}
    )
    assert not p.matches(
        {**GITHUB, "job_workflow_ref": "evil/repo/.github/workflows/release.yml@refs/heads/main"}
    )
    assert not p.matches({key: value for key, value in GITHUB.items() if key != "job_workflow_ref"})


def test_github_environment_and_ref():
    p = publisher(
        repository="acme/widget", workflow="release.yml", projects="x", environment="release", ref="main"
    )
    assert p.matches(GITHUB)
    assert not p.matches({**GITHUB, "environment": "staging"})
    assert not p.matches({**GITHUB, "ref": "refs/heads/feature"})
    assert not p.matches({key: value for key, value in GITHUB.items() if key != "environment"})


def test_gitlab_matching():
    p = publisher(
        provider="gitlab", repository="acme/gadget", workflow=".gitlab-ci.yml", projects="x", ref="main"
    )
    assert p.issuer == GITLAB_ISSUER
    assert p.matches(GITLAB)
    assert not p.matches({**GITLAB, "project_path": "acme/other"})
    assert not p.matches(
        {**GITLAB, "ci_config_ref_uri": "gitlab.example/acme/gadget//ci/other.yml@refs/heads/main"}
    )
    assert not p.matches({**GITLAB, "ref_path": "refs/heads/dev"})
    assert not p.matches(GITHUB)


@pytest.mark.parametrize(
    "fields",
    [
        {"workflow": "release.yml", "projects": "x"},  # no repository
        {"repository": "a/b", "projects": "x"},  # no workflow
        {"repository": "a/b", "workflow": "release.yml"},  # no projects
        {
            "repository": "a/b",
            "workflow": "r.yml",
            "projects": "x",
            "issuer": "https://ci.example",
        },  # which provider?
        {
            "repository": "a/b",
            "workflow": "r.yml",
            "projects": "x",
            "issuer": "http://ci.example",
            "provider": "gitlab",
        },
    ],
)
def test_incomplete_blocks_stop_start_up(fields):
    with pytest.raises(ConfigError):
        publisher(**fields)
