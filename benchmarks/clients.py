"""Wall time of real installers against the server: ``pip download`` and ``uv pip compile``.

Both run isolated from this machine's configuration (no config files, no PIP_* or
UV_* variables, no cache), so they only ever talk to the server under test on
127.0.0.1. Each is run ``repeat`` times; the median is reported.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_")) and k.lower() not in ("http_proxy", "https_proxy")
    }
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1")
    return env


def _time(command: list[str], cwd: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stderr[-1500:]}")
    return seconds


def pip_download(index_url: str, requirement: str, workdir: str) -> float:
    out = tempfile.mkdtemp(dir=workdir)
    try:
        return _time(
            [
                sys.executable,
                "-m",
                "pip",
                "--isolated",
                "download",
                "--no-deps",
                "--no-cache-dir",
                "--index-url",
                index_url,
                "-d",
                out,
                requirement,
            ],
            workdir,
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)


def uv_compile(index_url: str, requirement: str, workdir: str) -> float:
    uv = shutil.which("uv", path=BIN) or shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is not installed (pip install uv)")
    requirements = os.path.join(workdir, "requirements.in")
    with open(requirements, "w") as handle:
        handle.write(requirement + "\n")
    return _time(
        [
            uv,
            "pip",
            "compile",
            "--no-config",
            "--no-cache",
            "--quiet",
            "--python-version",
            "3.11",
            "--index-url",
            index_url,
            "-o",
            os.devnull,
            requirements,
        ],
        workdir,
    )


def installer_times(port: int, requirement: str, workdir: str, repeat: int = 3) -> dict:
    index_url = f"http://127.0.0.1:{port}/simple/"
    result = {"requirement": requirement}
    for name, fn in (("pip_download_s", pip_download), ("uv_pip_compile_s", uv_compile)):
        runs = [fn(index_url, requirement, workdir) for _ in range(repeat)]
        result[name] = round(statistics.median(runs), 2)
    return result
