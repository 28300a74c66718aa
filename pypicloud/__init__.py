"""pypicloud: a private Python package index.

``main`` is the PasteDeploy ``paste.app_factory``, so ``pserve development.ini``
serves the app. The package itself stays light: the WSGI app lives in
:mod:`pypicloud.webapp` and the composition root in :mod:`pypicloud.app`, so the
command-line tools build the service without loading Pyramid's app factory.
The names this module exported before (``make_config``, ``build_service``,
``start_repair``) still import from here, on first use.
"""

from __future__ import annotations

import importlib

from .requestlog import install_record_factory

# Before anything of ours logs: every record gets a request_id (``-`` outside
# requests), so an ini formatter using %(request_id)s works from the first line.
install_record_factory()

__version__ = "2.0.0.dev0"

# Old name -> the module that holds it now.
_MOVED = {
    "build_service": "pypicloud.app",
    "build_services": "pypicloud.app",
    "start_repair": "pypicloud.app",
    "make_config": "pypicloud.webapp",
}


def main(global_config: dict | None = None, **settings) -> object:
    """The WSGI application factory (``paste.app_factory``): see :func:`pypicloud.webapp.main`."""
    from .webapp import main as webapp_main

    return webapp_main(global_config, **settings)


def __getattr__(name: str):
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module 'pypicloud' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
