"""The web UI: log in, projects and files, the browser upload form; for admins
also the overview (health, rebuild) and users/groups/grants/tokens.

Browser sessions are signed cookies (``pypicloud/sessions.py``); every
state-changing form carries the session's CSRF token and is refused with 403
without it (on top of the cross-site guard in ``crosssite.py``). Any user with a
password may log in; what they may see and do is decided by the same rules as
on the API, in the service and the access backend. These views only collect
form fields and show results.
"""

from __future__ import annotations

from urllib.parse import urlencode

from packaging.utils import canonicalize_name
from pyramid.csrf import check_csrf_token, get_csrf_token, new_csrf_token
from pyramid.httpexceptions import HTTPFound, HTTPSeeOther
from pyramid.renderers import render_to_response
from pyramid.view import view_config

from .. import sessions, throttle
from ..access.editable import EditableAccess, InvalidAccessData, token_expiry
from ..access.passwords import hash_password
from ..access_admin import AccessAdmin
from ..errors import Forbidden, InvalidRequest, InvalidUpload, PypicloudError, Unauthorized
from ..releases import human_size
from .upload import read_form

# Passwords users choose themselves on their account page (admins setting one for
# somebody else, and the CLI, are trusted to know what they do).
MIN_OWN_PASSWORD = 8


# Helpers ----------------------------------------------------------------
def _page(request, template: str, status: int = 200, **values):
    context = {
        "identity": request.identity,
        "csrf_token": get_csrf_token(request),
        "flashes": request.session.pop_flash(),
        "errors": request.session.pop_flash("error"),
    }
    context.update(values)
    response = render_to_response(f"admin/{template}", context, request=request)
    response.status_int = status
    # Pages with forms and user data: never cached, never framed by another site.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    )
    return response


def _require_user(request):
    """A logged-in user's identity; anonymous callers go to the login page.

    API tokens are for tools, not for the browser pages: 403.
    """
    identity = _reader(request)
    if not identity.authenticated:
        # After logging in, come back to a page: a form posted with an expired
        # session returns to the page the form was on, never to a GET of its POST URL.
        back = request.path_qs if request.method in ("GET", "HEAD") else _referring_page(request)
        raise _login_redirect(request, back)
    return identity


def _reader(request):
    """Who browses: a logged-in user, or anonymous (what they may read decides what they see)."""
    identity = request.identity
    if identity.token is not None:
        raise Forbidden("API tokens cannot use the web UI; log in with a password")
    return identity


def _login_redirect(request, back: str | None = None) -> HTTPFound:
    """To the login page, coming back to ``back`` (default: this page) afterwards."""
    query = urlencode({"next": request.path_qs if back is None else back})
    return HTTPFound(location=f"{request.route_path('ui.login')}?{query}")


def _referring_page(request) -> str:
    referer = request.referer or ""
    prefix = request.host_url + "/admin"
    if referer.startswith(prefix) and "/admin/do/" not in referer:
        return referer[len(request.host_url) :]
    return request.route_path("ui.home")


def _require_admin(request):
    """The admin's identity; anonymous callers go to the login page, others get 403."""
    identity = _require_user(request)
    if not identity.is_admin:
        raise Forbidden(f"User {identity.username!r} may not use the admin pages")
    return identity


def _check_csrf(request) -> None:
    # Pyramid compares in constant time with the token kept in the session.
    if not check_csrf_token(request, token="csrf_token", header=None, raises=False):
        raise Forbidden("The form's CSRF token is missing or out of date; reload the page and try again")


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.params.get("next") or ""
    # Only paths of the UI itself: never an absolute or scheme-relative URL,
    # nothing a Location header cannot carry (CR/LF and other controls).
    if target.startswith("/admin") and not target.startswith("//") and target.isprintable():
        return target
    return request.route_path("ui.home")


# Log in and out -----------------------------------------------------------
@view_config(route_name="ui.login", request_method="GET")
def login_form(request):
    if request.identity.authenticated and request.identity.token is None:
        return HTTPFound(location=_safe_next(request))
    return _page(
        request,
        "login.html",
        next=request.params.get("next", ""),
        allow_register=AccessAdmin(request.registry.service.access).registration_open(),
    )


# Self-registration (pypi.allow_register; a sign-up waits for an admin) ----------
@view_config(route_name="ui.register", request_method="GET")
def register_form(request):
    admin = AccessAdmin(request.registry.service.access)
    if not admin.registration_open():
        raise Forbidden("Self-registration is off: ask an admin for an account")
    return _page(request, "register.html", min_password=MIN_OWN_PASSWORD)


@view_config(route_name="ui.register", request_method="POST")
def register(request):
    admin = AccessAdmin(request.registry.service.access)
    if not check_csrf_token(request, token="csrf_token", header=None, raises=False):
        new_csrf_token(request)
        return _page(
            request,
            "register.html",
            status=403,
            min_password=MIN_OWN_PASSWORD,
            errors=["The form had expired (its CSRF token is missing or out of date); please try again"],
        )
    username = request.POST.get("username", "").strip()
    password = request.POST.get("password", "")
    try:
        if password != request.POST.get("repeat", ""):
            raise InvalidAccessData("The two passwords are not the same")
        admin.register(request.identity, username, password)
    except PypicloudError as exc:
        if exc.status >= 500:
            raise
        return _page(
            request,
            "register.html",
            status=exc.status,
            username=username,
            min_password=MIN_OWN_PASSWORD,
            errors=[str(exc)],
        )
    request.session.flash(
        f"Signed up as {username}. An admin must approve the account before you can log in."
    )
    return HTTPSeeOther(location=request.route_path("ui.login"))


@view_config(route_name="ui.login", request_method="POST")
def login(request):
    if not check_csrf_token(request, token="csrf_token", header=None, raises=False):
        # A login page left open past the session's life: show the form again.
        new_csrf_token(request)
        return _page(
            request,
            "login.html",
            status=403,
            next=request.POST.get("next", ""),
            errors=[
                "The login form had expired (its CSRF token is missing or out of date); please log in again"
            ],
        )
    username = request.POST.get("username", "")
    password = request.POST.get("password", "")
    identity = (
        throttle.authenticate(request, username, password) if username and username != "__token__" else None
    )
    if identity is None:
        return _page(
            request,
            "login.html",
            status=401,
            next=request.POST.get("next", ""),
            errors=["Wrong user name or password"],
        )
    # A fresh session (and CSRF token) at login: nothing chosen before it survives.
    request.session.invalidate()
    sessions.start(request, identity.username)
    new_csrf_token(request)
    return HTTPSeeOther(location=_safe_next(request))


@view_config(route_name="ui.logout", request_method="POST")
def logout(request):
    _check_csrf(request)
    if request.identity.authenticated and request.identity.token is None:
        # Every session of this user ends, copies of this cookie included.
        sessions.end_all(request.registry, request.identity.username)
    request.session.invalidate()
    return HTTPSeeOther(location=request.route_path("ui.login"))


# Pages ------------------------------------------------------------------
@view_config(route_name="ui.home_noslash")
def home_noslash(request):
    return HTTPFound(location=request.route_path("ui.home"))


@view_config(route_name="ui.home", request_method="GET")
def home(request):
    identity = _reader(request)
    if not identity.is_admin:
        return HTTPFound(location=request.route_path("ui.projects"))
    service = request.registry.service
    return _page(
        request,
        "home.html",
        project_count=len(service.projects(identity)),
        file_count=service.index.count(),
        health=service.health(),
    )


def _page_number(request) -> int:
    try:
        return int(request.params.get("page", "1"))
    except ValueError:
        return 1


@view_config(route_name="ui.projects", request_method="GET")
def projects(request):
    identity = _reader(request)
    listing = request.registry.service.browse_projects(
        identity,
        query=request.params.get("q", "").strip()[:200],
        sort=request.params.get("sort", "name"),
        page=_page_number(request),
    )
    if listing.total == 0 and not identity.authenticated and not listing.query:
        return _login_redirect(request)  # a private index: nothing to see without logging in
    return _page(request, "projects.html", listing=listing)


@view_config(route_name="ui.project", request_method="GET")
def project(request):
    identity = _reader(request)
    name = canonicalize_name(request.matchdict["project"])
    try:
        page = request.registry.service.project_page(identity, name)
    except Unauthorized:
        return _login_redirect(request)
    return _page(
        request, "project.html", page=page, human_size=human_size, index_url=request.route_url("simple.index")
    )


@view_config(route_name="ui.upload", request_method="GET")
def upload_page(request):
    _require_user(request)
    return _page(request, "upload.html", max_upload_size=request.registry.service.max_upload_size)


def _account_page(request, status: int = 200, **values):
    identity = request.identity
    access = request.registry.service.access
    editable = isinstance(access, EditableAccess)
    return _page(
        request,
        "account.html",
        status=status,
        editable=editable,
        tokens=access.tokens(identity.username) if editable else [],
        min_password=MIN_OWN_PASSWORD,
        **values,
    )


@view_config(route_name="ui.account", request_method="GET")
def account_page(request):
    _require_user(request)
    return _account_page(request)


def _access_page(request, status: int = 200, **values):
    access = request.registry.service.access
    data = access.export_data()
    groups_of: dict[str, list[str]] = {}
    for group, info in data.groups.items():
        for member in info["members"]:
            groups_of.setdefault(member, []).append(group)
    editable = isinstance(access, EditableAccess)
    return _page(
        request,
        "access.html",
        status=status,
        data=data,
        groups_of=groups_of,
        ini_admins=getattr(access, "extra_admins", frozenset()),
        editable=editable,
        backend=type(access).__name__,
        tokens=access.tokens() if editable else [],
        default_read=sorted(access.default_read),
        default_write=sorted(access.default_write),
        pending=AccessAdmin(access).pending_users(request.identity),
        registration=getattr(access, "supports_registration", False),
        allow_register=AccessAdmin(access).registration_open(),
        **values,
    )


@view_config(route_name="ui.access", request_method="GET")
def access_page(request):
    _require_admin(request)
    return _access_page(request)


# Actions (POST forms) -----------------------------------------------------
def _editable(request) -> EditableAccess:
    access = request.registry.service.access
    if not isinstance(access, EditableAccess):
        raise Forbidden("The access backend is read-only: edit the ini file instead")
    return access


def _field(request, name: str) -> str:
    value = request.POST.get(name, "").strip()
    if not value:
        raise InvalidAccessData(f"The field {name!r} is required")
    return value


def _password_hash(request) -> str:
    password = request.POST.get("password", "")
    if not password:
        raise InvalidAccessData("The password is empty")
    return hash_password(password)


def _upload(request, identity):
    """Each chosen file is stored on its own: one refusal does not stop the others."""
    service = request.registry.service
    chosen = [
        value
        for value in request.POST.getall("content")
        if not isinstance(value, str) and getattr(value, "file", None) is not None and value.filename
    ]
    if not chosen:
        raise InvalidUpload("Choose at least one file to upload")
    done: list[str] = []
    refused: list[str] = []
    for field in chosen:
        try:
            result = service.upload_file(identity, field.filename, field.file)
        except PypicloudError as exc:
            if exc.status >= 500:
                raise
            refused.append(_clip(f"{field.filename}: {exc}"))
            continue
        record = result.record
        done.append(
            f"Uploaded {record.filename} to {record.name}"
            if result.created
            else f"{record.filename} was already uploaded with the same bytes"
        )
    # Flash messages travel in the signed session cookie (about 4 kB at most):
    # many files are reported as counts and the first few names, never one line each.
    for message in _bounded(done, "stored"):
        request.session.flash(message)
    for message in _bounded(refused, "refused"):
        request.session.flash(message, "error")
    return None, "ui.upload", {}


MAX_FLASHES = 8
MAX_FLASH_CHARS = 200


def _clip(text: str) -> str:
    return text if len(text) <= MAX_FLASH_CHARS else text[: MAX_FLASH_CHARS - 1] + "…"


def _bounded(messages: list[str], verb: str) -> list[str]:
    """At most MAX_FLASHES messages: the first ones, then one line counting the rest."""
    if len(messages) <= MAX_FLASHES:
        return messages
    shown = messages[: MAX_FLASHES - 1]
    return [*shown, f"… and {len(messages) - len(shown)} more files {verb}"]


def _change_own_password(request, identity):
    access = _editable(request)
    if throttle.authenticate(request, identity.username, request.POST.get("current", "")) is None:
        raise InvalidAccessData("Your current password is not right; nothing was changed")
    password = request.POST.get("password", "")
    if len(password) < MIN_OWN_PASSWORD:
        raise InvalidAccessData(f"The new password needs at least {MIN_OWN_PASSWORD} characters")
    if password != request.POST.get("repeat", ""):
        raise InvalidAccessData("The two new passwords are not the same")
    access.set_password_hash(identity.username, hash_password(password))
    # Every other session ends; this one goes on with a new stamp.
    sessions.end_all(request.registry, identity.username)
    sessions.start(request, identity.username)
    return "Your password was changed", "ui.account", {}


def _revoke_own_token(request, identity):
    access = _editable(request)
    token_id = _field(request, "token_id")
    # Only one's own tokens: an id of somebody else's is "not yours", whatever it is.
    if token_id not in {t.token_id for t in access.tokens(identity.username)}:
        raise Forbidden(f"You have no token {token_id!r}")
    access.delete_token(token_id)
    return f"Token {token_id} revoked", "ui.account", {}


def _rebuild(request, identity):
    count = request.registry.service.rebuild()
    return f"Index rebuilt from storage: {count} files", "ui.home", {}


def _file_action(action: str):
    def run(request, identity):
        service = request.registry.service
        project_name = canonicalize_name(_field(request, "project"))
        filename = _field(request, "filename")
        if action == "delete-file":
            # The form's checkbox names the file: a delete is never one stray click.
            if request.POST.get("confirm") != "1":
                raise InvalidRequest(f"Tick the box to confirm deleting {filename}; nothing was deleted")
            service.delete_file(identity, project_name, filename)
            message = f"Deleted {filename}"
        else:
            reason = request.POST.get("reason", "").strip() or None
            service.set_yanked(identity, project_name, filename, action == "yank", reason)
            message = f"{'Yanked' if action == 'yank' else 'Un-yanked'} {filename}"
        return message, *_after_change(request, identity, project_name)

    return run


def _after_change(request, identity, project_name: str) -> tuple[str, dict]:
    """The project's page, or the project list once its last file is gone."""
    if request.registry.service.has_project(project_name):
        return "ui.project", {"project": project_name}
    return "ui.projects", {}


def _release_action(action: str):
    def run(request, identity):
        service = request.registry.service
        project_name = canonicalize_name(_field(request, "project"))
        version = _field(request, "version")
        if action == "delete-release":
            if request.POST.get("confirm") != "1":
                raise InvalidRequest(
                    f"Tick the box to confirm deleting release {version}; nothing was deleted"
                )
            done = service.delete_release(identity, project_name, version)
            message = f"Deleted release {version} ({len(done)} files)"
        else:
            reason = request.POST.get("reason", "").strip() or None
            done = service.set_release_yanked(
                identity, project_name, version, action == "yank-release", reason
            )
            verb = "Yanked" if action == "yank-release" else "Un-yanked"
            message = f"{verb} release {version} ({len(done)} files)"
        return message, *_after_change(request, identity, project_name)

    return run


def _delete_project(request, identity):
    service = request.registry.service
    project_name = canonicalize_name(_field(request, "project"))
    typed = request.POST.get("confirm_name", "").strip()
    # The name typed in full: deleting every release is never one stray click.
    if canonicalize_name(typed or "-") != project_name:
        raise InvalidRequest(f"Type the project's name ({project_name}) to delete it; nothing was deleted")
    done = service.delete_project(identity, project_name)
    return f"Deleted project {project_name} ({len(done)} files)", "ui.projects", {}


def _access_action(run_change):
    def run(request, identity):
        message = run_change(request, _editable(request))
        return message, "ui.access", {}

    return run


def _add_user(request, access):
    name = _field(request, "username")
    access.create_user(name, _password_hash(request), admin=request.POST.get("admin") == "1")
    return f"User {name} added"


def _set_password(request, access):
    name = _field(request, "username")
    access.set_password_hash(name, _password_hash(request))
    sessions.end_all(request.registry, name)
    return f"Password of {name} changed"


def _set_admin(request, access):
    name, admin = _field(request, "username"), request.POST.get("admin") == "1"
    AccessAdmin(access).set_admin(request.identity, name, admin)
    return f"{name} {'is now' if admin else 'is no longer'} an admin"


def _delete_user(request, access):
    name = _field(request, "username")
    AccessAdmin(access).delete_user(request.identity, name)
    sessions.end_all(request.registry, name)
    return f"User {name} deleted"


def _add_group(request, access):
    group = _field(request, "group")
    access.create_group(group, admin=request.POST.get("admin") == "1")
    return f"Group {group} added"


def _delete_group(request, access):
    group = _field(request, "group")
    access.delete_group(group)
    return f"Group {group} deleted"


def _membership(member: bool):
    def change(request, access):
        name, group = _field(request, "username"), _field(request, "group")
        access.set_membership(name, group, member)
        return f"{name} {'added to' if member else 'removed from'} {group}"

    return change


def _grant(request, access):
    project_name, kind, name = (_field(request, k) for k in ("project", "kind", "name"))
    permission = _field(request, "permission")
    access.set_grant(project_name, kind, name, permission)
    return f"Granted {permission} on {canonicalize_name(project_name)} to {kind} {name}"


def _revoke(request, access):
    project_name, kind, name = (_field(request, k) for k in ("project", "kind", "name"))
    access.set_grant(project_name, kind, name, None)
    return f"Revoked {kind} {name} on {project_name}"


def _approve_user(request, access):
    name = _field(request, "username")
    AccessAdmin(access).approve_user(request.identity, name)
    return f"Sign-up of {name} approved: {name} can log in now"


def _reject_user(request, access):
    name = _field(request, "username")
    AccessAdmin(access).reject_user(request.identity, name)
    return f"Sign-up of {name} rejected"


def _allow_register(request, access):
    allow = request.POST.get("allow") == "1"
    AccessAdmin(access).set_allow_register(request.identity, allow)
    return f"Self-registration is now {'on' if allow else 'off'}"


def _delete_token(request, access):
    token_id = _field(request, "token_id")
    access.delete_token(token_id)
    return f"Token {token_id} revoked"


_ACTIONS = {
    "upload": _upload,
    "change-password": _change_own_password,
    "revoke-own-token": _revoke_own_token,
    "rebuild": _rebuild,
    "delete-file": _file_action("delete-file"),
    "yank": _file_action("yank"),
    "unyank": _file_action("unyank"),
    "yank-release": _release_action("yank-release"),
    "unyank-release": _release_action("unyank-release"),
    "delete-release": _release_action("delete-release"),
    "delete-project": _delete_project,
    "add-user": _access_action(_add_user),
    "set-password": _access_action(_set_password),
    "set-admin": _access_action(_set_admin),
    "delete-user": _access_action(_delete_user),
    "add-group": _access_action(_add_group),
    "delete-group": _access_action(_delete_group),
    "add-member": _access_action(_membership(True)),
    "remove-member": _access_action(_membership(False)),
    "grant": _access_action(_grant),
    "revoke": _access_action(_revoke),
    "delete-token": _access_action(_delete_token),
    "approve-user": _access_action(_approve_user),
    "reject-user": _access_action(_reject_user),
    "allow-register": _access_action(_allow_register),
}


# What any logged-in user may ask for; the service checks their permission on the
# project. Everything else (rebuild, users, groups, grants, tokens) is for admins.
_USER_ACTIONS = frozenset(
    {
        "upload",
        "yank",
        "unyank",
        "delete-file",
        "change-password",
        "add-own-token",
        "revoke-own-token",
        "yank-release",
        "unyank-release",
        "delete-release",
        "delete-project",
    }
)
_ACCOUNT_ACTIONS = frozenset({"change-password", "add-own-token", "revoke-own-token"})


def _back(request, action_name: str) -> str:
    """Where a refused form returns: the page it came from, else the page it belongs to."""
    if request.referer and request.referer.startswith(request.host_url + "/admin"):
        return request.referer
    if action_name == "upload":
        return request.route_url("ui.upload")
    if action_name in _ACCOUNT_ACTIONS:
        return request.route_url("ui.account")
    project_name = request.POST.get("project", "").strip()
    if action_name in _USER_ACTIONS and project_name:
        return request.route_url("ui.project", project=canonicalize_name(project_name))
    return request.route_url("ui.home")


@view_config(route_name="ui.action", request_method="POST")
def action(request):
    name = request.matchdict["action"]
    identity = _require_user(request) if name in _USER_ACTIONS else _require_admin(request)
    if name == "upload":
        read_form(request)  # 413 before a body over the size limit is read
    _check_csrf(request)
    if name == "add-token":
        return _add_token(request, request.POST.get("username", "").strip(), _access_page, identity)
    if name == "add-own-token":
        return _add_token(request, identity.username, _account_page, identity)
    handler = _ACTIONS.get(name)
    if handler is None:
        raise Forbidden(f"Unknown action {name!r}")
    try:
        message, route, params = handler(request, identity)
    except PypicloudError as exc:
        if exc.status >= 500:
            raise
        request.session.flash(str(exc), "error")
        return HTTPSeeOther(location=_back(request, name))
    if message:
        request.session.flash(message)
    return HTTPSeeOther(location=request.route_path(route, **params))


def _add_token(request, username: str, show, identity):
    """The new token is shown on the page this POST answers (``show``), once, never
    stored in the session.

    A token outlives the session, so a session alone (a stolen cookie) must
    not be enough: the current password is asked for again.
    """
    try:
        access = _editable(request)
        if (
            throttle.authenticate(request, identity.username, request.POST.get("current_password", ""))
            is None
        ):
            return show(request, status=403, errors=["Enter your current password to create a token"])
        if not username:
            raise InvalidAccessData("The field 'username' is required")
        expires_at = token_expiry(int(request.POST.get("expires_days", "90") or 0))
        projects_text = request.POST.get("projects", "").replace(",", " ").split()
        secret, info = access.create_token(
            username,
            projects=projects_text or None,
            upload=request.POST.get("upload") == "1",
            expires_at=expires_at,
            description=request.POST.get("description", "").strip() or None,
        )
    except ValueError:
        return show(request, status=400, errors=["Days until expiry must be a number"])
    except PypicloudError as exc:
        if exc.status >= 500:
            raise
        return show(request, status=exc.status, errors=[str(exc)])
    return show(
        request,
        new_token={"username": info.username, "secret": secret},
        flashes=[f"Token {info.token_id} created for {info.username}"],
    )
