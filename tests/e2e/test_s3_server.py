"""A real server on S3 storage (moto server on loopback): twine in, pip and uv out.

Issue 3's end-to-end checks: uploads land at the documented keys with ``prefix`` and
``prepend_hash``; pip and uv install through the server's 302 to a presigned URL
served by the S3 endpoint; a bucket that did not exist is created in eu-west-1.
"""

from __future__ import annotations

import hashlib

import pytest

from tests.e2e.helpers import PYTHON, UV, client_env, index_url, ok, pip_cmd, run, twine_upload
from tests.fixtures.s3 import s3_settings

pytestmark = pytest.mark.e2e


def test_server_on_s3_with_prefix_and_hash(
    server_factory, moto_server, s3_client, s3_bucket_name, dists, tmp_path
):
    settings = s3_settings(
        moto_server,
        s3_bucket_name,
        prefix="pkgs/",
        prepend_hash="true",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    settings |= {"storage.dir": None, "pypi.default_read": "authenticated"}
    srv = server_factory(settings)

    # The bucket did not exist: created in eu-west-1 at start-up.
    location = s3_client.get_bucket_location(Bucket=s3_bucket_name)["LocationConstraint"]
    assert location == "eu-west-1"

    env = client_env(tmp_path / "client")
    wheel, sdist = dists.wheel("1.0"), dists.sdist("1.0")
    ok(twine_upload(srv, [wheel, sdist], env))

    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket_name)["Contents"]}
    for path in (wheel, sdist):
        segment = hashlib.md5(path.name.encode()).hexdigest()[:4]
        assert f"pkgs/{segment}/{dists.canonical}/{path.name}" in keys
    # The PEP 658 companion is an object of its own, keyed the same way.
    companion = wheel.name + ".metadata"
    segment = hashlib.md5(companion.encode()).hexdigest()[:4]
    assert f"pkgs/{segment}/{dists.canonical}/{companion}" in keys

    # Downloads answer 302 to a presigned URL on the S3 endpoint.
    status, headers, _ = srv.request("GET", f"/api/package/{dists.canonical}/{wheel.name}", user="admin")
    assert status == 302
    assert headers["Location"].startswith(moto_server) and "X-Amz-Signature" in headers["Location"]

    pip_target, uv_target = tmp_path / "pip", tmp_path / "uv"
    ok(
        run(
            pip_cmd(
                "install",
                "--no-cache-dir",
                "--target",
                str(pip_target),
                "--index-url",
                index_url(srv),
                "acme.widget==1.0",
            ),
            env,
        )
    )
    ok(
        run(
            [
                UV,
                "pip",
                "install",
                "--no-cache",
                "--target",
                str(uv_target),
                "--python",
                PYTHON,
                "--index-url",
                index_url(srv),
                "acme-widget==1.0",
            ],
            env,
        )
    )
    for target in (pip_target, uv_target):
        assert [p.name for p in target.iterdir() if p.name.endswith(".dist-info")] == [
            "Acme_Widget-1.0.dist-info"
        ]
