"""pypicloud 1.x's JSON admin and user API, on the same URLs, methods and statuses.

``/admin/user...``, ``/admin/group...``, ``/admin/package/<p>...``,
``/admin/pending_users``, ``/admin/register``, ``/admin/token/<u>``,
``/admin/acl.json.gz``, ``PUT /api/user/<u>``, ``POST /api/user/password``,
``/acct/login`` and ``/acct/logout``. Thin views: each reads its parameters and
calls one method of :class:`pypicloud.access_admin.AccessAdmin`, where the rules
are. HTTP Basic credentials, as every API of the server; 1.x answered an empty
body where these answer a small JSON object. Errors are JSON
``{"error", "message"}`` (views/errors.py), as in 1.x.

1.x took some state changes on any method (``/acct/logout``); a GET doing one
still works for scripts but is refused when a browser sends it for another site
(:func:`pypicloud.crosssite.refuse_foreign_state_change`).
"""

from __future__ import annotations

import gzip
import json
from urllib.parse import quote

from pyramid.httpexceptions import HTTPFound
from pyramid.response import Response
from pyramid.view import notfound_view_config, view_config

from .. import sessions
from ..access_admin import AccessAdmin
from ..crosssite import SAFE_METHODS, refuse_foreign_state_change
from ..errors import FileNotFound, InvalidUpload
from ..security import SESSION_USER
from ..signup_tokens import TokenSignup
from .errors import error_response


def _admin(request) -> AccessAdmin:
    return request.services.access_admin


def _param(request, name: str) -> str | bool | None:
    """A parameter as 1.x read it: form or query field, else a key of a JSON body."""
    try:
        value = request.params.get(name)
    except Exception:
        raise InvalidUpload("Malformed request body") from None
    if value is None and request.content_type == "application/json":
        try:
            body = request.json_body
        except ValueError:
            raise InvalidUpload("Request body is not valid JSON") from None
        value = body.get(name) if isinstance(body, dict) else None
        if isinstance(value, bool):
            return value  # 1.x's web UI sent {"admin": true}
    if value is not None and not isinstance(value, str):
        raise InvalidUpload(f"Parameter {name!r} must be text")
    return value


def _text(request, name: str) -> str | None:
    """A parameter that must be text (a name, password or token): a JSON boolean is a 400."""
    value = _param(request, name)
    if isinstance(value, bool):
        raise InvalidUpload(f"Parameter {name!r} must be text")
    return value


def _md(request, key: str) -> str:
    return request.matchdict[key]


# Users -------------------------------------------------------------------------
@view_config(route_name="legacy.pending_users", request_method="GET", renderer="json")
def pending_users(request):
    return _admin(request).pending_users(request.identity)


@view_config(route_name="legacy.users", request_method="GET", renderer="json")
def users(request):
    return _admin(request).users(request.identity)


@view_config(route_name="legacy.user", request_method="GET", renderer="json")
def user(request):
    return _admin(request).user(request.identity, _md(request, "username"))


@view_config(route_name="legacy.user", request_method="PUT", renderer="json")
def create_user(request):
    return _admin(request).create_user(request.identity, _md(request, "username"), _text(request, "password"))


@view_config(route_name="legacy.user", request_method="DELETE", renderer="json")
def delete_user(request):
    return _admin(request).delete_user(request.identity, _md(request, "username"))


@view_config(route_name="legacy.user_approve", request_method="POST", renderer="json")
def approve_user(request):
    return _admin(request).approve_user(request.identity, _md(request, "username"))


@view_config(route_name="legacy.user_admin", request_method="POST", renderer="json")
def set_admin(request):
    return _admin(request).set_admin(request.identity, _md(request, "username"), _param(request, "admin"))


@view_config(route_name="legacy.user_permissions", renderer="json")
def user_permissions(request):
    # 1.x registered this for every method; it only reads.
    return _admin(request).user_permissions(request.identity, _md(request, "username"))


@view_config(route_name="legacy.user_group", request_method=("PUT", "DELETE"), renderer="json")
def user_group(request):
    return _admin(request).set_membership(
        request.identity, _md(request, "username"), _md(request, "group"), request.method == "PUT"
    )


# Groups ------------------------------------------------------------------------
@view_config(route_name="legacy.groups", request_method="GET", renderer="json")
def groups(request):
    return _admin(request).groups(request.identity)


@view_config(route_name="legacy.group", request_method="GET", renderer="json")
def group(request):
    return _admin(request).group(request.identity, _md(request, "group"))


@view_config(route_name="legacy.group", request_method="PUT", renderer="json")
def create_group(request):
    return _admin(request).create_group(request.identity, _md(request, "group"))


@view_config(route_name="legacy.group", request_method="DELETE", renderer="json")
def delete_group(request):
    return _admin(request).delete_group(request.identity, _md(request, "group"))


# Package permissions -------------------------------------------------------------
@view_config(route_name="legacy.package", request_method="GET", renderer="json")
def package_permissions(request):
    return _admin(request).package_permissions(request.identity, _md(request, "package"))


@view_config(route_name="legacy.package_permission", request_method=("PUT", "DELETE"), renderer="json")
def edit_permission(request):
    return _admin(request).edit_permission(
        request.identity,
        _md(request, "package"),
        _md(request, "kind"),
        _md(request, "name"),
        _md(request, "word"),
        request.method == "PUT",
    )


# Registration, sign-up tokens, the ACL file -----------------------------------------
@view_config(route_name="legacy.register", request_method="POST", renderer="json")
def set_allow_register(request):
    return _admin(request).set_allow_register(request.identity, _param(request, "allow"))


def _signup(request) -> TokenSignup:
    return TokenSignup(_admin(request), request.services.signup_tokens)


@view_config(route_name="legacy.token", request_method="GET", renderer="json")
def signup_token(request):
    """1.x's sign-up token for a new user, and the page that spends it."""
    token = _signup(request).issue(request.identity, _md(request, "username"))
    # token_url is 1.x's (its web app read the token after '#'); signup_url is
    # the same page without the fragment, for mail clients that drop it.
    return {
        "token": token,
        "token_url": request.route_url("legacy.login", s="") + "#/?token=" + quote(token, safe=":"),
        "signup_url": request.route_url("legacy.signup", _query={"token": token}),
    }


@view_config(route_name="legacy.token_register", request_method="PUT", renderer="json")
def token_register(request):
    """1.x's ``PUT /acct/tokenRegister``: spend a token, get an approved account and a session."""
    username = _signup(request).redeem(_text(request, "token"), _text(request, "password"))
    request.session.invalidate()
    sessions.start(request, username)
    return {"next": request.route_url("ui.home")}


@view_config(route_name="legacy.acl", request_method="GET")
def acl(request):
    data = _admin(request).acl_dump(request.identity)
    body = gzip.compress(json.dumps(data, separators=(",", ":")).encode("utf-8"), mtime=0)
    return Response(
        body=body,
        content_type="application/octet-stream",
        headerlist=[
            ("Content-Type", "application/octet-stream"),
            ("Content-Disposition", 'attachment; filename="acl.json.gz"'),
            ("Cache-Control", "no-store"),
        ],
    )


# The caller's own account ----------------------------------------------------------
@view_config(route_name="legacy.api_user", request_method="PUT", renderer="json")
def register(request):
    return _admin(request).register(request.identity, _md(request, "username"), _text(request, "password"))


@view_config(route_name="legacy.api_user", request_method="POST", renderer="json")
def change_password(request):
    if _md(request, "username") != "password":
        raise FileNotFound("Not Found")
    _admin(request).change_password(
        request.identity, _text(request, "old_password"), _text(request, "new_password")
    )
    return {"changed": True}


@view_config(route_name="legacy.login", request_method="GET")
def login_page(request):
    # 1.x's login page is our web UI's login page.
    return HTTPFound(location=request.route_url("ui.login"))


@view_config(route_name="legacy.login", request_method="POST", renderer="json")
def login(request):
    """A web UI session for scripts that logged in like 1.x's web page did."""
    identity = _admin(request).login(_text(request, "username"), _text(request, "password"))
    request.session.invalidate()
    assert identity.username is not None  # an authenticated identity has a name
    sessions.start(request, identity.username)
    return {"next": request.route_url("ui.home")}


@view_config(route_name="legacy.logout")
def logout(request):
    # 1.x logged out on any method: a GET changes state, so browsers of other sites may not.
    if request.method in SAFE_METHODS:
        refuse_foreign_state_change(request)
    user = request.session.get(SESSION_USER)
    if user:  # as the web UI's logout: every session of this user ends
        sessions.end_all(request.registry, user)
    request.session.invalidate()
    return HTTPFound(location=request.route_url("ui.login"))


# Unknown paths under the JSON APIs --------------------------------------------------
@notfound_view_config(path_info=r"^/(api|admin)/")
def json_not_found(exc, request):
    """An unknown path under ``/api/`` or ``/admin/`` answers JSON, as 1.x did."""
    return error_response(request, 404, "Not Found")
