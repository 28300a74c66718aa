"""Shared helpers of the security tests."""

from __future__ import annotations

from tests.functional.helpers import HASHES


def sql_app(make_app, tmp_path, **extra: str):
    """An app with ``pypi.auth = sql`` and the usual users (admin, alice with rw on alice-pkg, bob)."""
    settings = {"pypi.auth": "sql", "db.url": f"sqlite:///{tmp_path / 'index.sqlite'}"}
    settings.update(extra)
    app = make_app(settings)
    access = app.app.registry.service.access
    access.create_user("admin", HASHES["admin"], admin=True)
    access.create_user("alice", HASHES["alice"])
    access.create_user("bob", HASHES["bob"])
    access.set_grant("alice-pkg", "user", "alice", "rw")
    return app
