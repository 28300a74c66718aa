"""The web UI's POST forms: one URL per action (``/admin/do/<action>``), each answered
with a redirect to the page showing the result (post/redirect/get: a reload never
repeats an action). Results and refusals travel as one-time messages kept on the
server (:mod:`pypicloud.flashes`); a refused form returns to the page it came from.

The forms of projects and files are here; those of users, groups, grants and
tokens in :mod:`.access_forms`.
"""

from __future__ import annotations

import os

from packaging.utils import canonicalize_name
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from ... import flashes
from ...errors import Forbidden, InvalidRequest, InvalidUpload, PypicloudError
from ...releases import human_size
from ..upload import read_form
from . import access_forms, webhooks
from .common import check_csrf, field, require_admin, require_user

# Pages a refused file or release form goes back to when there is no referring page.
MAX_LISTED = 8


def _file_size(upload) -> int:
    stream = upload.file
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def _upload(request, identity):
    """Each chosen file is stored on its own: one refusal does not stop the others,
    and the size limit applies to each file, not to the whole form."""
    service = request.services.service
    limit = service.max_upload_size
    chosen = [
        value
        for value in request.POST.getall("content")
        if not isinstance(value, str) and getattr(value, "file", None) is not None and value.filename
    ]
    if not chosen:
        raise InvalidUpload("Choose at least one file to upload")
    done: list[str] = []
    refused: list[str] = []
    for upload in chosen:
        name = upload.filename
        size = _file_size(upload)
        if limit is not None and size > limit:
            refused.append(
                f"{name}: not stored, it is {human_size(size)}, over the limit of {human_size(limit)} per file"
            )
            continue
        try:
            result = service.upload_file(identity, name, upload.file)
        except PypicloudError as exc:
            if exc.status >= 500:
                raise
            refused.append(f"{name}: {exc}")
            continue
        record = result.record
        done.append(
            f"Uploaded {record.filename} to {record.name}"
            if result.created
            else f"{record.filename} was already uploaded with the same bytes"
        )
    for message in _bounded(done, "stored"):
        flashes.flash(request, message)
    for message in _bounded(refused, "refused"):
        flashes.flash(request, message, "error")
    return None, "ui.upload", {}


def _bounded(messages: list[str], verb: str) -> list[str]:
    """The first few messages, then one line counting the rest (a page, not a log)."""
    if len(messages) <= MAX_LISTED:
        return messages
    shown = messages[: MAX_LISTED - 1]
    return [*shown, f"… and {len(messages) - len(shown)} more files {verb}"]


def _rebuild(request, identity):
    count = request.services.service.rebuild()
    return f"Index rebuilt from storage: {count} files", "ui.home", {}


def _after_change(request, project_name: str) -> tuple[str, dict]:
    """The project's page, or the project list once its last file is gone."""
    if request.services.service.has_project(project_name):
        return "ui.project", {"project": project_name}
    return "ui.projects", {}


def _file_action(action: str):
    def run(request, identity):
        service = request.services.service
        project_name = canonicalize_name(field(request, "project"))
        filename = field(request, "filename")
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
        return message, *_after_change(request, project_name)

    return run


def _release_action(action: str):
    def run(request, identity):
        service = request.services.service
        project_name = canonicalize_name(field(request, "project"))
        version = field(request, "version")
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
        return message, *_after_change(request, project_name)

    return run


def _delete_project(request, identity):
    service = request.services.service
    project_name = canonicalize_name(field(request, "project"))
    typed = request.POST.get("confirm_name", "").strip()
    # The name typed in full: deleting every release is never one stray click.
    if canonicalize_name(typed or "-") != project_name:
        raise InvalidRequest(f"Type the project's name ({project_name}) to delete it; nothing was deleted")
    done = service.delete_project(identity, project_name)
    return f"Deleted project {project_name} ({len(done)} files)", "ui.projects", {}


_ACTIONS = {
    "upload": _upload,
    "rebuild": _rebuild,
    "delete-file": _file_action("delete-file"),
    "yank": _file_action("yank"),
    "unyank": _file_action("unyank"),
    "yank-release": _release_action("yank-release"),
    "unyank-release": _release_action("unyank-release"),
    "delete-release": _release_action("delete-release"),
    "delete-project": _delete_project,
    **access_forms.ACTIONS,
    **webhooks.ACTIONS,
}

# What any logged-in user may ask for; the services check their permission.
# Everything else (rebuild, users, groups, grants, anyone's tokens) is for admins.
_USER_ACTIONS = frozenset(
    {
        "upload",
        "yank",
        "unyank",
        "delete-file",
        "yank-release",
        "unyank-release",
        "delete-release",
        "delete-project",
        *access_forms.USER_ACTIONS,
    }
)


def _back(request, action_name: str) -> str:
    """Where a refused form returns: the page it came from, else the page it belongs to."""
    if request.referer and request.referer.startswith(request.host_url + "/admin"):
        return request.referer
    if action_name == "upload":
        return request.route_url("ui.upload")
    if action_name in access_forms.USER_ACTIONS:
        return request.route_url("ui.account")
    project_name = request.POST.get("project", "").strip()
    if action_name in _USER_ACTIONS and project_name:
        return request.route_url("ui.project", project=canonicalize_name(project_name))
    if action_name in access_forms.ACTIONS:
        return request.route_url("ui.access")
    return request.route_url("ui.home")


@view_config(route_name="ui.action", request_method="POST")
def action(request):
    name = request.matchdict["action"]
    identity = require_user(request) if name in _USER_ACTIONS else require_admin(request)
    if name == "upload":
        # 413 before a body over the whole form's limit is read; each file has its own.
        read_form(request, limit=request.services.ui_upload_limit)
    check_csrf(request)
    handler = _ACTIONS.get(name)
    if handler is None:
        raise Forbidden(f"Unknown action {name!r}")
    try:
        message, route, params = handler(request, identity)
    except PypicloudError as exc:
        if exc.status >= 500:
            raise
        flashes.flash(request, str(exc), "error")
        return HTTPSeeOther(location=_back(request, name))
    if message:
        flashes.flash(request, message)
    return HTTPSeeOther(location=request.route_path(route, **params))
