"""Functional tests: the real WSGI app (``pypicloud.main``) driven through WebTest.

Every app stores its files in a directory under ``tmp_path`` and its index in a
SQLite file beside it, so a "restart" is simply a new app built on the same
directories. Distributions are built in memory at test time; nothing binary is
checked in.

Users (from the ini, as an admin would write them):

- ``admin`` is in ``auth.admins``;
- ``alice`` may write the project ``alice-pkg`` (``package.alice-pkg.user.alice = rw``);
- ``bob`` is a plain user (reads, through the default ``pypi.default_read = authenticated``).

The helpers are plain functions in tests/functional/helpers.py (distributions
in tests/builders.py); the fixtures come from tests/fixtures/apps.py.
"""

from tests.fixtures.apps import app, make_app, spool_dir  # noqa: F401  (fixtures)
