"""Which simple-API page answers a request, and when a rendered one may be reused.

Pages are rendered once per change of the index (its change counter) and
served from memory after that (:class:`pypicloud.pagecache.PageCache`); every
request still checks permissions. With an upstream fallback the service
decides what a page holds (:class:`pypicloud.service.ProjectListing`): a page
with upstream files is kept per fetch of the upstream page, and one made while
upstream was down is not kept. The view renders (it knows the templates and
routes) through the callback it passes; every decision is taken here.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import NamedTuple

from .models import ANONYMOUS, FileRecord, Identity, ProjectSummary
from .pagecache import Page, PageCache
from .results import FileLinks, ProjectListing
from .service import PackageIndex


class PageAnswer(NamedTuple):
    """A page (or a redirect to upstream's page) and how to send it.

    ``serial``: the change counter the page was made at; ``private``: the page
    depends on the caller's credentials (no shared cache may keep it).
    (A named tuple: made on every page request, it costs a third of a frozen dataclass.)
    """

    page: Page | None
    serial: int
    private: bool
    redirect: str | None = None


class SimplePages:
    """The simple API's pages over one service and one page cache (both shared, thread-safe)."""

    def __init__(self, service: PackageIndex, cache: PageCache):
        self.service = service
        self.cache = cache

    def peek_index(self, identity: Identity, fmt: str, site: Hashable) -> PageAnswer | None:
        """The project list if a page for this caller is cached, else None (nothing is rendered)."""
        generation = self.service.generation()
        page = self.cache.get(self._index_key(identity, fmt, site), generation)
        return None if page is None else PageAnswer(page, generation, private=identity.authenticated)

    def _index_key(self, identity: Identity, fmt: str, site: Hashable) -> tuple:
        # The list depends on who asks (unreadable projects are hidden): the whole
        # identity (groups, token scope) and the access data's version.
        return ("index", fmt, site, identity, self.service.access_version())

    def index(
        self,
        identity: Identity,
        fmt: str,
        site: Hashable,
        render: Callable[[list[ProjectSummary], int], Page],
    ) -> PageAnswer:
        """The project list (``render(projects, serial)`` makes the page)."""
        generation = self.service.generation()
        key = self._index_key(identity, fmt, site)
        page = self.cache.get(key, generation)
        if page is None:
            page = render(self.service.projects(identity), generation)
            self.cache.put(key, generation, page)
        return PageAnswer(page, generation, private=identity.authenticated)

    def project(
        self,
        identity: Identity,
        project: str,
        fmt: str,
        site: Hashable,
        render: Callable[[ProjectListing, FileLinks, int], Page],
    ) -> PageAnswer:
        """One project's page, or a redirect to upstream's (``render(listing, links, serial)``)."""
        service = self.service
        generation = service.generation()
        key = self._project_key(project, fmt, site)
        answer = self._cached_project(identity, project, key, generation)
        if answer is not None:
            return answer
        private = not service.is_public(project)
        listing = service.project_listing(identity, project)
        if listing.redirect is not None:
            return PageAnswer(None, generation, private, redirect=listing.redirect)
        full_key = None if listing.cache_key is None else key + listing.cache_key
        page = self.cache.get(full_key, generation) if full_key is not None else None
        if page is None:
            page = render(listing, service.file_links(listing.records), generation)
            if full_key is not None:
                self.cache.put(full_key, generation, page)
        return PageAnswer(page, generation, private)

    def peek_project(self, identity: Identity, project: str, fmt: str, site: Hashable) -> PageAnswer | None:
        """One project's page if cached (readable by ``identity``: else the service raises),
        else None; nothing is rendered and upstream is never asked."""
        generation = self.service.generation()
        return self._cached_project(identity, project, self._project_key(project, fmt, site), generation)

    def _project_key(self, project: str, fmt: str, site: Hashable) -> tuple:
        # Under the plain key only pages of local files alone are kept (see ProjectListing).
        return ("project", project, fmt, site) + self.service.url_epoch()

    def _cached_project(
        self, identity: Identity, project: str, key: tuple, generation: int
    ) -> PageAnswer | None:
        page = self.cache.get(key, generation)
        if page is None:
            return None
        private = not self.service.is_public(project)
        if private or identity is not ANONYMOUS:
            # (An anonymous caller may read exactly what is public: asked once.)
            self.service.require_read(identity, project)
        return PageAnswer(page, generation, private)

    def all_files(
        self,
        identity: Identity,
        site: Hashable,
        render: Callable[[list[FileRecord], FileLinks], Page],
    ) -> PageAnswer:
        """pypicloud 1.x's ``/packages/``: every file the caller may read, by filename."""
        service = self.service
        generation = service.generation()
        # Keyed by the whole identity (groups, token scope): what it may read decides the page.
        key = ("packages", site, identity)
        page = self.cache.get(key, generation)
        if page is None:
            records = [
                record
                for summary in service.projects(identity)
                for record in service.project_files(identity, summary.project)
            ]
            records.sort(key=lambda r: r.filename)
            page = render(records, service.file_links(records))
            self.cache.put(key, generation, page)
        return PageAnswer(page, generation, private=identity.authenticated)
