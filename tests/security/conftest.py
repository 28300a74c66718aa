"""Security regression tests (issue 12): each attacks the server the way the review did.

The functional fixtures (the real WSGI app on tmp_path) and the fake upstream
index are shared with tests/functional.
"""

from tests.fixtures.apps import app, make_app, spool_dir  # noqa: F401
