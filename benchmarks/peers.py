"""The comparison targets of issue 17: other package indexes, each in a venv of its own.

* devpi-server 6.20 (``devpi-init`` without the mirror of the public index; waitress,
  ``--threads``), uploads to the index ``root/bench`` with Basic auth as ``root``;
* pypiserver 2.4 (its WSGI app on waitress, an htpasswd file written with passlib,
  authentication for ``update``), uploads to ``/``;
* pypicloud 1.3.12 (``pserve`` on waitress, file storage, SQLite; Python 3.10 with
  ``SQLAlchemy<2``, ``bcrypt<4``, as ``tests/fixtures/pypicloud1x`` runs it),
  uploads to ``/simple/``.

The venvs are made once under ``.bench-peers/`` at the repository root (git-ignored; ``--peers-cache``
elsewhere) with ``pip install name==version`` through pip's configured index; a
target that cannot be installed or started is skipped with its reason. Every server
binds 127.0.0.1 on a free port, has 8 threads (``--threads``), and is stopped by its
PID. The same user name and password upload to every target.

Alone (install, start each, upload one file, stop): ``python -m benchmarks.peers``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from .server import ADMIN_PASSWORD, ADMIN_USER, REPO, Server, free_port

CACHE = os.path.join(REPO, ".bench-peers")  # not in benchmarks/, which tests and tools scan
PY310 = "/root/.pyenv/versions/3.10.13/bin/python"


@dataclass(frozen=True)
class Spec:
    """How to install one peer."""

    key: str
    label: str
    requirements: tuple[str, ...]
    python: str  # the interpreter its venv is made from


SPECS = (
    Spec("devpi", "devpi-server 6.20", ("devpi-server==6.20.0",), sys.executable),
    Spec("pypiserver", "pypiserver 2.4", ("pypiserver==2.4.0", "passlib", "waitress"), sys.executable),
    Spec(
        "pypicloud1",
        "pypicloud 1.3.12",
        ("pypicloud==1.3.12", "SQLAlchemy<2", "bcrypt<4", "waitress"),
        PY310,
    ),
)


def _base_python(python: str) -> str:
    """The interpreter a venv is made from (not this venv's own ``python``)."""
    if python == sys.executable:
        return getattr(sys, "_base_executable", sys.executable)
    return python


def install(spec: Spec, cache: str = CACHE, log=print) -> str:
    """The venv of ``spec`` (made and filled once); raises ``RuntimeError`` with the reason."""
    venv = os.path.join(cache, spec.key)
    marker = os.path.join(venv, ".installed")
    wanted = "\n".join(spec.requirements)
    if os.path.exists(marker) and open(marker).read() == wanted:
        return venv
    python = _base_python(spec.python)
    if not os.path.exists(python):
        raise RuntimeError(f"{python} not found ({spec.label} needs it)")
    log(f"  installing {spec.label} into {os.path.relpath(venv, REPO)}")
    os.makedirs(cache, exist_ok=True)
    steps = [
        [python, "-m", "venv", "--clear", venv],
        [os.path.join(venv, "bin", "pip"), "install", "-q", *spec.requirements],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step[:3])} failed: {(done.stderr or done.stdout)[-800:]}")
    with open(marker, "w") as handle:
        handle.write(wanted)
    return venv


class Process(Server):
    """A server child started from any command line (readiness, RSS, stop: :class:`Server`)."""

    def __init__(self, command: list[str], port: int, log_path: str, env: dict | None = None):
        super().__init__("", port, log_path)
        self.command, self.env = command, env

    def start(self) -> Process:
        log = open(self.log_path, "ab")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command,
            cwd=os.path.dirname(self.log_path),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        return self


@dataclass
class Target:
    """A server under test and where its URLs are."""

    key: str
    label: str
    server: Server
    ready_path: str
    upload_path: str = "/simple/"
    simple_prefix: str = "/simple/"
    info: dict = field(default_factory=dict)

    def page_path(self, project: str) -> str:
        return f"{self.simple_prefix}{project}/"

    @property
    def port(self) -> int:
        return self.server.port

    def start(self, timeout: float = 180) -> Target:
        """Start the server; ``timeout`` is longer after seeding (it may rebuild its index)."""
        self.server.start().wait_ready(self.ready_path, timeout=timeout)
        return self


def _quiet_env(venv: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "")
    return env


def _run(command: list[str], env: dict, what: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {(done.stderr or done.stdout)[-800:]}")
    return done.stdout


def _request(port: int, method: str, path: str, body: dict) -> None:
    token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def devpi(venv: str, workdir: str, threads: int) -> Target:
    """devpi-server with the user ``admin`` (the upload user) and its index ``admin/bench``."""
    env, bin_dir = _quiet_env(venv), os.path.join(venv, "bin")
    serverdir = os.path.join(workdir, "devpi")
    if not os.path.exists(serverdir):
        _run(
            [os.path.join(bin_dir, "devpi-init"), "--serverdir", serverdir, "--no-root-pypi"],
            env,
            "devpi-init",
        )
    port = free_port()
    command = [os.path.join(bin_dir, "devpi-server"), "--serverdir", serverdir]
    command += ["--host", "127.0.0.1", "--port", str(port), "--threads", str(threads)]
    command += ["--max-request-body-size", str(4 * 1024**3)]
    server = Process(command, port, os.path.join(workdir, "devpi.log"), env)
    target = Target("devpi", "devpi-server 6.20", server, "/+api", "/admin/bench/", "/admin/bench/+simple/")
    target.info["setup"] = lambda: _devpi_index(port)
    return target


def _devpi_index(port: int) -> None:
    """The upload user and its index (anyone may create a user; the user makes its index)."""
    try:
        _request(port, "PUT", f"/{ADMIN_USER}", {"password": ADMIN_PASSWORD})
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # made in an earlier start
            raise
        return
    _request(port, "PUT", f"/{ADMIN_USER}/bench", {"type": "stage", "bases": [], "volatile": True})


_PYPISERVER_MAIN = """
import pathlib, sys, pypiserver, waitress
root, htpasswd, port, threads = sys.argv[1:5]
app = pypiserver.app(roots=[pathlib.Path(root)], password_file=htpasswd, authenticate=["update"],
                     disable_fallback=True)
waitress.serve(app, host="127.0.0.1", port=int(port), threads=int(threads),
               max_request_body_size=4294967296, _quiet=True)
"""

_HTPASSWD = """
import sys
from passlib.apache import HtpasswdFile
ht = HtpasswdFile(sys.argv[1], new=True)
ht.set_password(sys.argv[2], sys.argv[3])
ht.save()
"""


def pypiserver(venv: str, workdir: str, threads: int) -> Target:
    env, python = _quiet_env(venv), os.path.join(venv, "bin", "python")
    root = os.path.join(workdir, "pypiserver", "packages")
    os.makedirs(root, exist_ok=True)
    htpasswd = os.path.join(workdir, "pypiserver", "htpasswd")
    _run([python, "-I", "-c", _HTPASSWD, htpasswd, ADMIN_USER, ADMIN_PASSWORD], env, "htpasswd")
    port = free_port()
    command = [python, "-I", "-c", _PYPISERVER_MAIN, root, htpasswd, str(port), str(threads)]
    server = Process(command, port, os.path.join(workdir, "pypiserver.log"), env)
    target = Target("pypiserver", "pypiserver 2.4", server, "/simple/", "/")
    target.info["packages"] = root  # flat: it lists this folder on every request
    return target


def _v1_ini(path: str, folder: str, port: int, threads: int, password_hash: str) -> None:
    lines = [
        "[app:main]",
        "use = egg:pypicloud",
        "pyramid.reload_templates = false",
        "pypi.default_read = everyone",
        "pypi.default_write = authenticated",
        "pypi.storage = file",
        f"storage.dir = {folder}/packages",
        f"db.url = sqlite:///{folder}/db.sqlite",
        f"auth.admins = {ADMIN_USER}",
        f"user.{ADMIN_USER} = {password_hash}",
        f"session.encrypt_key = {base64.b64encode(os.urandom(32)).decode()}",
        f"session.validate_key = {os.urandom(16).hex()}",
        "session.secure = false",
        "",
        "[server:main]",
        "use = egg:waitress#main",
        "host = 127.0.0.1",
        f"port = {port}",
        f"threads = {threads}",
        "max_request_body_size = 4294967296",
        "",
    ]
    with open(path, "w") as handle:
        handle.write("\n".join(lines))


def pypicloud1(venv: str, workdir: str, threads: int) -> Target:
    env, python = _quiet_env(venv), os.path.join(venv, "bin", "python")
    folder = os.path.join(workdir, "pypicloud1")
    os.makedirs(folder, exist_ok=True)
    code = (
        "import sys; from pypicloud.access.base import get_pwd_context; "
        "print(get_pwd_context().hash(sys.argv[1]))"
    )
    password_hash = _run([python, "-I", "-c", code, ADMIN_PASSWORD], env, "1.x password hash").strip()
    port = free_port()
    ini = os.path.join(folder, "server.ini")
    _v1_ini(ini, folder, port, threads, password_hash)
    server = Process(
        [os.path.join(venv, "bin", "pserve"), ini], port, os.path.join(workdir, "pypicloud1.log"), env
    )
    target = Target("pypicloud1", "pypicloud 1.3.12", server, "/health")
    # 1.x's file layout and its cache, reloaded from storage at start-up when empty.
    target.info.update(packages=os.path.join(folder, "packages"), db=os.path.join(folder, "db.sqlite"))
    return target


MAKERS: dict[str, Callable[[str, str, int], Target]] = {
    "devpi": devpi,
    "pypiserver": pypiserver,
    "pypicloud1": pypicloud1,
}


def start_all(
    workdir: str, threads: int, cache: str = CACHE, log=print
) -> tuple[list[Target], dict[str, str]]:
    """Install (once) and start every peer; return the running ones and why others are missing."""
    running: list[Target] = []
    skipped: dict[str, str] = {}
    for spec in SPECS:
        target: Target | None = None
        try:
            venv = install(spec, cache, log=log)
            target = MAKERS[spec.key](venv, workdir, threads)
            target.start()
            setup = target.info.pop("setup", None)
            if setup is not None:
                setup()
        except (RuntimeError, OSError, TimeoutError, subprocess.SubprocessError) as exc:
            lines = str(exc).strip().splitlines()
            skipped[spec.label] = lines[-1][:300] if lines else repr(exc)
            log(f"  {spec.label} skipped: {skipped[spec.label]}")
            if target is not None:
                target.server.stop()
            continue
        log(f"  {spec.label} on port {target.port} (pid {target.server.pid})")
        running.append(target)
    return running, skipped


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    from . import corpus, load

    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--peers-cache", default=CACHE)
    args = parser.parse_args(argv)
    auth = load.basic_auth(ADMIN_USER, ADMIN_PASSWORD)
    with tempfile.TemporaryDirectory(prefix="ppc-bench-peers-") as workdir:
        targets, skipped = start_all(workdir, args.threads, args.peers_cache)
        try:
            for target in targets:
                load.upload_all(
                    target.port, auth, corpus.release("Smoke.Pkg", "1.0"), 1, path=target.upload_path
                )
                print(f"{target.label}: uploaded 2 files")
        finally:
            for target in targets:
                target.server.stop()
    print(f"skipped: {skipped}" if skipped else "every peer ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
