"""The web UI: log in, the home page, projects and files, the browser upload form,
the account page; for admins also the overview (health, rebuild) and
users/groups/grants/tokens.

Browser sessions are signed cookies (``pypicloud/sessions.py``); every
state-changing form carries the session's CSRF token and is refused with 403
without it (on top of the cross-site guard in ``crosssite.py``). What a visitor
may see and do is decided by the same rules as on the API: in the package
service (``request.services.service``) and the access manager
(``request.services.access_admin``, :mod:`pypicloud.access_manager`). These
views only collect form fields and show results; none touches a backend.

Modules: ``common`` (page rendering, login gates, CSRF), ``auth`` (log in and
out, sign up), ``pages`` (every GET page), ``actions`` (the POST forms of
projects and files), ``access_forms`` (the POST forms of users, groups, grants
and tokens), ``webhooks`` (the admins' webhooks page and its Retry form),
``assets`` (the one static script).
"""
