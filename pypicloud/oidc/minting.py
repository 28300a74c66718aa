"""Exchange a CI job's OIDC token for a short-lived upload token, and check those tokens.

:meth:`TrustedPublishing.mint` verifies the CI token (signature against the
issuer's JWKS, ``iss``, ``aud``, ``exp``/``nbf``/``iat`` with a small leeway,
then the claims against the trusted publishers of that issuer), spends its
``jti`` once and answers an upload token scoped to the projects the matching
publishers may publish. The ``jti`` is remembered through the metadata index's
shared counters (``incr_counter`` with a time to live: SQL, Redis and DynamoDB
share them between processes, and the first increment wins), so a token is
accepted once by the whole deployment until it expires.

The upload token is self-contained: ``ppc-oidc-<payload>.<HMAC-SHA256>``, its
payload holding the projects, the publisher and the expiry, signed with a key
derived from ``oidc.secret`` (or ``session.secret``). Nothing is stored for it,
so every process sharing that secret accepts it; it cannot be revoked, only
expire (``oidc.token_lifetime``, 15 minutes by default).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from ..audit_actions import OIDC_MINT
from ..errors import BackendUnavailable
from ..events import Event, EventBus
from ..models import Identity, TokenScope
from .jwks import IssuerUnavailable, JwksCache
from .publishers import TrustedPublisher, normalize_issuer

LOG = logging.getLogger(__name__)
TOKEN_PREFIX = "ppc-oidc-"
# Asymmetric algorithms only: "none" and HMAC (a public key used as a secret) are refused.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
MAX_TOKEN_LENGTH = 16 * 1024


class MintError(Exception):
    """Why a token request failed: a status, a short code (as PyPI's) and a description."""

    def __init__(self, status: int, code: str, description: str):
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


@dataclass(frozen=True)
class MintedToken:
    token: str
    expires: int
    projects: frozenset[str]
    publisher: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TrustedPublishing:
    """The trusted publishers, the key cache and the upload-token signer of one app."""

    def __init__(
        self,
        publishers: list[TrustedPublisher],
        index,
        *,
        audience: str,
        secret: bytes,
        jwks: JwksCache,
        lifetime: int = 900,
        leeway: int = 30,
        events: EventBus | None = None,
    ):
        self.publishers = publishers
        self.index = index
        self.audience = audience
        self._key = hmac.new(secret, b"pypicloud oidc upload token", hashlib.sha256).digest()
        self.jwks = jwks
        self.lifetime = lifetime
        self.leeway = leeway
        self.events = events if events is not None else EventBus()

    # -- minting ------------------------------------------------------------
    def mint(self, oidc_token: object) -> MintedToken:
        if not isinstance(oidc_token, str) or not oidc_token or len(oidc_token) > MAX_TOKEN_LENGTH:
            raise MintError(422, "invalid-payload", 'the body must be JSON {"token": "<the OIDC token>"}')
        try:
            header = jwt.get_unverified_header(oidc_token)
            unverified = jwt.decode(oidc_token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise MintError(422, "invalid-token", "the OIDC token is not a well-formed JWT") from None
        issuer = unverified.get("iss")
        candidates = [
            p for p in self.publishers if isinstance(issuer, str) and p.issuer == normalize_issuer(issuer)
        ]
        if not candidates:
            raise MintError(
                422, "invalid-publisher", "no trusted publisher is configured for this token's issuer"
            )
        claims = self._verify(oidc_token, header, candidates[0].issuer)
        matching = [p for p in candidates if p.matches(claims)]
        if not matching:
            LOG.info("OIDC token from %s matched no trusted publisher (sub=%r)", issuer, claims.get("sub"))
            raise MintError(422, "invalid-publisher", "no trusted publisher matches this token's claims")
        self._spend(claims)
        projects = frozenset().union(*(p.projects for p in matching))
        name = "+".join(p.name for p in matching)
        expires = int(time.time()) + self.lifetime
        payload = {"pub": name, "projects": sorted(projects), "exp": expires, "id": uuid.uuid4().hex[:16]}
        token = self._sign(payload)
        LOG.info("minted an upload token for %s (projects %s)", name, ", ".join(sorted(projects)))
        self._record(claims, payload)
        return MintedToken(token, expires, projects, name)

    def _record(self, claims: dict, payload: dict) -> None:
        """The audit log's record of a mint: who (publisher, issuer, subject), for what, until when."""
        projects = payload["projects"]
        self.events.publish(
            Event(
                OIDC_MINT,
                f"trusted-publisher:{payload['pub']}",
                project=projects[0] if len(projects) == 1 else None,
                detail={
                    "publisher": payload["pub"],
                    "projects": projects,
                    "token_id": f"oidc-{payload['id']}",
                    "expires": payload["exp"],
                    "issuer": claims.get("iss"),
                    "subject": claims.get("sub"),
                },
            )
        )

    def _verify(self, oidc_token: str, header: dict, issuer: str) -> dict:
        if header.get("alg") not in ALGORITHMS:
            raise MintError(
                422, "invalid-token", f"signature algorithm {header.get('alg')!r} is not accepted"
            )
        kid = header.get("kid")
        try:
            key = self.jwks.key(issuer, kid if isinstance(kid, str) else None)
        except IssuerUnavailable as exc:
            raise MintError(
                503, "issuer-unavailable", f"the issuer's signing keys cannot be fetched: {exc}"
            ) from None
        if key is None:
            raise MintError(
                422, "invalid-token", "the token is signed with a key the issuer does not publish"
            )
        try:
            return jwt.decode(
                oidc_token,
                key=key,
                algorithms=[header["alg"]],
                audience=self.audience,
                issuer=issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise MintError(422, "invalid-token", "the OIDC token has expired") from None
        except jwt.InvalidAudienceError:
            raise MintError(
                422, "invalid-token", f"the OIDC token's audience is not {self.audience!r}"
            ) from None
        except jwt.ImmatureSignatureError:
            raise MintError(422, "invalid-token", "the OIDC token is not valid yet") from None
        except jwt.InvalidSignatureError:
            raise MintError(422, "invalid-token", "the OIDC token's signature is wrong") from None
        except jwt.PyJWTError as exc:
            raise MintError(422, "invalid-token", f"the OIDC token is invalid: {exc}") from None

    def _spend(self, claims: dict) -> None:
        """Accept each token once: the first increment of its jti's counter wins."""
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise MintError(422, "invalid-token", "the OIDC token has no jti")
        digest = hashlib.sha256(f"{claims['iss']}\0{jti}".encode()).hexdigest()[:48]
        ttl = max(60, int(claims["exp"] - time.time()) + self.leeway + 60)
        try:
            uses = self.index.incr_counter(f"oidc-jti:{digest}", ttl=ttl)
        except BackendUnavailable as exc:
            raise MintError(503, "index-unavailable", str(exc)) from None
        if uses != 1:
            raise MintError(422, "invalid-token", "this OIDC token was already used")

    # -- upload tokens ------------------------------------------------------
    def _sign(self, payload: dict) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        mac = _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())
        return f"{TOKEN_PREFIX}{body}.{mac}"

    def identity(self, token: str) -> Identity | None:
        """The identity of a minted upload token, or None (forged, garbled or expired)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
            return None
        body, _, mac = token[len(TOKEN_PREFIX) :].rpartition(".")
        expected = _b64(hmac.new(self._key, body.encode("ascii", "replace"), hashlib.sha256).digest())
        if not body or not secrets.compare_digest(mac, expected):
            return None
        try:
            payload = json.loads(_unb64(body))
            expires, projects, name = int(payload["exp"]), payload["projects"], str(payload["pub"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires <= time.time() or not isinstance(projects, list):
            return None
        scope = TokenScope(
            token_id=f"oidc-{payload.get('id', '')}",
            projects=frozenset(str(p) for p in projects),
            upload=True,
            # Trust is granted by the admins' ini: the publisher may write its
            # projects whatever their grants say (still never delete or yank).
            owner_admin=True,
        )
        return Identity(f"trusted-publisher:{name}", token=scope)
