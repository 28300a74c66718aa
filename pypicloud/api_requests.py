"""Whole requests of the upload, REST and JSON APIs, each one service call for its view;
mixed into :class:`pypicloud.service.PackageIndex`.

Where a request's body must not be parsed before the caller is authorised, the
view passes a reader (``read_form``, ``read_reason``) that is called after the
check. The rules themselves live in the other service modules.
"""

from __future__ import annotations

from collections.abc import Callable

from . import dists
from .audit_actions import INDEX_REBUILD
from .errors import FileNotFound, InvalidUpload, ProjectNotFound
from .events import Event
from .models import FileRecord, Identity
from .project_json import DocumentUrls, ProjectDocument, build_document, version_redirect
from .records import parse_upload_time
from .results import UploadForm, UploadResult
from .service_base import ServiceBase


class ApiRequests(ServiceBase):
    """One method per request of the legacy upload API, the REST API and the JSON API."""

    def legacy_upload(self, identity: Identity, read_form: Callable[[], UploadForm]) -> UploadResult:
        """The legacy upload API (twine, uv, poetry, pdm): ``:action=file_upload``.

        The caller is authorised before ``read_form`` parses the body; a form
        without ``:action`` but with a file is an upload (pypicloud 1.x's
        ``curl -F content=@f``), and one without name or version takes both
        from the filename (the display name from the archive).
        """
        self.authorize_upload(identity)
        form = read_form()
        action = form.action
        if action is None and form.content is not None:
            action = "file_upload"
        if action != "file_upload":
            raise self.refusal(
                identity,
                "upload",
                InvalidUpload(f"Unsupported :action {action!r}; only 'file_upload' is supported"),
            )
        if form.name is None or form.version is None:
            return self.upload_file(identity, form.filename, form.content, form.digests())
        return self.upload(
            identity,
            name=form.name,
            version=form.version,
            filename=form.filename,
            content=form.content,
            digests=form.digests(),
        )

    def api_upload(
        self, identity: Identity, project: str, filename: str, read_form: Callable[[], UploadForm]
    ) -> UploadResult:
        """pypicloud 1.x's ``POST /api/package/<project>/<filename>``: the file in ``content``,
        the version (when not sent) from the filename."""
        self.authorize_upload(identity, project)
        form = read_form()
        version = form.version
        if version is None:
            with self.anonymous_first(identity, "upload"):
                version = dists.parse_filename(filename).version
        return self.upload(
            identity,
            name=form.name or project,
            version=version,
            filename=filename if form.content is not None else form.filename,
            content=form.content,
            digests=form.digests(),
        )

    def yank_file(
        self, identity: Identity, project: str, filename: str, read_reason: Callable[[], str | None]
    ) -> FileRecord:
        """Yank one file; the caller is authorised before ``read_reason`` reads the body."""
        self.authorize_upload(identity, project, yank=True)
        return self.set_yanked(identity, project, filename, True, read_reason())

    def api_delete_file(self, identity: Identity, project: str, filename: str) -> FileRecord:
        """Delete a file, answering a missing one with 400 after the login check (as 1.x)."""
        try:
            return self.delete_file(identity, project, filename)
        except FileNotFound:
            raise self.refusal(identity, "delete", InvalidUpload(f"Could not find {filename}")) from None

    def api_project_files(self, identity: Identity, project: str) -> tuple[list[FileRecord], bool]:
        """A project's files and whether the caller may upload to it.

        An unknown project the caller could read is an empty list, as in 1.x.
        """
        try:
            records = self.project_files(identity, project)
        except ProjectNotFound:
            self.require_read(identity, project)
            records = []
        return records, self.access.can_write(identity, project)

    def admin_rebuild(self, identity: Identity) -> tuple[int, int]:
        """Rebuild the index from storage (admins only). Returns (files, change counter)."""
        self.require_admin(identity, "rebuild the index")
        count = self.rebuild()
        self.events.publish(Event(INDEX_REBUILD, identity.username, detail={"files": count}))
        return count, self.index.generation()

    def project_document(
        self, identity: Identity, project: str, version: str | None, urls: DocumentUrls
    ) -> ProjectDocument:
        """The legacy JSON API's document of a project or one version (``version``).

        With the redirect behaviour of the fallback it is a redirect to upstream's
        own JSON API instead (its address is known from ``fallback_base_url``).
        """
        upstream = self.upstream
        listing = self.project_listing(
            identity, project, redirect_to=upstream.json_url if upstream is not None else None
        )
        if listing.redirect is not None:
            return ProjectDocument(redirect=version_redirect(listing.redirect, version))
        return ProjectDocument(
            build_document(listing, version, self.index.generation(), urls, parse_upload_time)
        )
