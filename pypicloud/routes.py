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
