"""Logging in and out of the web UI, and signing up (``pypi.allow_register``)."""

from __future__ import annotations

from pyramid.csrf import new_csrf_token
from pyramid.httpexceptions import HTTPFound, HTTPSeeOther
from pyramid.view import view_config

from ... import flashes, sessions, throttle
from ...access.editable import InvalidAccessData
from ...access_manager import MIN_OWN_PASSWORD
from ...errors import Forbidden, PypicloudError
from .common import access_admin, check_csrf, csrf_ok, page, safe_next


@view_config(route_name="ui.login", request_method="GET")
def login_form(request):
    if request.identity.authenticated and request.identity.token is None:
        return HTTPFound(location=safe_next(request))
    return page(
        request,
        "login.html",
        next=request.params.get("next", ""),
        allow_register=access_admin(request).registration_open(),
    )


@view_config(route_name="ui.login", request_method="POST")
def login(request):
    if not csrf_ok(request):
        # A login page left open past the session's life: show the form again.
        new_csrf_token(request)
        return page(
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
        return page(
            request,
            "login.html",
            status=401,
            next=request.POST.get("next", ""),
            username=username,
            errors=["Wrong user name or password"],
        )
    # A fresh session (and CSRF token) at login: nothing chosen before it survives.
    request.session.invalidate()
    assert identity.username is not None  # an authenticated identity has a name
    sessions.start(request, identity.username)
    new_csrf_token(request)
    return HTTPSeeOther(location=safe_next(request))


@view_config(route_name="ui.logout", request_method="POST")
def logout(request):
    check_csrf(request)
    if request.identity.authenticated and request.identity.token is None:
        # Every session of this user ends, copies of this cookie included.
        sessions.end_all(request.registry, request.identity.username)
    request.session.invalidate()
    return HTTPSeeOther(location=request.route_path("ui.login"))


# Self-registration (pypi.allow_register; a sign-up waits for an admin) ----------
@view_config(route_name="ui.register", request_method="GET")
def register_form(request):
    if not access_admin(request).registration_open():
        raise Forbidden("Self-registration is off: ask an admin for an account")
    return page(request, "register.html", min_password=MIN_OWN_PASSWORD)


@view_config(route_name="ui.register", request_method="POST")
def register(request):
    if not csrf_ok(request):
        new_csrf_token(request)
        return page(
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
        access_admin(request).register(request.identity, username, password)
    except PypicloudError as exc:
        if exc.status >= 500:
            raise
        return page(
            request,
            "register.html",
            status=exc.status,
            username=username,
            min_password=MIN_OWN_PASSWORD,
            errors=[str(exc)],
        )
    flashes.flash(
        request, f"Signed up as {username}. An admin must approve the account before you can log in."
    )
    return HTTPSeeOther(location=request.route_path("ui.login"))
