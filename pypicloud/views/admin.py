"""Admin-only maintenance endpoints (HTTP credentials of an admin user)."""

from pyramid.view import view_config

from ..crosssite import SAFE_METHODS, refuse_foreign_state_change


@view_config(route_name="admin.rebuild", renderer="json")
@view_config(route_name="legacy.rebuild", renderer="json")
def rebuild(request):
    """Rebuild the metadata index from storage (``db.graceful_reload`` decides how).

    Any method, as in pypicloud 1.x (``curl -u admin:... /admin/rebuild``); a GET
    sent by a browser for another site is refused like any cross-site write.
    """
    if request.method in SAFE_METHODS:
        refuse_foreign_state_change(request)
    count, generation = request.services.service.admin_rebuild(request.identity)
    return {"files": count, "generation": generation}
