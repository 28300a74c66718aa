"""A page's file URLs are built once per page from one route URL; they must be the
very URLs Pyramid's route would give, for any name, host and mount point."""

from __future__ import annotations

import pytest
from pyramid import testing
from pyramid.request import Request

from pypicloud.models import FileRecord
from pypicloud.results import FileLinks
from pypicloud.views.simple import file_url, packages_base

NAMES = [
    ("demo", "demo-1.0-py3-none-any.whl"),
    ("odd-name", "odd_name-1.0+local.7-py3-none-any.whl"),
    ("spaced", "spaced 1.0%20 #?.tar.gz"),
    ("unicode", "ünïcode-1.0.tar.gz"),
    ("at", "a@b:c&d$e,f;g=h.zip"),
]


@pytest.fixture
def config():
    config = testing.setUp()
    config.add_route("packages.file", "/packages/{project}/{filename}")
    yield config
    testing.tearDown()


@pytest.mark.parametrize("script_name", ["", "/pypi", "/mount point"])
@pytest.mark.parametrize(("project", "filename"), NAMES)
def test_built_url_is_the_route_url(config, script_name, project, filename):
    request = Request.blank("/simple/x/", base_url="https://index.example:8443" + script_name)
    request.registry = config.registry
    record = FileRecord(
        project=project,
        name=project,
        version="1.0",
        filename=filename,
        key=f"{project}/{filename}",
        size=1,
        sha256="0" * 64,
    )
    links = FileLinks(storage_urls={}, offers_metadata=True)
    expected = request.route_url("packages.file", project=project, filename=filename)
    assert file_url(request, record, links, packages_base(request)) == expected
    assert expected.startswith("https://index.example:8443" + script_name.replace(" ", "%20") + "/packages/")
