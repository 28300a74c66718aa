"""The ini examples of pypicloud 1.x's documentation start unchanged (issue 10).

Besides ``ppc-make-config``'s output (test_upgrade_1x_inis.py) and the access
control sample (docs/access.md, tests/unit/test_access_table.py), 1.x's docs
show two whole-deployment snippets: ``getting_started_advanced`` (S3 storage,
DynamoDB index, ``pypi.fallback = redirect`` without a URL) and ``deploy``
(PasteDeploy's prefix filter for HTTPS behind a proxy). Each is added to 1.x's
dev config as the docs say; only the placeholders (``<region>``, ``<my_bucket>``)
are filled and the AWS endpoints pointed at the test's moto server.
"""

from __future__ import annotations

import base64

import webtest
from paste.deploy import loadapp

from pypicloud.index.dynamo import DynamoIndex
from tests.fixtures.services import unique_name
from tests.functional.helpers import build_app, close_app, make_wheel, upload
from tests.functional.test_upgrade_1x_inis import V1, app_settings

# 1.x docs, topics/getting_started_advanced.rst, as written there.
ADVANCED = """
pypi.fallback = redirect

pypi.db = dynamo
db.region_name = <region>

pypi.storage = s3
storage.bucket = <my_bucket>
storage.region_name = <region>
"""

# 1.x docs, topics/deploy.rst, as written there.
PROXY_PREFIX = """
[filter:proxy-prefix]
use = egg:PasteDeploy#prefix
scheme = https
"""

ADMIN = {"Authorization": "Basic " + base64.b64encode(b"admin:adminpw").decode()}


def test_getting_started_advanced_sample_starts(tmp_path, spool_dir, moto_server, s3_bucket, caplog):
    settings = app_settings("config-1x-dev.ini", tmp_path)
    text = ADVANCED.replace("<region>", "us-east-1").replace("<my_bucket>", s3_bucket)
    for line in text.strip().splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    namespace = unique_name("ppc-docs") + "-"
    # Where the AWS services are (the docs leave it to boto's defaults), nothing else.
    settings.update(
        {"db.endpoint_url": moto_server, "storage.endpoint_url": moto_server, "db.namespace": namespace}
    )
    try:
        with caplog.at_level("WARNING"):
            app = build_app(tmp_path, settings)
        try:
            assert "a typo" not in caplog.text
            filename, data = make_wheel("demo", "1.0")
            upload(app, filename, data, user=None, headers=ADMIN, status=200)
            page = app.get("/simple/demo/")  # dev defaults: everyone reads
            assert filename in page.text
            # fallback = redirect with no URL: unknown projects go to the public index.
            unknown = app.get("/simple/not-stored-here/", status=302)
            assert unknown.headers["Location"].endswith("/simple/not-stored-here/")
            assert app.get("/health").status_int == 200
        finally:
            close_app(app)
    finally:
        cleaner = DynamoIndex(
            endpoint_url=moto_server, region_name="us-east-1", namespace=namespace, create=False
        )
        cleaner.delete_tables()
        cleaner.close()


def test_deploy_proxy_prefix_filter_gives_https_links(tmp_path, spool_dir):
    text = (V1 / "config-1x-dev.ini").read_text(encoding="utf-8")
    text = text.replace("[app:main]\n", "[app:main]\nfilter-with = proxy-prefix\n", 1)
    ini = tmp_path / "config.ini"
    ini.write_text(text + PROXY_PREFIX, encoding="utf-8")
    wsgi = loadapp(f"config:{ini}")
    app = webtest.TestApp(wsgi)
    try:
        filename, data = make_wheel("demo", "1.0")
        upload(app, filename, data, user=None, headers=ADMIN, status=200)
        page = app.get("/simple/demo/")
        assert f'href="https://localhost:80/packages/demo/{filename}#sha256=' in page.text
        assert (tmp_path / "packages" / "demo" / filename).is_file()  # %(here)s as 1.x
    finally:
        close_app(webtest.TestApp(wsgi.app))  # the filter wraps the pyramid router
