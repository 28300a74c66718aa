"""Every route of the app, with dotted names."""


def includeme(config) -> None:
    config.add_route("simple.index", "/simple/")
    config.add_route("simple.index_noslash", "/simple")
    config.add_route("simple.project", "/simple/{project}/")
    config.add_route("simple.project_noslash", "/simple/{project}")
    config.add_route("upload.root", "/")
    config.add_route("upload.pypi", "/pypi")
    config.add_route("upload.pypi_slash", "/pypi/")
    config.add_route("json.project", "/pypi/{project}/json")
    config.add_route("json.version", "/pypi/{project}/{version}/json")
    config.add_route("api.packages", "/api/package/")
    config.add_route("api.packages_noslash", "/api/package")
    config.add_route("api.project", "/api/package/{project}/")
    config.add_route("api.project_noslash", "/api/package/{project}")
    config.add_route("api.yank", "/api/package/{project}/{filename}/yank")
    config.add_route("api.file", "/api/package/{project}/{filename}")
    config.add_route("health", "/health")
    config.add_route("admin.rebuild", "/admin/rebuild")
    # pypicloud 1.x's JSON admin and user API (views/legacy_admin.py); "{s:/?}": the
    # trailing slash is optional, as with 1.x's traversal.
    config.add_route("legacy.rebuild", "/admin/rebuild/")
    config.add_route("legacy.pending_users", "/admin/pending_users{s:/?}")
    config.add_route("legacy.users", "/admin/user{s:/?}")
    config.add_route("legacy.user", "/admin/user/{username}{s:/?}")
    config.add_route("legacy.user_approve", "/admin/user/{username}/approve{s:/?}")
    config.add_route("legacy.user_admin", "/admin/user/{username}/admin{s:/?}")
    config.add_route("legacy.user_permissions", "/admin/user/{username}/permissions{s:/?}")
    config.add_route("legacy.user_group", "/admin/user/{username}/group/{group}{s:/?}")
    config.add_route("legacy.groups", "/admin/group{s:/?}")
    config.add_route("legacy.group", "/admin/group/{group}{s:/?}")
    config.add_route("legacy.package", "/admin/package/{package}{s:/?}")
    config.add_route(
        "legacy.package_permission",
        "/admin/package/{package}/{kind:user|group}/{name}/{word:read|write}{s:/?}",
    )
    config.add_route("legacy.register", "/admin/register{s:/?}")
    config.add_route("legacy.token", "/admin/token/{username}{s:/?}")
    config.add_route("legacy.acl", "/admin/acl.json.gz")
    config.add_route("legacy.api_user", "/api/user/{username}{s:/?}")
    config.add_route("legacy.login", "/acct/login{s:/?}")
    config.add_route("legacy.logout", "/acct/logout{s:/?}")
    config.add_route("legacy.token_register", "/acct/tokenRegister{s:/?}")
    config.add_route("legacy.signup", "/acct/signup")
    config.add_route("legacy.signup_js", "/acct/signup.js")
    # The web UI (browser session + CSRF; see views/web/)
    config.add_route("ui.login", "/login")
    config.add_route("ui.logout", "/logout")
    config.add_route("ui.register", "/register")
    config.add_route("ui.home", "/admin/")
    config.add_route("ui.home_noslash", "/admin")
    config.add_route("ui.projects", "/admin/projects/")
    config.add_route("ui.project", "/admin/projects/{project}/")
    # Downloads from the UI's pages: the same files, authorised by the browser session.
    config.add_route("ui.file", "/admin/projects/{project}/files/{filename}")
    config.add_route("ui.access", "/admin/access/")
    config.add_route("ui.upload", "/admin/upload/")
    config.add_route("ui.account", "/admin/account/")
    config.add_route("ui.webhooks", "/admin/webhooks/")
    config.add_route("ui.audit", "/admin/audit/")
    config.add_route("ui.audit_export", "/admin/audit.jsonl")
    config.add_route("ui.action", "/admin/do/{action}")
    config.add_route("ui.asset", "/admin/static/{name}")
    # pypicloud 1.x's index URLs (views/compat.py): pip --index-url .../pypi/ or
    # http://host/, pip-tools' /<p>/json, buildout's /packages/. The root ones are
    # last and skip every name a fixed route starts with, so fixed routes win.
    config.add_route("compat.pypi_project", "/pypi/{project}/")
    config.add_route("compat.simple_json", "/simple/{project}/json")
    config.add_route("compat.packages", "/packages/")
    config.add_route("compat.packages_noslash", "/packages")
    # Downloads under /packages/ (the view of /api/package/<p>/<f>): index pages and
    # the JSON API link files here, the only file URL shape bandersnatch mirrors, and
    # pip-tools needs the two to link the same URL to take hashes from the JSON API.
    config.add_route("packages.file", "/packages/{project}/{filename}")
    config.add_route_predicate("ppc_not_fixed", "pypicloud.views.compat.NotFixedRoute")
    config.add_route("compat.root_json", "/{project}/json", ppc_not_fixed=True)
    config.add_route("compat.root_project", "/{project}/", ppc_not_fixed=True)
