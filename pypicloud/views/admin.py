"""Admin-only maintenance endpoints (HTTP credentials of an admin user)."""

from pyramid.view import view_config


@view_config(route_name="admin.rebuild", request_method="POST", renderer="json")
def rebuild(request):
    """Rebuild the metadata index from storage (``db.graceful_reload`` decides how)."""
    service = request.registry.service
    service.require_admin(request.identity, "rebuild the index")
    count = service.rebuild()
    return {"files": count, "generation": service.index.generation()}
