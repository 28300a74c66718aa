"""``/health``: the state of every backend, 503 when one is down."""

from pyramid.view import view_config


@view_config(route_name="health", request_method=("GET", "HEAD"), renderer="json")
def health(request):
    report = request.services.service.health()
    ok = all(part["ok"] for part in report.values())
    request.response.status = 200 if ok else 503
    request.response.headers["Cache-Control"] = "no-store"
    status = {"status": "ok" if ok else "unavailable"}
    identity = request.identity
    if not (identity.authenticated and identity.is_admin and identity.token is None):
        # Backend names, paths and error texts are for admins only.
        return status
    return {**status, **report}
