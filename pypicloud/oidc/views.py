"""``POST /_/oidc/mint-token`` and ``GET /_/oidc/audience``, in the JSON shapes PyPI uses."""

from __future__ import annotations

import json

from pyramid.response import Response

from .minting import MintError

MAX_BODY = 64 * 1024


def _json(status: int, body: dict) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def mint_token(request):
    """Body ``{"token": "<OIDC token>"}`` -> ``{"success": true, "token": ..., "expires": ...}``."""
    try:
        if (request.content_length or 0) > MAX_BODY:
            raise MintError(413, "invalid-payload", f"the body is larger than {MAX_BODY} bytes")
        try:
            payload = json.loads(request.body_file.read(MAX_BODY + 1) or b"null")
        except ValueError:
            raise MintError(422, "invalid-payload", "the body is not JSON") from None
        oidc_token = payload.get("token") if isinstance(payload, dict) else None
        minted = request.registry.trusted_publishing.mint(oidc_token)
    except MintError as exc:
        return _json(
            exc.status,
            {
                "message": "Token request failed",
                "errors": [{"code": exc.code, "description": exc.description}],
            },
        )
    return _json(
        200,
        {
            "success": True,
            "token": minted.token,
            "expires": minted.expires,
            "projects": sorted(minted.projects),
        },
    )


def audience(request):
    """The audience a CI job must request its OIDC token for (what the GitHub publish action asks)."""
    request.response.headers["Cache-Control"] = "no-store"
    return {"audience": request.registry.trusted_publishing.audience}
