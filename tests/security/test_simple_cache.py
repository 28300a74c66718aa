"""Item 8: the cached /simple/ list follows token scopes and grant changes.

The review's attack: a token limited to one project read the /simple/ list
its user's unrestricted token had rendered (every name the user can read);
a revoked grant kept showing the name until the next upload.
"""

from __future__ import annotations

from tests.functional.helpers import JSON_TYPE, auth_headers, make_wheel, upload_dist

from .helpers import sql_app


def names(app, user, password=None) -> list[str]:
    response = app.get("/simple/", headers=auth_headers(user, password, Accept=JSON_TYPE))
    return sorted(p["name"] for p in response.json["projects"])


def test_token_scope_and_revoked_grants_are_honoured(make_app, tmp_path):
    app = sql_app(make_app, tmp_path, **{"pypi.default_read": ""})
    access = app.app.registry.service.access
    access.set_grant("shared-proj", "user", "alice", "r")
    upload_dist(app, make_wheel("alice-pkg", "1.0"), user="admin")
    upload_dist(app, make_wheel("shared-proj", "1.0"), user="admin")
    upload_dist(app, make_wheel("secret-proj", "1.0"), user="admin")
    wide, _ = access.create_token("alice", upload=True)
    narrow, _ = access.create_token("alice", projects=["alice-pkg"])

    assert names(app, "__token__", wide) == ["alice-pkg", "shared-proj"]
    assert names(app, "__token__", narrow) == ["alice-pkg"]
    assert names(app, "alice") == ["alice-pkg", "shared-proj"]

    access.set_grant("secret-proj", "user", "bob", "r")
    assert names(app, "bob") == ["secret-proj"]
    access.set_grant("secret-proj", "user", "bob", None)  # revoked; no upload since
    assert names(app, "bob") == []
