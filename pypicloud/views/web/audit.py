"""The audit log in the web UI: ``/admin/audit/`` (a page with filters) and
``/admin/audit.jsonl`` (the same filters, every matching event as JSON lines).

Admins only. The rules (who may read, what a filter means, a bad value's 400)
are in :class:`pypicloud.audit.AuditService`, reached as ``request.services.audit``.
"""

from __future__ import annotations

from pyramid.response import Response
from pyramid.view import view_config

from ...audit_actions import ACTIONS, FAMILIES
from ...timefmt import iso_utc
from .common import page as render
from .common import reader, require_admin


@view_config(route_name="ui.audit", request_method="GET")
def audit_page(request):
    identity = require_admin(request)
    result = request.services.audit.page(identity, request.GET)
    return render(request, "audit.html", audit=result, actions=ACTIONS, families=FAMILIES, iso_utc=iso_utc)


@view_config(route_name="ui.audit_export", request_method="GET")
def audit_export(request):
    """JSON lines for scripts (HTTP Basic of an admin) and the page's download link (the session)."""
    lines = request.services.audit.export(reader(request), request.GET)
    response = Response(
        app_iter=(line.encode("utf-8") for line in lines),
        content_type="application/x-ndjson",
        charset="utf-8",
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Disposition"] = 'inline; filename="audit.jsonl"'
    return response
