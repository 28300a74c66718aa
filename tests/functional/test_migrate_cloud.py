"""ppc-migrate between the file storage and the gcs / azure-blob backends (issue 14).

file -> gcs (gcp-storage-emulator) -> azure-blob (Azurite) -> file: each destination
then serves every source file with the same bytes, hashes and PEP 658 metadata.
The tool only uses the storage contract, so any two backends work the same way.
"""

from __future__ import annotations

from tests.fixtures.azurite import azure_settings
from tests.fixtures.gcs import gcs_settings
from tests.functional.test_migrate import (
    DISTS,
    assert_same_index,
    deployment,
    run,  # noqa: F401
    source,  # noqa: F401
    stored_names,
)


def test_file_to_gcs_to_azure_to_file(
    source,
    tmp_path,
    make_app,
    capsys,
    gcs_emulator,
    gcs_bucket_name,
    gcs_service_account,
    azurite_server,
    azure_container,
):
    source_app, source_ini = source
    gcs = {
        **gcs_settings(gcs_emulator, gcs_bucket_name, gcs_service_account[0], prefix="pkgs/"),
        "storage.dir": None,
    }
    azure = {**azure_settings(azurite_server, azure_container), "storage.dir": None}
    ini_gcs, _ = deployment(tmp_path, "gcs", gcs)
    ini_azure, _ = deployment(tmp_path, "azure", azure)
    ini_file, _ = deployment(tmp_path, "back")

    code, _, err = run(capsys, source_ini, ini_gcs)  # file -> GCS (bucket created)
    assert code == 0, err
    total = 2 * len(DISTS)  # each file and its .metadata companion
    assert f"ppc-migrate: {total} copied" in err
    code, _, err = run(capsys, "--jobs", "2", ini_gcs, ini_azure)  # GCS -> Azure
    assert code == 0, err
    assert f"ppc-migrate: {total} copied" in err
    code, _, err = run(capsys, ini_azure, ini_file)  # Azure -> file
    assert code == 0, err

    for overrides, base in ((gcs, tmp_path / "gcs"), (azure, tmp_path / "azure"), ({}, tmp_path / "back")):
        dest_app = make_app(overrides, base=base)
        assert_same_index(source_app, dest_app)
    assert stored_names(tmp_path / "back" / "packages") == stored_names(tmp_path / "source" / "packages")
    # Run again: everything already present at the destination.
    code, _, err = run(capsys, ini_gcs, ini_azure)
    assert code == 0, err
    assert f"{total} already present" in err


def test_same_gcs_or_azure_place_is_refused_and_dry_run_to_a_missing_container(
    source,
    tmp_path,
    capsys,
    gcs_emulator,
    gcs_bucket_name,
    gcs_service_account,
    azurite_server,
    azure_container,
):
    from tests.fixtures.azurite import service_client

    _, source_ini = source
    gcs = {**gcs_settings(gcs_emulator, gcs_bucket_name, gcs_service_account[0]), "storage.dir": None}
    ini_a, _ = deployment(tmp_path, "gcs-a", gcs)
    ini_b, _ = deployment(tmp_path, "gcs-b", gcs)
    code, _, err = run(capsys, source_ini, ini_a)
    assert code == 0, err
    code, _, err = run(capsys, ini_a, ini_b)
    assert code == 2 and "use the same storage" in err

    azure = {**azure_settings(azurite_server, azure_container), "storage.dir": None}
    ini_azure, _ = deployment(tmp_path, "azure", azure)
    code, _, err = run(capsys, "--dry-run", ini_a, ini_azure)
    assert code == 0, err
    client = service_client(azurite_server)
    assert not client.get_container_client(azure_container).exists()  # nothing created
    client.close()
