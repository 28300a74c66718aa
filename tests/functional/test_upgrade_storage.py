"""Upgrading from pypicloud 1.x: its storage is served where it lies (issue 10, items 1 and 5).

The fixtures under ``tests/fixtures/pypicloud1x/`` are what pypicloud 1.3.12
itself wrote (``make_fixtures.py`` ran it): a file-storage folder in 1.x's
``<project>/<version>/<file>`` + ``<file>.meta`` layout, and the objects
(keys, bytes, user metadata) it put in an S3 bucket. Each test copies them
(the committed files are never touched), starts the app on them with a 1.x
style ini and checks what a 1.x user would see.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
import threading
import urllib.request
from pathlib import Path

import pytest

from pypicloud.cli import migrate
from pypicloud.errors import BackendUnavailable, ConfigError
from pypicloud.storage import legacy_layout
from pypicloud.storage.s3 import key_hash
from pypicloud.storage.s3.manifest_io import manifest_key
from tests.fixtures.s3 import s3_settings
from tests.functional.helpers import JSON_TYPE, auth_headers, make_wheel, service, upload, upload_dist

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pypicloud1x"
DATASET = json.loads((FIXTURES / "dataset.json").read_text(encoding="utf-8"))
S3_OBJECTS = json.loads((FIXTURES / "s3-objects.json").read_text())
# 1.x's default key layout, and storage.prefix = packages/ with prepend_hash = false.
S3_LAYOUTS = {
    name: json.loads((FIXTURES / name).read_text())
    for name in ("s3-objects.json", "s3-objects-prefixed.json")
}
PROJECTS = {
    "alpha": [e for e in DATASET if e["name"] == "alpha"],
    "beta-pkg": [e for e in DATASET if e["name"] == "Beta_Pkg"],
}


def project_of(entry: dict) -> str:
    return "alpha" if entry["name"] == "alpha" else "beta-pkg"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def v1_dir(tmp_path) -> Path:
    """A copy of the storage folder 1.3.12 wrote, where base_settings looks for it."""
    target = tmp_path / "packages"
    shutil.copytree(FIXTURES / "files", target)
    return target


def api_files(app, project: str, user: str = "alice") -> dict[str, dict]:
    response = app.get(f"/api/package/{project}/", headers=auth_headers(user))
    return {f["filename"]: f for f in response.json["packages"]}


def download(app, project: str, filename: str) -> bytes:
    response = app.get(f"/api/package/{project}/{filename}", headers=auth_headers("alice"))
    if response.status_int == 302:  # S3: a signed URL on the loopback moto server
        with urllib.request.urlopen(response.headers["Location"], timeout=10) as fetched:
            return fetched.read()
    return response.body


def assert_serves_the_dataset(app, *, summaries: dict[str, str] | None = None) -> None:
    """Every 1.x file is listed with its version, sha256, uploader and summary, and downloads."""
    simple = app.get("/simple/", headers=auth_headers("alice", Accept=JSON_TYPE))
    assert sorted(p["name"] for p in simple.json["projects"]) == ["alpha", "beta-pkg"]
    for project, entries in PROJECTS.items():
        listed = api_files(app, project)
        assert sorted(listed) == sorted(e["filename"] for e in entries)
        for entry in entries:
            got = listed[entry["filename"]]
            assert got["version"] == entry["version"]
            assert got["sha256"] == entry["sha256"]
            assert got["size"] == entry["size"]
            assert got["uploader"] == entry["uploader"]
            expected = (summaries or {}).get(entry["filename"], entry["summary"])
            assert got["summary"] == expected
            assert got["requires_python"] == entry["requires_python"]
            data = download(app, project, entry["filename"])
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        page = app.get(f"/simple/{project}/", headers=auth_headers("alice", Accept=JSON_TYPE))
        assert sorted(f["filename"] for f in page.json["files"]) == sorted(listed)


# ---------------------------------------------------------------------------
# The fixtures are what 1.3.12 wrote
# ---------------------------------------------------------------------------
def test_the_file_fixture_is_in_1x_layout():
    files = tree(FIXTURES / "files")
    for entry in DATASET:
        rel = f"{project_of(entry)}/{entry['version']}/{entry['filename']}"
        assert hashlib.sha256(files[rel]).hexdigest() == entry["sha256"]
        meta = json.loads(files[rel + ".meta"])
        assert meta["hash_sha256"] == entry["sha256"]
        assert meta["uploader"] == entry["uploader"]
    assert len(files) == 2 * len(DATASET)


# ---------------------------------------------------------------------------
# File storage
# ---------------------------------------------------------------------------
def test_1x_folder_is_served_in_place(v1_dir, make_app, caplog):
    before = tree(v1_dir)
    with caplog.at_level(logging.INFO, logger="pypicloud"):
        app = make_app()
    assert_serves_the_dataset(app)
    assert tree(v1_dir) == before  # nothing moved, renamed or rewritten
    layout = [r.getMessage() for r in caplog.records if r.name.endswith("legacy_layout")]
    assert any(f"{len(DATASET)} package files in pypicloud 1.x's layout" in m for m in layout)
    assert not [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name.endswith("legacy_layout")
    ]


def test_rebuild_keeps_everything_without_reading_the_files(v1_dir, make_app, monkeypatch):
    app = make_app()
    svc = service(app)
    monkeypatch.setattr(svc.storage, "open", lambda *a, **k: pytest.fail("rebuild read bytes"))
    assert svc.rebuild() == len(DATASET)
    app.post("/admin/rebuild", headers=auth_headers("admin"), status=200)
    monkeypatch.undo()
    assert_serves_the_dataset(app)


def test_delete_removes_the_1x_file_and_its_sidecar(v1_dir, make_app):
    app = make_app({"pypi.default_write": "authenticated"})
    app.delete("/api/package/alpha/alpha-1.1-py3-none-any.whl", headers=auth_headers("alice"), status=200)
    assert not (v1_dir / "alpha" / "1.1").exists()  # file, .meta and the empty version folder
    assert (v1_dir / "alpha" / "1.0").is_dir()
    assert "alpha-1.1-py3-none-any.whl" not in api_files(app, "alpha")
    app.get("/api/package/alpha/alpha-1.1-py3-none-any.whl", headers=auth_headers("alice"), status=404)
    # Deleting a whole project takes every version folder with it.
    app.delete("/api/package/beta-pkg/", headers=auth_headers("admin"), status=200)
    assert not (v1_dir / "beta-pkg").exists()
    rebuilt = service(app).rebuild()
    assert rebuilt == 2  # alpha 1.0's wheel and sdist


def test_yank_updates_the_1x_sidecar_for_both_servers(v1_dir, make_app):
    app = make_app()
    name = "alpha-1.0-py3-none-any.whl"
    app.post(
        f"/api/package/alpha/{name}/yank",
        params={"reason": "broken"},
        headers=auth_headers("admin"),
        status=200,
    )
    meta = json.loads((v1_dir / "alpha" / "1.0" / (name + ".meta")).read_text())
    # Still what 1.x reads (its names, no name/version keys it cannot take) ...
    assert meta["hash_sha256"] == DATASET[0]["sha256"] and meta["uploader"] == "alice"
    assert "name" not in meta and "version" not in meta
    assert not (v1_dir / "alpha" / name).exists()  # the file was not moved
    # ... and a rebuild from storage alone keeps the yank.
    service(app).index.replace_all([])
    assert service(app).rebuild() == len(DATASET)
    got = api_files(app, "alpha")[name]
    assert got["yanked"] and got["yanked_reason"] == "broken"
    assert got["uploader"] == "alice" and got["sha256"] == DATASET[0]["sha256"]


def test_new_uploads_beside_1x_files(v1_dir, make_app):
    app = make_app({"pypi.default_write": "authenticated"})
    # The name 1.x holds is taken: the upload conflicts and the 1.x file stays.
    v1_file = v1_dir / "alpha" / "1.0" / "alpha-1.0-py3-none-any.whl"
    before = v1_file.read_bytes()
    response = upload(app, v1_file.name, make_wheel("alpha", "1.0", payload=b"other\n")[1], user="alice")
    assert response.status_int == 409
    assert v1_file.read_bytes() == before
    assert not (v1_dir / "alpha" / v1_file.name).exists()
    # A new release goes into our layout, next to the version folders.
    new = make_wheel("alpha", "1.2")
    upload_dist(app, new, user="alice")
    assert (v1_dir / "alpha" / new[0]).is_file()
    assert set(api_files(app, "alpha")) == {e["filename"] for e in PROJECTS["alpha"]} | {new[0]}
    assert service(app).rebuild() == len(DATASET) + 1


def test_overwrite_of_a_1x_file_replaces_it(v1_dir, make_app):
    app = make_app({"pypi.allow_overwrite": "true"})
    name = "alpha-1.1-py3-none-any.whl"
    filename, data = make_wheel("alpha", "1.1", payload=b"rebuilt\n")
    assert filename == name
    upload_dist(app, (filename, data), user="admin")
    assert not (v1_dir / "alpha" / "1.1").exists()
    assert (v1_dir / "alpha" / name).read_bytes() == data
    assert service(app).rebuild() == len(DATASET)
    assert api_files(app, "alpha")[name]["sha256"] == hashlib.sha256(data).hexdigest()


def test_unexplained_files_are_reported_at_start_up(v1_dir, make_app, caplog):
    (v1_dir / "README.txt").write_text("notes\n")
    deep = v1_dir / "alpha" / "1.0" / "old" / "alpha-0.9.tar.gz"
    deep.parent.mkdir()
    deep.write_bytes(b"x")
    (v1_dir / "beta-pkg" / "2.0" / "beta_pkg-2.0.exe").write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="pypicloud"):
        app = make_app()
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.endswith("legacy_layout")
    ]
    assert len(warnings) == 1, warnings
    assert "3 files are not served" in warnings[0]
    assert str(v1_dir / "README.txt") in warnings[0]  # an example path
    assert_serves_the_dataset(app)  # the real packages are still all there


def test_a_folder_with_nothing_but_unexplained_files_is_not_silently_empty(tmp_path, make_app, caplog):
    root = tmp_path / "packages"
    (root / "alpha" / "1.0" / "nested").mkdir(parents=True)
    (root / "alpha" / "1.0" / "nested" / "alpha-1.0.tar.gz").write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="pypicloud"):
        app = make_app()
    assert app.get("/simple/", headers=auth_headers("admin", Accept=JSON_TYPE)).json["projects"] == []
    assert any("1 files are not served" in r.getMessage() for r in caplog.records)


def test_survey_counts_each_layout(v1_dir, make_app):
    app = make_app()
    upload_dist(app, make_wheel("alpha", "1.2"), user="admin")
    counts = legacy_layout.survey(str(v1_dir))
    # Our upload also stored its PEP 658 companion, which is no package of its own.
    assert counts == {"ours": 1, "v1": len(DATASET), "unexplained": 0, "example": None}


def test_ppc_migrate_copies_a_1x_folder(v1_dir, tmp_path, make_app, capsys):
    source_ini = tmp_path / "v1.ini"
    source_ini.write_text(f"[app:main]\nuse = egg:pypicloud\npypi.storage = file\nstorage.dir = {v1_dir}\n")
    dest = tmp_path / "dest"
    dest_ini = tmp_path / "dest.ini"
    dest_ini.write_text(
        f"[app:main]\nuse = egg:pypicloud\npypi.storage = file\n"
        f"storage.dir = {dest / 'packages'}\n"
        f"db.url = sqlite:///{dest / 'index.sqlite'}\n"
    )
    before = tree(v1_dir)
    code = migrate.main([str(source_ini), str(dest_ini)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"ppc-migrate: {len(DATASET)} copied" in err
    assert f"destination index rebuilt: {len(DATASET)} files" in err
    assert tree(v1_dir) == before  # the source is only read
    # The copies are in our layout with our metadata names.
    for entry in DATASET:
        copied = dest / "packages" / project_of(entry) / entry["filename"]
        assert hashlib.sha256(copied.read_bytes()).hexdigest() == entry["sha256"]
    dest_app = make_app(base=dest)
    assert_serves_the_dataset(dest_app)
    # 1.x kept no upload time; its files' modification time is kept as ours.
    source_app = make_app()
    for project in PROJECTS:
        times = {f: e["last_modified"] for f, e in api_files(source_app, project).items()}
        assert times == {f: e["last_modified"] for f, e in api_files(dest_app, project).items()}


# ---------------------------------------------------------------------------
# S3
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("layout", sorted(S3_LAYOUTS))
def test_the_s3_fixture_is_what_1x_writes(layout):
    fixture = S3_LAYOUTS[layout]
    assert len(fixture["objects"]) == len(DATASET)
    for obj in fixture["objects"]:
        meta = obj["metadata"]
        assert set(meta) >= {"name", "version", "hash-sha256", "hash-md5", "uploader", "summary"}
        assert "sha256" not in meta  # 1.x's names, not ours
        filename = obj["key"].rsplit("/", 1)[1]
        project = "alpha" if filename.startswith("alpha") else "beta-pkg"
        if fixture["settings"]:
            assert obj["key"] == f"packages/{project}/{filename}"
        else:
            assert obj["key"] == f"{key_hash(filename)}/{project}/{filename}"


def load_bucket(s3_client, bucket: str, fixture: dict) -> None:
    """Put exactly the objects 1.3.12 wrote (keys, bytes, user metadata) into ``bucket``."""
    for obj in fixture["objects"]:
        s3_client.put_object(
            Bucket=bucket, Key=obj["key"], Body=base64.b64decode(obj["body"]), Metadata=obj["metadata"]
        )


@pytest.fixture
def v1_bucket(s3_client, s3_bucket) -> str:
    """``s3_bucket`` holding the objects 1.3.12 wrote with its default key layout."""
    load_bucket(s3_client, s3_bucket, S3_OBJECTS)
    return s3_bucket


def s3_summaries() -> dict[str, str]:
    """1.x stripped non-ASCII characters from S3 metadata: the summaries it stored."""
    return {o["key"].rsplit("/", 1)[1]: o["metadata"]["summary"] for o in S3_OBJECTS["objects"]}


@pytest.mark.parametrize("layout", sorted(S3_LAYOUTS))
def test_1x_bucket_is_indexed_from_heads_alone(
    layout, s3_bucket, moto_server, s3_client, make_app, monkeypatch
):
    from pypicloud.storage.s3 import S3Storage

    fixture = S3_LAYOUTS[layout]
    load_bucket(s3_client, s3_bucket, fixture)
    v1_bucket = s3_bucket

    def no_body(*args, **kwargs):
        pytest.fail("a 1.x object was downloaded to index it")

    monkeypatch.setattr(S3Storage, "open", no_body)
    app = make_app({**s3_settings(moto_server, v1_bucket, **fixture["settings"]), "storage.dir": None})
    assert service(app).index.count() == len(DATASET)
    assert service(app).rebuild() == len(DATASET)
    monkeypatch.undo()
    assert_serves_the_dataset(app, summaries=s3_summaries())
    # The bucket is left exactly as 1.x wrote it; a rebuild may only have added
    # its manifest, a key 1.x skips (no metadata, and no package file name).
    keys = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=v1_bucket)["Contents"])
    manifest = manifest_key(service(app).storage)
    if manifest in keys:  # written when the HEADs came 2 s after 1.x's writes (their tags kept)
        assert not s3_client.head_object(Bucket=v1_bucket, Key=manifest)["Metadata"]
    assert [k for k in keys if k != manifest] == sorted(o["key"] for o in fixture["objects"])
    for obj in fixture["objects"]:
        assert s3_client.head_object(Bucket=v1_bucket, Key=obj["key"])["Metadata"] == obj["metadata"]


def test_1x_bucket_delete_and_yank(v1_bucket, moto_server, s3_client, make_app):
    app = make_app({**s3_settings(moto_server, v1_bucket), "storage.dir": None})
    victim = next(o for o in S3_OBJECTS["objects"] if o["key"].endswith("alpha-1.1-py3-none-any.whl"))
    app.delete("/api/package/alpha/alpha-1.1-py3-none-any.whl", headers=auth_headers("admin"), status=200)
    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=v1_bucket)["Contents"]}
    keys.discard(manifest_key(service(app).storage))  # written by the start-up rebuild
    assert victim["key"] not in keys and len(keys) == len(DATASET) - 1
    name = "alpha-1.0-py3-none-any.whl"
    app.post(
        f"/api/package/alpha/{name}/yank",
        params={"reason": "broken"},
        headers=auth_headers("admin"),
        status=200,
    )
    assert service(app).rebuild() == len(DATASET) - 1
    got = api_files(app, "alpha")[name]
    assert got["yanked_reason"] == "broken" and got["uploader"] == "alice"


def test_ppc_migrate_from_a_1x_bucket(v1_bucket, moto_server, tmp_path, make_app, capsys):
    source_ini = tmp_path / "v1.ini"
    lines = ["[app:main]", "use = egg:pypicloud"]
    lines += [f"{k} = {v}" for k, v in s3_settings(moto_server, v1_bucket).items()]
    source_ini.write_text("\n".join(lines) + "\n")
    dest = tmp_path / "dest"
    dest_ini = tmp_path / "dest.ini"
    dest_ini.write_text(
        f"[app:main]\nuse = egg:pypicloud\npypi.storage = file\n"
        f"storage.dir = {dest / 'packages'}\n"
        f"db.url = sqlite:///{dest / 'index.sqlite'}\n"
    )
    code = migrate.main([str(source_ini), str(dest_ini)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"ppc-migrate: {len(DATASET)} copied" in err
    assert_serves_the_dataset(make_app(base=dest), summaries=s3_summaries())


def test_1x_objects_without_hashes_keep_their_uploader(v1_bucket, moto_server, s3_client, make_app):
    """1.x with ``calculate_package_hashes = false`` stored no hashes; older 1.x no metadata."""
    obj = next(o for o in S3_OBJECTS["objects"] if o["key"].endswith("alpha-1.1-py3-none-any.whl"))
    no_hashes = {k: v for k, v in obj["metadata"].items() if not k.startswith("hash-")}
    s3_client.copy_object(
        Bucket=v1_bucket,
        Key=obj["key"],
        MetadataDirective="REPLACE",
        CopySource={"Bucket": v1_bucket, "Key": obj["key"]},
        Metadata=no_hashes,
    )
    old_name, old_data = make_wheel("alpha", "0.9")
    s3_client.put_object(Bucket=v1_bucket, Key=f"{key_hash(old_name)}/alpha/{old_name}", Body=old_data)
    app = make_app({**s3_settings(moto_server, v1_bucket), "storage.dir": None})
    listed = api_files(app, "alpha")
    assert listed["alpha-1.1-py3-none-any.whl"]["uploader"] == "alice"
    assert (
        listed["alpha-1.1-py3-none-any.whl"]["sha256"]
        == hashlib.sha256(base64.b64decode(obj["body"])).hexdigest()
    )
    assert listed[old_name]["version"] == "0.9" and listed[old_name]["uploader"] is None
    assert listed[old_name]["sha256"] == hashlib.sha256(old_data).hexdigest()


# ---------------------------------------------------------------------------
# storage.verify (1.x: boto3's verify, false or a CA bundle path)
# ---------------------------------------------------------------------------
@pytest.fixture
def tls_s3_endpoint(moto_server):
    """An HTTPS endpoint with a self-signed certificate onto the same moto S3 state."""
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    server = make_server(
        "127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True, ssl_context="adhoc"
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(10)


# storage.verify = false asks for exactly what urllib3 warns about (in boto3's request path).
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_reaches_a_self_signed_endpoint(tls_s3_endpoint, v1_bucket, make_app, caplog):
    settings = {**s3_settings(tls_s3_endpoint, v1_bucket), "storage.dir": None}
    # Without it the certificate is refused, and the error says so.
    with pytest.raises(BackendUnavailable, match="(?i)ssl|certificate"):
        make_app(settings)
    with caplog.at_level(logging.WARNING):
        app = make_app({**settings, "storage.verify": "false"})
    assert not [r for r in caplog.records if "storage.verify" in r.getMessage()]
    assert service(app).storage.verify is False
    assert sorted(api_files(app, "alpha")) == sorted(e["filename"] for e in PROJECTS["alpha"])


@pytest.mark.parametrize(
    "text, expected", [("false", False), ("False", False), ("0", False), ("true", True), ("", None)]
)
def test_verify_values(text, expected):
    from pypicloud.settings import Settings
    from pypicloud.storage.s3 import S3Storage

    settings = Settings({"storage.bucket": "bucket", "storage.verify": text}, environ={})
    assert S3Storage.options_from_settings(settings)["verify"] is expected
    assert settings.warn_unknown() == []


def test_verify_ca_bundle_path(tmp_path):
    from pypicloud.settings import Settings
    from pypicloud.storage.s3 import S3Storage

    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings({"storage.bucket": "bucket", "storage.verify": str(bundle)}, environ={})
    assert S3Storage.options_from_settings(settings)["verify"] == str(bundle)
    missing = Settings({"storage.bucket": "bucket", "storage.verify": str(tmp_path / "no.pem")}, environ={})
    with pytest.raises(ConfigError, match="storage.verify"):
        S3Storage.options_from_settings(missing)
