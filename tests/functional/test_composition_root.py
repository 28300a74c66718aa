"""The composition root (issue 13): services built once at start-up, one typed object
for the views, the spool folder a setting, no strong references in fork hooks.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import sqlalchemy as sa

from pypicloud import sqldb
from pypicloud.app import AppServices, build_service, build_services
from pypicloud.errors import ConfigError
from pypicloud.models import Identity
from pypicloud.settings import Settings
from tests.functional.helpers import auth_headers, base_settings, make_wheel, registry, upload_dist

ADMIN = Identity("admin", frozenset(), is_admin=True)


class _SpoolWatcher(io.BytesIO):
    """An upload body that looks, while being read, at which spool files exist."""

    def __init__(self, data: bytes, folder: Path):
        super().__init__(data)
        self.folder = folder
        self.seen: list[str] = []

    def read(self, size: int = -1) -> bytes:
        self.seen.extend(os.listdir(self.folder))
        return super().read(size)


def test_uploads_spool_in_the_configured_folder(tmp_path):
    settings = base_settings(tmp_path)
    settings["pypi.spool_dir"] = "spool-here"  # relative: to the ini's folder
    service = build_service(Settings(settings, here=str(tmp_path)))
    try:
        filename, data = make_wheel("demo", "1.0")
        body = _SpoolWatcher(data, tmp_path / "spool-here")
        result = service.upload(ADMIN, name="demo", version="1.0", filename=filename, content=body)
        assert result.created
        # The spool file existed in the folder while the body was copied, and is gone after.
        assert any(name.startswith("ppc-upload-") for name in body.seen)
        assert os.listdir(tmp_path / "spool-here") == []
        assert service.spool_dir == str(tmp_path / "spool-here")
    finally:
        service.index.close()


def test_without_the_setting_uploads_spool_in_the_system_temp_folder(tmp_path):
    service = build_service(Settings(base_settings(tmp_path), here=str(tmp_path)))
    try:
        assert service.spool_dir is None
    finally:
        service.index.close()


def test_an_unusable_spool_folder_stops_start_up(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    settings = base_settings(tmp_path)
    settings["pypi.spool_dir"] = str(tmp_path / "a-file" / "spool")
    with pytest.raises(ConfigError, match="pypi.spool_dir"):
        build_service(Settings(settings, here=str(tmp_path)))
    assert not (tmp_path / "index.sqlite").exists()  # stopped before any backend was built


def test_the_app_shares_one_frozen_services_object(app, tmp_path):
    services = registry(app).services
    assert isinstance(services, AppServices)
    with pytest.raises(dataclasses.FrozenInstanceError):
        services.realm = "other"  # type: ignore[misc]
    # The names the registry carried before still read the same objects.
    assert registry(app).service is services.service
    assert registry(app).pages is services.pages
    assert services.simple_pages.cache is services.pages
    assert registry(app).index_cache_control == "max-age=0, must-revalidate"


def test_route_methods_are_computed_when_the_app_is_created(app):
    table = registry(app).routes
    assert table is not None
    assert table.methods["health"] == frozenset({"GET", "HEAD"})
    assert "simple" in table.fixed_segments
    response = app.put("/health", expect_errors=True)
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, HEAD"
    # Answering a request changed nothing: the table is the one made at start-up.
    assert registry(app).routes is table


def test_build_services_makes_every_part_once(tmp_path):
    services = build_services(Settings(base_settings(tmp_path), here=str(tmp_path)))
    try:
        assert services.simple_pages.service is services.service
        assert services.session_lifetime == 12 * 3600
        assert services.package_max_age == 31536000
    finally:
        services.service.index.close()


def test_a_cli_builds_the_service_without_the_wsgi_app_factory(tmp_path):
    code = (
        "import sys\n"
        "from pypicloud.cli import reindex\n"
        "from pypicloud import build_service\n"  # the old name still imports
        "from pypicloud.app import build_service as new\n"
        "assert build_service is new\n"
        "assert 'pypicloud.webapp' not in sys.modules, 'the CLI loaded the WSGI app factory'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2], timeout=120)


def test_the_fork_hook_keeps_no_engine_alive(tmp_path):
    engine = sqldb.create_engine(
        sa.make_url(f"sqlite:///{tmp_path / 'x.sqlite'}"), schema=None, pool_size=1, max_overflow=0
    )
    ref = weakref.ref(engine)
    del engine
    gc.collect()
    assert ref() is None


def test_the_upload_of_the_app_uses_the_spool_setting(make_app, tmp_path):
    spool = tmp_path / "configured-spool"
    app = make_app({"pypi.spool_dir": str(spool)})
    upload_dist(app, make_wheel("demo", "1.0"))
    assert spool.is_dir() and os.listdir(spool) == []
    assert registry(app).service.spool_dir == str(spool)


def test_the_page_cache_keeps_within_its_memory_setting_and_pages_stay_right(make_app):
    """``pypi.page_cache_mb``: pages beyond the budget are rendered again, never wrong."""
    test_app = make_app({"pypi.page_cache_mb": "1"})
    for n in range(3):
        upload_dist(test_app, make_wheel(f"proj{n}", "1.0", payload=os.urandom(64)))
    cache = registry(test_app).services.pages._pages
    assert cache.max_weight == 1024 * 1024
    for _ in range(2):
        for n in range(3):
            page = test_app.get(f"/simple/proj{n}/", headers=auth_headers("admin", Accept="text/html")).text
            assert f"proj{n}-1.0-py3-none-any.whl" in page
    assert 0 < cache.weight <= 1024 * 1024
    with pytest.raises(ConfigError, match="pypi.page_cache_mb"):
        make_app({"pypi.page_cache_mb": "0"})
