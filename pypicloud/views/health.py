"""``/health``: the state of every backend, 503 when one is down."""

from pyramid.view import view_config


@view_config(route_name="health", request_method=("GET", "HEAD"), renderer="json")
def health(request):
    ok, body = request.services.service.health_report(request.identity)
    request.response.status = 200 if ok else 503
    request.response.headers["Cache-Control"] = "no-store"
    return body
