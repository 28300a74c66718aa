"""ppc-gen-password: prompts in a terminal, reads stdin otherwise, prints an argon2id hash."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from pypicloud.access.passwords import verify_password
from pypicloud.cli import gen_password

SCRIPT = Path(sys.executable).parent / "ppc-gen-password"


def run(monkeypatch, capsys, stdin: str, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = gen_password.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_piped_password_loses_only_its_newline(monkeypatch, capsys):
    code, out, err = run(monkeypatch, capsys, "s3cret\n")
    assert code == 0 and err == ""
    hashed = out.strip()
    assert out == hashed + "\n"
    assert hashed.startswith("$argon2id$")
    assert verify_password("s3cret", hashed)
    assert not verify_password("s3cret\n", hashed)


@pytest.mark.parametrize(
    "stdin,password",
    [
        ("s3cret", "s3cret"),
        ("s3cret\r\n", "s3cret"),
        (" s3 cret \t\n", " s3 cret \t"),
        ("s3cret\n\n", "s3cret\n"),
    ],
)
def test_other_whitespace_is_kept(monkeypatch, capsys, stdin, password):
    code, out, _ = run(monkeypatch, capsys, stdin)
    assert code == 0
    assert verify_password(password, out.strip())


@pytest.mark.parametrize("stdin", ["", "\n", "\r\n"])
def test_empty_password_is_an_error(monkeypatch, capsys, stdin):
    code, out, err = run(monkeypatch, capsys, stdin)
    assert code == 1
    assert out == ""
    assert "empty" in err


def test_scheme_option(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "pw\n", "-s", "sha512_crypt")
    assert code == 0
    assert out.startswith("$6$")
    assert verify_password("pw", out.strip())


def test_unknown_scheme_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw\n"))
    with pytest.raises(SystemExit) as info:
        gen_password.main(["--scheme", "md5_crypt"])
    assert info.value.code == 2


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_prompts_twice(monkeypatch, capsys):
    answers = iter(["tty pw ", "tty pw "])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(gen_password.getpass, "getpass", fake_getpass)
    code, out, _ = run_tty(monkeypatch, capsys)
    assert code == 0
    assert len(prompts) == 2
    assert verify_password("tty pw ", out.strip())


def test_terminal_mismatch_fails(monkeypatch, capsys):
    answers = iter(["one", "two"])
    monkeypatch.setattr(gen_password.getpass, "getpass", lambda prompt="": next(answers))
    code, out, err = run_tty(monkeypatch, capsys)
    assert code == 1
    assert out == ""
    assert "do not match" in err


def test_terminal_empty_password_fails(monkeypatch, capsys):
    monkeypatch.setattr(gen_password.getpass, "getpass", lambda prompt="": "")
    code, out, err = run_tty(monkeypatch, capsys)
    assert code == 1 and out == "" and "empty" in err


def run_tty(monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", FakeTTY())
    code = gen_password.main([])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed")
def test_installed_console_script():
    result = subprocess.run(
        [str(SCRIPT)], input="s3cret\n", capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    hashed = result.stdout.strip()
    assert hashed.startswith("$argon2id$")
    assert verify_password("s3cret", hashed)
    assert not verify_password("s3cret\n", hashed)


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed")
def test_installed_console_script_refuses_empty_input():
    result = subprocess.run([str(SCRIPT)], input="", capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr
