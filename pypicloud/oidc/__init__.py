"""Trusted publishing (issue 18, part 5; docs/trusted-publishing.md).

A CI job exchanges its OIDC token at ``POST /_/oidc/mint-token`` for a
short-lived upload token (:mod:`.minting`), used as the password of
``__token__`` by twine and uv. Trust is configured by the admins in the ini
(:mod:`.publishers`); without any ``oidc.publisher.*`` block the endpoints do
not exist (404) and nothing changes.
"""

from __future__ import annotations

import logging
import secrets

from ..access.base import TOKEN_USERNAME
from ..errors import ConfigError
from .jwks import JwksCache
from .minting import TOKEN_PREFIX, TrustedPublishing
from .publishers import publishers_from_settings

LOG = logging.getLogger(__name__)
DEFAULT_AUDIENCE = "pypicloud"


def trusted_publishing_from_settings(settings, index, events=None) -> TrustedPublishing | None:
    publishers = publishers_from_settings(settings)
    if not publishers:
        return None
    secret = settings.get_str("oidc.secret") or settings.get_str("session.secret")
    if secret is None:
        LOG.warning(
            "neither oidc.secret nor session.secret is set: minted upload tokens are only "
            "accepted by the process that minted them and end when it restarts"
        )
        secret = secrets.token_hex(32)
    elif len(secret) < 16:
        raise ConfigError("oidc.secret", "(hidden)", "at least 16 characters (32 random bytes recommended)")
    lifetime = settings.get_int("oidc.token_lifetime", 900, minimum=60)
    if lifetime > 3600:
        raise ConfigError("oidc.token_lifetime", str(lifetime), "at most 3600 seconds")
    jwks = JwksCache(
        ttl=settings.get_int("oidc.jwks_ttl", 3600, minimum=0),
        min_refresh=settings.get_int("oidc.jwks_min_refresh", 60, minimum=0),
        timeout=settings.get_float("oidc.timeout", 5.0),
    )
    return TrustedPublishing(
        publishers,
        index,
        audience=settings.get_str("oidc.audience", DEFAULT_AUDIENCE),
        secret=secret.encode("utf-8"),
        jwks=jwks,
        lifetime=lifetime,
        leeway=settings.get_int("oidc.leeway", 30, minimum=0),
        events=events,
    )


def accept_minted_tokens(access, publishing: TrustedPublishing) -> None:
    """Let ``__token__`` + a minted token log in, whatever the access backend.

    Wrapped on the instance, once at start-up: every other login goes to the
    backend unchanged.
    """
    authenticate = access.authenticate

    def authenticate_with_minted(username: str, password: str):
        if username == TOKEN_USERNAME and isinstance(password, str) and password.startswith(TOKEN_PREFIX):
            return publishing.identity(password)
        return authenticate(username, password)

    access.authenticate = authenticate_with_minted


def includeme(config) -> None:
    registry = config.registry
    service = registry.services.service
    publishing = trusted_publishing_from_settings(registry.services.settings, service.index, service.events)
    registry.trusted_publishing = publishing
    if publishing is None:
        return
    accept_minted_tokens(service.access, publishing)
    from .views import audience, mint_token

    config.add_route("oidc.mint_token", "/_/oidc/mint-token")
    config.add_route("oidc.audience", "/_/oidc/audience")
    config.add_view(mint_token, route_name="oidc.mint_token", request_method="POST")
    config.add_view(audience, route_name="oidc.audience", request_method=("GET", "HEAD"), renderer="json")
