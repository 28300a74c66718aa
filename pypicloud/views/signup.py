"""The web page that spends a sign-up token (``/acct/signup``), and the small script
that takes 1.x's token links (``/acct/login#/?token=...``) there.

1.x's admins sent new users ``<server>/acct/login#/?token=<token>``; the part after
``#`` never reaches a server, so the login page loads ``/acct/signup.js``, which
moves such a link to ``/acct/signup?token=<token>``. The rules are in
:class:`pypicloud.signup_tokens.TokenSignup`.
"""

from __future__ import annotations

from pyramid.csrf import check_csrf_token, new_csrf_token
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.response import Response
from pyramid.view import view_config

from .. import flashes, sessions
from ..access.editable import InvalidAccessData
from ..access_admin import MIN_SIGNUP_PASSWORD
from ..errors import PypicloudError
from ..signup_tokens import TokenSignup
from .legacy_admin import _admin
from .web.common import page as _page

# Served as a file of this server: the UI's Content-Security-Policy allows
# scripts from this origin only, never inline ones.
SIGNUP_SCRIPT = """\
(function () {
  var match = /[#&?]token=([^&]+)/.exec(window.location.hash || "");
  var here = document.currentScript;
  if (match && here && here.dataset.signup) {
    window.location.replace(here.dataset.signup + "?token=" + match[1]);
  }
})();
"""


def _signup(request) -> TokenSignup:
    return TokenSignup(_admin(request), request.services.signup_tokens)


def _form(request, token: str, status: int = 200, errors: list[str] | None = None):
    try:
        username = _signup(request).check(token)
    except PypicloudError as exc:
        if exc.status >= 500:
            raise
        return _page(request, "signup.html", status=exc.status, token=None, errors=[str(exc)])
    return _page(
        request,
        "signup.html",
        status=status,
        token=token,
        username=username,
        min_password=MIN_SIGNUP_PASSWORD,
        errors=errors or [],
    )


@view_config(route_name="legacy.signup", request_method="GET")
def signup_form(request):
    return _form(request, request.params.get("token", ""))


@view_config(route_name="legacy.signup", request_method="POST")
def signup(request):
    token = request.POST.get("token", "")
    if not check_csrf_token(request, token="csrf_token", header=None, raises=False):
        new_csrf_token(request)
        return _form(request, token, 403, ["The form had expired; please try again"])
    password = request.POST.get("password", "")
    try:
        if password != request.POST.get("repeat", ""):
            raise InvalidAccessData("The two passwords are not the same")
        username = _signup(request).redeem(token, password)
    except PypicloudError as exc:
        if exc.status >= 500:
            raise
        return _form(request, token, exc.status, [str(exc)])
    request.session.invalidate()
    sessions.start(request, username)
    flashes.flash(request, f"Welcome, {username}: your account is ready")
    return HTTPSeeOther(location=request.route_path("ui.home"))


@view_config(route_name="legacy.signup_js", request_method="GET")
def signup_script(request):
    response = Response(SIGNUP_SCRIPT, content_type="text/javascript", charset="utf-8")
    response.headers["Cache-Control"] = "max-age=3600"
    return response
