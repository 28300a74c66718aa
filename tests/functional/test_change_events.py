"""Uploads, deletes and yanks through the HTTP API publish one event each, with who and from where."""

from tests.builders import make_wheel
from tests.functional.helpers import basic, service, upload_dist


def test_upload_yank_delete_publish_events_with_actor_and_address(app):
    events = []
    service(app).events.subscribe(events.append)
    filename, data = make_wheel("demo", "1.0")
    upload_dist(app, (filename, data), headers={"X-Forwarded-For": "198.51.100.7"})
    # The identical file again is not a change: no second event.
    upload_dist(app, (filename, data))
    app.post(f"/api/package/demo/{filename}/yank", params={"reason": "broken"}, headers=basic("admin"))
    app.delete(f"/api/package/demo/{filename}", headers=basic("admin"))
    assert [(e.action, e.actor, e.project, e.version, e.filename) for e in events] == [
        ("file.upload", "admin", "demo", "1.0", filename),
        ("file.yank", "admin", "demo", "1.0", filename),
        ("file.delete", "admin", "demo", "1.0", filename),
    ]
    assert events[0].address == "198.51.100.7"
    assert events[0].detail["size"] == len(data)
    assert events[1].detail == {"reason": "broken"}
    assert len({e.request_id for e in events}) == 3
