"""Trusted publishers: which CI identities may publish which projects (from the ini).

One ``oidc.publisher.<name>.*`` block per trusted CI identity::

    oidc.publisher.widget-release.provider = github
    oidc.publisher.widget-release.repository = acme/widget
    oidc.publisher.widget-release.workflow = release.yml
    oidc.publisher.widget-release.environment = release      (optional)
    oidc.publisher.widget-release.ref = main                  (optional)
    oidc.publisher.widget-release.projects = acme-widget acme-widget-extras

The claims checked follow each CI system's documented token (GitHub Actions:
``repository`` and ``job_workflow_ref``; GitLab CI: ``project_path`` and
``ci_config_ref_uri``), the rules PyPI applies: names of repositories, owners
and environments compare case-insensitively, the workflow file exactly.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name

from ..errors import ConfigError

PREFIX = "oidc.publisher."
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"
PROVIDERS = ("github", "gitlab")
_KEYS = {"provider", "issuer", "repository", "workflow", "environment", "ref", "projects"}


def normalize_issuer(url: str) -> str:
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_issuer(key: str, url: str) -> str:
    """An https URL (plain http only on loopback, for a local test issuer)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return normalize_issuer(url)
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return normalize_issuer(url)
    raise ConfigError(key, url, "an https:// URL of the OIDC issuer (http:// only on a loopback address)")


@dataclass(frozen=True)
class TrustedPublisher:
    """One CI identity and the projects it may publish."""

    name: str
    provider: str
    issuer: str
    repository: str
    workflow: str
    projects: frozenset[str]
    environment: str | None = None
    ref: str | None = None

    def matches(self, claims: dict) -> bool:
        """True when verified ``claims`` come from this identity."""
        if self.provider == "github":
            return self._matches_github(claims)
        return self._matches_gitlab(claims)

    def _matches_github(self, claims: dict) -> bool:
        repository = _text(claims, "repository")
        if repository is None or repository.lower() != self.repository.lower():
            return False
        # "owner/repo/.github/workflows/release.yml@refs/heads/main"
        workflow_ref = _text(claims, "job_workflow_ref") or ""
        path = workflow_ref.partition("@")[0]
        if not self._same_workflow_path(path, f"{self.repository}/.github/workflows/"):
            return False
        return self._environment_ok(claims) and self._ref_ok(_text(claims, "ref"))

    def _same_workflow_path(self, path: str, folder: str) -> bool:
        # The repository part compares case-insensitively, the file name exactly.
        return path[: len(folder)].lower() == folder.lower() and path[len(folder) :] == self.workflow

    def _matches_gitlab(self, claims: dict) -> bool:
        project_path = _text(claims, "project_path")
        if project_path is None or project_path.lower() != self.repository.lower():
            return False
        # "gitlab.example/group/project//.gitlab-ci.yml@refs/heads/main"
        config_ref = _text(claims, "ci_config_ref_uri") or ""
        location, _, _ref = config_ref.rpartition("@")
        project_part, sep, file_path = location.partition("//")
        if not sep or file_path != self.workflow:
            return False
        if not project_part.lower().endswith("/" + self.repository.lower()):
            return False
        return self._environment_ok(claims) and self._ref_ok(_text(claims, "ref_path"))

    def _environment_ok(self, claims: dict) -> bool:
        if self.environment is None:
            return True
        environment = _text(claims, "environment")
        return environment is not None and environment.lower() == self.environment.lower()

    def _ref_ok(self, ref: str | None) -> bool:
        if self.ref is None:
            return True
        wanted = self.ref if self.ref.startswith("refs/") else f"refs/heads/{self.ref}"
        return ref == wanted


def _text(claims: dict, name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) else None


def publishers_from_settings(settings) -> list[TrustedPublisher]:
    """Every ``oidc.publisher.<name>.*`` block; a missing or unknown key stops start-up."""
    blocks: dict[str, dict[str, str]] = {}
    for key, value in settings.with_prefix(PREFIX).items():
        name, sep, field = key.rpartition(".")
        if not sep or not name or field not in _KEYS:
            raise ConfigError(PREFIX + key, value, "oidc.publisher.<name>.<" + "|".join(sorted(_KEYS)) + ">")
        blocks.setdefault(name, {})[field] = value.strip()
    return [_publisher(name, fields) for name, fields in sorted(blocks.items())]


def _publisher(name: str, fields: dict[str, str]) -> TrustedPublisher:
    key = f"{PREFIX}{name}."
    provider = (fields.get("provider") or "").lower()
    issuer = fields.get("issuer") or None
    if not provider:
        # Only the two public issuers say which claim set they use.
        known = {GITHUB_ISSUER: "github", GITLAB_ISSUER: "gitlab"}
        provider = "github" if issuer is None else known.get(normalize_issuer(issuer), "")
        if not provider:
            raise ConfigError(key + "provider", None, "github or gitlab (required for this issuer)")
    if provider not in PROVIDERS:
        raise ConfigError(key + "provider", fields.get("provider"), "github or gitlab")
    issuer = issuer or {"github": GITHUB_ISSUER, "gitlab": GITLAB_ISSUER}[provider]
    for required in ("repository", "workflow", "projects"):
        if not fields.get(required):
            raise ConfigError(key + required, None, "this setting is required for a trusted publisher")
    workflow = fields["workflow"]
    if provider == "github" and "/" in workflow:
        raise ConfigError(
            key + "workflow", workflow, "the file name under .github/workflows/, e.g. release.yml"
        )
    projects = frozenset(canonicalize_name(p) for p in fields["projects"].replace(",", " ").split())
    return TrustedPublisher(
        name=name,
        provider=provider,
        issuer=check_issuer(key + "issuer", issuer),
        repository=fields["repository"].strip("/"),
        workflow=workflow,
        projects=projects,
        environment=fields.get("environment") or None,
        ref=fields.get("ref") or None,
    )
