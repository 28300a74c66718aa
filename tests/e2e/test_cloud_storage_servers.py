"""Real servers on gcs (gcp-storage-emulator), azure-blob (Azurite) and cloudfront storage.

For each backend, two server processes share the bucket/container and one index
(the scale-out shape): twine uploads through one, pip installs through the other,
following the 302 to the backend's signed URL (GCS V4, Azure SAS, CloudFront canned
policy checked by the local stand-in).
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import client_env, index_url, ok, pip_cmd, run, twine_upload
from tests.fixtures.azurite import azure_settings
from tests.fixtures.gcs import gcs_settings
from tests.fixtures.s3 import s3_settings

pytestmark = pytest.mark.e2e

MARKER = {"gcs": "X-Goog-Signature=", "azure-blob": "sig=", "cloudfront": "Signature="}


def backend_settings(kind: str, request, tmp_path) -> dict:
    if kind == "gcs":
        return gcs_settings(
            request.getfixturevalue("gcs_emulator"),
            request.getfixturevalue("gcs_bucket_name"),
            request.getfixturevalue("gcs_service_account")[0],
            prefix="pkgs/",
        )
    if kind == "azure-blob":
        return azure_settings(
            request.getfixturevalue("azurite_server"), request.getfixturevalue("azure_container")
        )
    key_id, pem, _ = request.getfixturevalue("cloudfront_keys")
    key_file = tmp_path / "cf.pem"
    key_file.write_bytes(pem)
    return s3_settings(
        request.getfixturevalue("moto_server"),
        request.getfixturevalue("s3_bucket"),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) | {
        "pypi.storage": "cloudfront",
        "storage.cloud_front_domain": request.getfixturevalue("cloudfront_distribution"),
        "storage.cloud_front_key_id": key_id,
        "storage.cloud_front_key_file": str(key_file),
    }


@pytest.mark.parametrize("kind", ["gcs", "azure-blob", "cloudfront"])
def test_twine_upload_through_one_server_pip_install_through_another(
    kind, request, server_factory, dists, tmp_path
):
    settings = backend_settings(kind, request, tmp_path) | {
        "storage.dir": None,
        "pypi.default_read": "authenticated",
        "db.url": f"sqlite:///{tmp_path / 'shared-index.sqlite'}",
    }
    first = server_factory(settings, name="first")
    second = server_factory(settings, name="second")

    env = client_env(tmp_path / "client")
    wheel, sdist = dists.wheel("1.0"), dists.sdist("1.0")
    ok(twine_upload(first, [wheel, sdist], env))

    status, headers, _ = second.request("GET", f"/api/package/{dists.canonical}/{wheel.name}", user="admin")
    assert status == 302 and MARKER[kind] in headers["Location"]

    target = tmp_path / "pip"
    ok(
        run(
            pip_cmd(
                "install",
                "--no-cache-dir",
                "--target",
                str(target),
                "--index-url",
                index_url(second),
                "acme.widget==1.0",
            ),
            env,
        )
    )
    assert [p.name for p in target.iterdir() if p.name.endswith(".dist-info")] == [
        "Acme_Widget-1.0.dist-info"
    ]
    # Both processes hand out the same cached signed URL (the cache lives in the index).
    again = first.request("GET", f"/api/package/{dists.canonical}/{wheel.name}", user="admin")
    assert again[1]["Location"] == headers["Location"]
