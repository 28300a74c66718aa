"""ppc-make-config: flags, prompts only on a terminal, and the text it writes."""

from __future__ import annotations

import configparser
import io
import os
import stat
import sys

import pytest

from pypicloud.access.passwords import verify_password
from pypicloud.cli import make_config
from pypicloud.settings import Settings


def fake_hash(password: str) -> str:
    # gather() takes the hasher as an argument: the unit tests skip argon2's cost.
    return f"$fake${password}"


def answers_for(*argv: str, environ=None, prompter=None):
    args = make_config.build_parser().parse_args([*argv, "out.ini"])
    return make_config.gather(args, environ or {}, prompter, hasher=fake_hash)


def app_settings(text: str, here: str = "/srv/ppc", environ=None) -> Settings:
    """The [app:main] section as the server reads it (PasteDeploy interpolation of here)."""
    parser = configparser.ConfigParser(defaults={"here": here})
    parser.optionxform = str
    parser.read_string(text)
    raw = {k: v for k, v in parser.items("app:main") if k != "here"}
    return Settings(raw, environ=environ or {}, here=here)


def run(monkeypatch, capsys, *argv: str, stdin=None, env=None) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", stdin if stdin is not None else io.StringIO(""))
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    code = make_config.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# Shapes and defaults -------------------------------------------------------
def test_dev_is_the_default_shape_and_matches_the_embedded_default():
    answers = answers_for("--password", "pw")
    text = make_config.render(answers)
    settings = app_settings(text)
    assert settings["pypi.storage"] == "file"
    assert settings["storage.dir"] == "/srv/ppc/data/packages"
    assert settings["db.url"] == "sqlite:////srv/ppc/data/pypicloud.sqlite"
    assert settings["pypi.auth"] == "config"
    assert settings["auth.admins"] == "admin"
    assert settings["user.admin"] == "$fake$pw"
    assert settings["pypi.default_read"] == "everyone"
    assert settings.warn_unknown() == []
    assert "listen = 127.0.0.1:6543" in text
    # A random key signs web UI logins (a new one each time), cookies not HTTPS-only.
    assert len(settings["session.secret"]) >= 32
    assert (
        settings["session.secret"]
        != app_settings(make_config.render(answers_for("--password", "pw")))["session.secret"]
    )
    assert "session.secure" not in settings


@pytest.mark.parametrize(
    "shape,listen,read",
    [
        ("--prod", "listen = 127.0.0.1:6543", "authenticated"),
        ("--docker", "listen = 0.0.0.0:6543", "authenticated"),
    ],
)
def test_production_shapes(shape, listen, read):
    text = make_config.render(answers_for(shape, "--password", "pw"))
    settings = app_settings(text)
    assert listen in text
    assert settings["storage.dir"] == "/var/lib/pypicloud/packages"
    assert settings["db.url"] == "sqlite:////var/lib/pypicloud/pypicloud.sqlite"
    assert settings["pypi.default_read"] == read
    assert settings.get_bool("session.secure") is (shape == "--prod")  # behind its TLS proxy
    assert settings.warn_unknown() == []


def test_only_one_shape():
    with pytest.raises(SystemExit) as info:
        make_config.build_parser().parse_args(["--dev", "--docker", "out.ini"])
    assert info.value.code == 2


def test_host_port_and_read_flags():
    answers = answers_for(
        "--docker", "--host", "::", "--port", "8080", "--anonymous-read", "--password", "pw"
    )
    text = make_config.render(answers)
    assert "listen = [::]:8080" in text
    assert app_settings(text)["pypi.default_read"] == "everyone"
    with pytest.raises(make_config.UsageError, match="--port"):
        answers_for("--port", "70000", "--password", "pw")


# Storage ---------------------------------------------------------------------
def test_s3_options_are_written_and_checked():
    answers = answers_for(
        "--bucket",
        "my-packages",
        "--region",
        "eu-west-1",
        "--endpoint-url",
        "http://127.0.0.1:9000",
        "--prefix",
        "pkgs/",
        "--password",
        "pw",
    )
    settings = app_settings(make_config.render(answers))
    assert settings["pypi.storage"] == "s3"
    assert settings["storage.bucket"] == "my-packages"
    assert settings["storage.region_name"] == "eu-west-1"
    assert settings["storage.endpoint_url"] == "http://127.0.0.1:9000"
    assert settings["storage.prefix"] == "pkgs/"
    assert settings.get_bool("storage.create_bucket") is True  # --dev may create it
    assert "storage.dir" not in settings
    assert settings.warn_unknown() == []


def test_s3_values_are_validated_like_the_server_does():
    with pytest.raises(make_config.UsageError, match="storage.bucket"):
        answers_for("--bucket", "x", "--password", "pw")
    with pytest.raises(make_config.UsageError, match="storage.endpoint_url"):
        answers_for("--bucket", "okay-bucket", "--endpoint-url", "ftp://nope", "--password", "pw")
    with pytest.raises(make_config.UsageError, match="both"):
        answers_for("--bucket", "okay-bucket", "--aws-access-key-id", "AKIA", "--password", "pw")
    with pytest.raises(make_config.UsageError, match="--storage s3"):
        answers_for("--storage", "file", "--bucket", "okay-bucket", "--password", "pw")
    with pytest.raises(make_config.UsageError, match="--dir"):
        answers_for("--storage", "s3", "--bucket", "okay-bucket", "--dir", "x", "--password", "pw")


def test_production_s3_does_not_create_buckets():
    settings = app_settings(
        make_config.render(answers_for("--prod", "--bucket", "my-packages", "--password", "pw"))
    )
    assert settings.get_bool("storage.create_bucket", True) is False


def test_percent_signs_in_values_survive_ini_interpolation():
    answers = answers_for(
        "--dir", "/data/100%/pkgs", "--db-url", "postgresql://u:p%40ss@db:5432/ppc", "--password", "pw"
    )
    settings = app_settings(make_config.render(answers))
    assert settings["storage.dir"] == "/data/100%/pkgs"
    assert settings["db.url"] == "postgresql+psycopg://u:p%40ss@db:5432/ppc"


def test_relative_dir_is_kept_relative_to_the_ini():
    settings = app_settings(make_config.render(answers_for("--dir", "pkgs", "--password", "pw")))
    assert settings.path(settings["storage.dir"]) == "/srv/ppc/pkgs"


def test_values_must_fit_on_one_line():
    with pytest.raises(make_config.UsageError, match="line breaks"):
        answers_for("--dir", "a\nb", "--password", "pw")


# Index -------------------------------------------------------------------------
def test_db_kind_is_guessed_from_the_url():
    answers = answers_for("--db-url", "postgres://u@db/ppc", "--password", "pw")
    assert answers.db == "postgres"
    text = make_config.render(answers)
    settings = app_settings(text)
    assert settings["pypi.db"] == "sql"
    assert settings["db.url"] == "postgresql+psycopg://u@db/ppc"
    assert settings["db.pool_size"] == "8"  # the --dev thread count
    redis = app_settings(make_config.render(answers_for("--db", "redis", "--password", "pw")))
    assert redis["pypi.db"] == "redis"
    assert redis["db.url"] == "redis://127.0.0.1:6379/0"
    assert redis.warn_unknown() == []


def test_db_url_contradictions():
    with pytest.raises(make_config.UsageError, match="redis URL but --db is postgres"):
        answers_for("--db", "postgres", "--db-url", "redis://h/0", "--password", "pw")
    with pytest.raises(make_config.UsageError, match="not a postgresql"):
        answers_for("--db-url", "mysql://h/db", "--password", "pw")
    with pytest.raises(make_config.UsageError, match="--db postgres or --db redis"):
        answers_for("--db-url-env", "DBURL", "--password", "pw")


def test_postgres_url_as_environment_reference():
    answers = answers_for("--db", "postgres", "--db-url-env", "DBURL", "--password", "pw")
    text = make_config.render(answers)
    assert "db.url = ${DBURL}" in text
    assert "DBURL" in answers.env_vars
    settings = app_settings(text, environ={"DBURL": "postgresql+psycopg://u:pw@db/ppc"})
    assert settings["db.url"] == "postgresql+psycopg://u:pw@db/ppc"


# Admin and secrets ---------------------------------------------------------------
def test_password_from_the_environment_is_hashed():
    answers = answers_for("--admin", "root", "--password-env", "PW", environ={"PW": "s3cret"})
    settings = app_settings(make_config.render(answers))
    assert settings["auth.admins"] == "root"
    assert settings["user.root"] == "$fake$s3cret"
    with pytest.raises(make_config.UsageError, match="not set"):
        answers_for("--password-env", "NOPE")


def test_env_secrets_writes_references_and_lists_them():
    answers = answers_for("--docker", "--db", "postgres", "--env-secrets")
    text = make_config.render(answers)
    assert "user.admin = ${PYPICLOUD_ADMIN_HASH}" in text
    assert "db.url = ${PYPICLOUD_DB_URL}" in text
    assert "session.secret = ${PYPICLOUD_SESSION_SECRET}" in text
    assert set(answers.env_vars) == {"PYPICLOUD_ADMIN_HASH", "PYPICLOUD_DB_URL", "PYPICLOUD_SESSION_SECRET"}
    assert "#   PYPICLOUD_ADMIN_HASH:" in text
    assert not answers.literal_secrets
    settings = app_settings(
        text,
        environ={
            "PYPICLOUD_ADMIN_HASH": "$argon2id$x",
            "PYPICLOUD_DB_URL": "postgresql+psycopg://db/x",
            "PYPICLOUD_SESSION_SECRET": "s" * 32,
        },
    )
    assert settings["user.admin"] == "$argon2id$x"
    assert settings.warn_unknown() == []


def test_any_value_may_be_an_environment_reference():
    answers = answers_for(
        "--bucket",
        "${BUCKET}",
        "--aws-access-key-id",
        "${KEY}",
        "--aws-secret-access-key",
        "${SECRET}",
        "--admin-hash-env",
        "HASH",
        "--session-secret-env",
        "SESSION",
    )
    assert {"BUCKET", "KEY", "SECRET", "HASH", "SESSION"} <= set(answers.env_vars)
    assert not answers.literal_secrets
    text = make_config.render(answers)
    settings = app_settings(
        text, environ={"BUCKET": "b-b-b", "KEY": "k", "SECRET": "s", "HASH": "$h", "SESSION": "x" * 20}
    )
    assert settings["storage.bucket"] == "b-b-b"
    assert settings["storage.aws_secret_access_key"] == "s"


def test_one_password_source_only():
    with pytest.raises(make_config.UsageError, match="only one"):
        answers_for("--password", "a", "--admin-hash", "$argon2id$x")
    with pytest.raises(make_config.UsageError, match="ppc-gen-password"):
        answers_for("--admin-hash", "plaintext")
    with pytest.raises(make_config.UsageError, match="admin user name"):
        answers_for("--admin", "bad name", "--password", "pw")
    with pytest.raises(make_config.UsageError, match="empty"):
        answers_for("--password", "")


def test_missing_answers_without_a_terminal_are_errors():
    with pytest.raises(make_config.UsageError, match="not a terminal"):
        answers_for()
    with pytest.raises(make_config.UsageError, match="--bucket"):
        answers_for("--storage", "s3", "--password", "pw")
    with pytest.raises(make_config.UsageError, match="--db-url"):
        answers_for("--db", "postgres", "--password", "pw")


class ScriptedPrompter:
    def __init__(self, answers, password="typed pw"):
        self.answers = list(answers)
        self.questions: list[str] = []
        self.password_value = password

    def ask(self, question, default=None):
        self.questions.append(question)
        answer = self.answers.pop(0)
        return answer or (default or "")

    def password(self, question):
        self.questions.append(question)
        return self.password_value


def test_terminal_asks_only_for_what_is_missing():
    prompter = ScriptedPrompter(["my-bucket", "postgresql://u:pw@db/x", ""])
    answers = answers_for("--db", "postgres", "--storage", "s3", prompter=prompter)
    assert prompter.questions == [
        "S3 bucket",
        "PostgreSQL URL (postgresql+psycopg://user:password@host:5432/db)",
        "Admin user name",
        "Password for admin",
    ]
    assert answers.bucket == "my-bucket"
    assert answers.db_url == "postgresql+psycopg://u:pw@db/x"
    assert answers.admin_hash == "$fake$typed pw"
    assert answers.literal_secrets

    quiet = ScriptedPrompter([])
    answers_for("--password", "given", prompter=quiet)
    assert quiet.questions == []


# main(): files, modes, exit codes ------------------------------------------------------
def test_main_writes_a_private_file_with_an_argon2id_hash(tmp_path, monkeypatch, capsys):
    out = tmp_path / "server.ini"
    code, stdout, err = run(monkeypatch, capsys, "--password-env", "PW", str(out), env={"PW": "s3cret"})
    assert code == 0, err
    assert f"wrote {out}" in err and f"pserve {out}" in err
    settings = app_settings(out.read_text(), here=str(tmp_path))
    assert settings["user.admin"].startswith("$argon2id$")
    assert verify_password("s3cret", settings["user.admin"])
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["server.ini"]  # no temp file left


def test_main_refuses_to_overwrite_without_force(tmp_path, monkeypatch, capsys):
    out = tmp_path / "server.ini"
    out.write_text("mine\n")
    code, _, err = run(monkeypatch, capsys, "--env-secrets", str(out))
    assert code == 1
    assert "exists" in err and "--force" in err
    assert out.read_text() == "mine\n"
    code, _, err = run(monkeypatch, capsys, "--env-secrets", "--force", str(out))
    assert code == 0, err
    assert "user.admin = ${PYPICLOUD_ADMIN_HASH}" in out.read_text()
    assert "set PYPICLOUD_ADMIN_HASH" in err
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644 & ~umask  # no literal secret inside


def test_main_without_terminal_never_waits_and_exits_2(tmp_path, monkeypatch, capsys):
    out = tmp_path / "server.ini"
    code, stdout, err = run(monkeypatch, capsys, str(out))
    assert code == 2
    assert "no password for the admin user 'admin'" in err
    assert "--password-env" in err
    assert not out.exists()


def test_main_to_stdout(monkeypatch, capsys):
    code, out, err = run(monkeypatch, capsys, "--docker", "--env-secrets", "-")
    assert code == 0, err
    assert out.startswith("# pypicloud configuration: Docker container.")
    assert "listen = 0.0.0.0:6543" in out
    environ = {"PYPICLOUD_ADMIN_HASH": "$h", "PYPICLOUD_SESSION_SECRET": "s" * 20}
    assert app_settings(out, environ=environ).warn_unknown() == []


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_main_prompts_on_a_terminal(tmp_path, monkeypatch, capsys):
    out = tmp_path / "server.ini"
    passwords = iter(["typed", "typed"])
    monkeypatch.setattr(make_config.getpass, "getpass", lambda prompt="": next(passwords))
    code, _, err = run(monkeypatch, capsys, str(out), stdin=FakeTTY("boss\n"))
    assert code == 0, err
    assert "Admin user name [admin]: " in err
    settings = app_settings(out.read_text(), here=str(tmp_path))
    assert settings["auth.admins"] == "boss"
    assert verify_password("typed", settings["user.boss"])


def test_main_terminal_password_mismatch(tmp_path, monkeypatch, capsys):
    passwords = iter(["one", "two"])
    monkeypatch.setattr(make_config.getpass, "getpass", lambda prompt="": next(passwords))
    code, _, err = run(monkeypatch, capsys, "--admin", "a", str(tmp_path / "x.ini"), stdin=FakeTTY(""))
    assert code == 2
    assert "do not match" in err
    assert not (tmp_path / "x.ini").exists()


@pytest.mark.parametrize("shape", ["--dev", "--prod", "--docker"])
def test_server_section_is_valid_for_waitress(shape):
    from waitress.adjustments import Adjustments

    parser = configparser.ConfigParser(defaults={"here": "/srv"})
    parser.optionxform = str
    parser.read_string(make_config.render(answers_for(shape, "--password", "pw")))
    options = {k: v for k, v in parser.items("server:main") if k not in ("use", "here")}
    assert parser.get("server:main", "use") == "egg:waitress#main"
    adjustments = Adjustments(**options)  # raises on an unknown or bad option
    assert {sockaddr[1] for *_, sockaddr in adjustments.listen} == {6543}
    assert adjustments.threads == (8 if shape == "--dev" else 16)


# Found in review ------------------------------------------------------------------
def test_a_reference_in_dir_is_listed_as_a_variable_to_set():
    # "Any value given as ${VAR} ... the tool prints the variables that must be set":
    # --dir is a value like the others (the server expands it at start-up).
    answers = answers_for("--dir", "${PKG_DIR}/packages", "--password", "pw")
    assert "PKG_DIR" in answers.env_vars
    text = make_config.render(answers)
    assert "#   PKG_DIR:" in text
    assert app_settings(text, environ={"PKG_DIR": "/data"})["storage.dir"] == "/data/packages"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://db/ppc?user=u&password=s3cret",
        "redis://127.0.0.1:6379/0?password=s3cret",
    ],
)
def test_a_database_password_in_the_url_query_makes_the_file_private(url):
    answers = answers_for("--db-url", url, "--admin-hash-env", "HASH", "--session-secret-env", "SESSION")
    assert answers.literal_secrets
    reference = answers_for(
        "--db-url",
        url.replace("s3cret", "${DB_PW}"),
        "--admin-hash-env",
        "HASH",
        "--session-secret-env",
        "SESSION",
    )
    assert "DB_PW" in reference.env_vars


def test_a_file_where_the_folder_should_be_is_not_reported_as_an_existing_output(
    tmp_path, monkeypatch, capsys
):
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "server.ini"
    code, _, err = run(monkeypatch, capsys, "--env-secrets", "--force", str(out))
    assert code == 1
    assert "cannot write" in err
    assert "use --force" not in err  # --force was given; it would not help
