"""The audit log's other sources and settings: sign-up token registrations, trusted
publishing mints, ``ppc-access`` / ``ppc-import`` (actor ``cli:<login>``) and
``ppc-audit``; ``audit.enabled``, ``audit.retention_days``; a broken log never
blocks a change."""

from __future__ import annotations

import getpass
import io
import json
import logging
from datetime import timedelta

from pypicloud.audit import AuditService
from pypicloud.cli import access as access_cli
from pypicloud.cli import audit as audit_cli
from pypicloud.events import Event
from pypicloud.index.eventlog import EventQuery
from pypicloud.models import utcnow
from tests.builders import make_wheel
from tests.fixtures.oidc_issuer import AUDIENCE

from .helpers import HASHES, basic, service, upload_dist
from .test_signup_tokens import SETTINGS, spend, token_for
from .test_trusted_publishing import mint
from .test_trusted_publishing import settings as oidc_settings


def logged(app, **filters) -> list[Event]:
    return service(app).index.list_events(EventQuery(**filters))


def sql_app(make_app, **extra):
    app = make_app({**SETTINGS, **extra})
    access = service(app).access
    access.create_user("admin", HASHES["admin"], admin=True)
    return app


def test_spending_a_signup_token_is_recorded_without_secrets(make_app):
    app = sql_app(make_app)
    token = token_for(app)["token"]
    assert spend(app, token).status_int == 200
    [event] = logged(app)
    assert (event.action, event.actor, dict(event.detail)) == (
        "access.user.register",
        "carol",
        {"user": "carol", "via": "signup-token"},
    )
    assert token not in json.dumps(event.to_json())


def test_a_trusted_publishing_mint_is_recorded(make_app, oidc_issuer):
    app = make_app(oidc_settings(oidc_issuer))
    body = mint(app, oidc_issuer.github_token())
    [event] = logged(app, action="oidc.")
    assert event.actor == "trusted-publisher:widget"
    assert event.detail["projects"] == ["acme-widget", "acme-widget-extras"]
    assert event.detail["issuer"].rstrip("/") == oidc_issuer.url.rstrip("/")
    assert body["token"] not in json.dumps(event.to_json())  # the upload token is a secret
    assert AUDIENCE  # the issuer signed for this app's audience
    upload_dist(app, make_wheel("acme-widget", "1.0"), user="__token__", password=body["token"])
    assert logged(app, action="file.upload")[0].actor == "trusted-publisher:widget"


def test_recording_can_be_switched_off(make_app):
    app = make_app({"audit.enabled": "false"})
    upload_dist(app, make_wheel("demo", "1.0"))
    assert logged(app) == []
    # The admin page still opens, and says so.
    response = app.get("/admin/audit/", headers=basic("admin"))
    assert "Recording is off" in response.text


def test_a_failing_audit_log_never_blocks_a_change(app, monkeypatch, caplog):
    index = service(app).index

    def broken(event):
        raise RuntimeError("index refuses events")

    monkeypatch.setattr(index, "add_event", broken)
    with caplog.at_level(logging.ERROR, logger="pypicloud.audit"):
        upload_dist(app, make_wheel("demo", "1.0"))
        app.delete(f"/api/package/demo/{make_wheel('demo', '1.0')[0]}", headers=basic("admin"))
    assert index.files("demo") == []
    assert "could not record file.delete" in caplog.text


def test_an_upload_whose_audit_row_cannot_be_written_still_succeeds(app, caplog):
    """The upload's event rides in the row's transaction; when the event table
    refuses it, the row is written alone and the event's loss is logged."""
    index = service(app).index
    with index.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE ppc_events RENAME TO ppc_events_elsewhere")
    with caplog.at_level(logging.WARNING):
        upload_dist(app, make_wheel("demo", "1.0"))
    assert [r.filename for r in index.files("demo")] == [make_wheel("demo", "1.0")[0]]
    assert index.open_intents(utcnow()) == []
    assert "could not record file.upload" in caplog.text


def test_retention_prunes_old_events_at_start_up(make_app):
    app = make_app()
    index = service(app).index
    index.add_event(Event("file.upload", "admin", at=utcnow() - timedelta(days=40)))
    index.add_event(Event("file.upload", "admin", at=utcnow() - timedelta(days=2)))
    restarted = make_app({"audit.retention_days": "30"})
    assert len(logged(restarted)) == 1
    assert AuditService(index, retention_days=None).prune_expired() == 0


def write_ini(tmp_path, settings: dict[str, str]):
    ini = tmp_path / "server.ini"
    lines = ["[app:main]", "use = egg:pypicloud"] + [f"{k} = {v}" for k, v in settings.items()]
    ini.write_text("\n".join(lines) + "\n")
    return str(ini)


def test_ppc_access_changes_are_recorded_as_the_operator(make_app, tmp_path, monkeypatch, capsys):
    app = sql_app(make_app)
    ini = write_ini(tmp_path, app.ppc_settings)
    monkeypatch.setattr("sys.stdin", io.StringIO("dave-secret\n"))
    assert access_cli.access_main([ini, "add-user", "dave"]) == 0
    assert access_cli.access_main([ini, "add-group", "dev", "dave"]) == 0
    assert access_cli.access_main([ini, "grant", "Demo", "group", "dev", "rw"]) == 0
    assert access_cli.access_main([ini, "add-user", "admin"]) == 1  # refused: nothing recorded
    operator = f"cli:{getpass.getuser()}"
    events = logged(app)
    assert [(e.action, e.actor) for e in events] == [
        ("access.grant.set", operator),
        ("access.member.add", operator),
        ("access.group.create", operator),
        ("access.user.create", operator),
    ]
    assert events[0].project == "demo" and events[0].address is None
    assert "dave-secret" not in json.dumps([e.to_json() for e in events])

    capsys.readouterr()
    assert audit_cli.main([ini, "--action", "access.", "--actor", operator, "--limit", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["action"] for line in lines] == ["access.grant.set", "access.member.add"]
    assert audit_cli.main([ini, "--project", "demo", "--since", "2000-01-01"]) == 0
    assert [json.loads(line)["action"] for line in capsys.readouterr().out.splitlines()] == [
        "access.grant.set"
    ]
    assert audit_cli.main([ini, "--since", "never"]) == 1
    assert "'from' must be a date" in capsys.readouterr().err
