"""The web UI's views moved to the package :mod:`pypicloud.views.web`; this name stays
importable for code and plugins that import it."""

from __future__ import annotations

from .web import access_forms, actions, auth, common, pages  # noqa: F401
from .web.access_forms import USER_ACTIONS as ACCOUNT_ACTIONS  # noqa: F401
from .web.pages import access, account, home_page, overview, project, projects, upload_page  # noqa: F401
