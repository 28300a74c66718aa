"""Drive ``wrk`` (fixed duration, fixed connections) and read its results as JSON.

A small Lua script sets the request headers (Accept, Authorization, If-None-Match)
and, when wrk is done, prints one line ``WRKJSON {...}`` with the request count,
errors and latency percentiles, so nothing depends on wrk's human-readable output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

_LUA = """
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"bad_status":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def ensure_wrk() -> str:
    """The path of wrk; installed with apt-get when missing and running as root."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() != 0:
        raise SystemExit(
            "benchmarks: wrk is not installed and this is not root; "
            "install it (Debian: apt-get install -y wrk) and run again"
        )
    print("benchmarks: installing wrk with apt-get", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(install, stdout=subprocess.DEVNULL, check=True)
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("benchmarks: apt-get did not install wrk")
    return path


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lua_script(headers: dict[str, str], paths_file: str | None = None) -> str:
    """The script: request headers, and with ``paths_file`` (one path a line) every
    request to one of those paths at random (read from a file: LuaJIT caps a chunk's
    constants far below 100,000)."""
    lines = [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()]
    if paths_file:
        lines += [
            "local paths = {}",
            f"for line in io.lines({_lua_string(paths_file)}) do paths[#paths + 1] = line end",
            "math.randomseed(os.time())",
            "request = function() return wrk.format(nil, paths[math.random(#paths)]) end",
        ]
    return _LUA.format(headers="\n".join(lines))


def run(
    port: int,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    connections: int = 1,
    duration: int = 5,
    threads: int = 1,
    timeout: float = 10.0,
    paths: list[str] | None = None,
) -> dict:
    """Load ``http://127.0.0.1:<port><path>`` for ``duration`` whole seconds; return the figures.

    Latencies are in milliseconds; ``errors`` counts socket errors, timeouts and
    answers other than 2xx/3xx. With ``paths``, each request goes to one of them at
    random instead of ``path`` (requests spread over many projects).
    """
    paths_file = None
    if paths:
        with tempfile.NamedTemporaryFile("w", suffix=".paths", delete=False) as listing:
            listing.write("\n".join(paths) + "\n")
        paths_file = listing.name
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(headers or {}, paths_file))
    try:
        command = [
            ensure_wrk(),
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            f"--timeout={timeout:g}s",
            "-s",
            script.name,
            f"http://127.0.0.1:{port}{path}",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration + timeout + 30)
    finally:
        os.unlink(script.name)
        if paths_file:
            os.unlink(paths_file)
    line = next((l for l in done.stdout.splitlines() if l.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    raw = json.loads(line[len("WRKJSON ") :])
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "bad_status", "timeouts"))
    return {
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "requests": raw["requests"],
        "errors": errors,
        "seconds": round(seconds, 2),
        "connections": connections,
    }
