"""Upload rates of the comparison: the real ``twine upload``, and a raw multipart client.

* **twine** (issue 17's measure): one ``twine upload`` process per target uploading
  the whole file set (``--repository-url``, ``-u``/``-p``, ``--non-interactive``,
  ``--disable-progress-bar``); files/s = files / the process's wall time, its own
  start-up included, as a user sees it. The ceiling runs first and last (it keeps
  no index, so the same files go up twice) and its figure is the mean; the other
  targets go in their list order.
* **raw multipart client, one connection** (:func:`benchmarks.load.upload_all`, the
  form twine posts without twine's own work): other versions of the same projects in
  chunks of 20 files, the order of the targets turning by one every chunk.
"""

from __future__ import annotations

import os
import subprocess
import time

from . import corpus, load
from .peers import Target
from .server import ADMIN_PASSWORD, ADMIN_USER, BIN, get

CHUNK = 20
TWINE_TIMEOUT = 1800


def login(targets: list[Target], auth: str) -> None:
    """One authenticated request each: a first login's cost (argon2id) is not an upload's."""
    for target in targets:
        get(target.port, target.ready_path, {"Authorization": auth})


def upload_set(projects: int, versions: int, first_version: int = 0) -> list[corpus.Dist]:
    """The probe and ``projects - 1`` fillers, releases ``first_version`` .. + ``versions``
    (wheel and sdist each); a second set with another ``first_version`` has new files."""
    names = [corpus.PROBE] + [corpus.project_name(i) for i in range(projects - 1)]
    releases = range(first_version, first_version + versions)
    return [d for name in names for j in releases for d in corpus.release(name, corpus.version_of(j))]


def _twine_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"  # never ask a keyring
    return env


def twine_once(target: Target, files: list[str]) -> float:
    """Seconds of one ``twine upload`` of ``files`` to ``target``."""
    command = [os.path.join(BIN, "twine"), "upload", "--repository-url"]
    command += [f"http://127.0.0.1:{target.port}{target.upload_path}", "-u", ADMIN_USER, "-p", ADMIN_PASSWORD]
    command += ["--non-interactive", "--disable-progress-bar", *files]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=_twine_env(), timeout=TWINE_TIMEOUT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"twine upload to {target.label} failed: {(done.stderr or done.stdout)[-600:]}")
    return seconds


def twine(targets: list[Target], auth: str, dists: list[corpus.Dist], directory: str, log=print) -> dict:
    """Files/s of one ``twine upload`` process per target; ``targets[0]`` is the ceiling."""
    os.makedirs(directory, exist_ok=True)
    files = []
    for dist in dists:
        files.append(os.path.join(directory, dist.filename))
        with open(files[-1], "wb") as handle:
            handle.write(dist.data)
    login(targets, auth)
    ceiling, others = targets[0], targets[1:]
    seconds: dict[str, list[float]] = {t.key: [] for t in targets}
    failed: dict[str, str] = {}
    for target in [ceiling, *others, ceiling]:
        try:
            seconds[target.key].append(twine_once(target, files))
        except (RuntimeError, subprocess.SubprocessError) as exc:
            failed[target.key] = str(exc).strip().splitlines()[-1][:300]
            log(f"  {failed[target.key]}")
    rates = {
        key: (round(len(files) * len(runs) / sum(runs), 1) if runs and key not in failed else None)
        for key, runs in seconds.items()
    }
    log(f"  twine upload, 1 process ({len(files)} files): {rates}")
    return {"files": len(files), "files_per_s": rates, "seconds": seconds, "failed": failed}


def raw_client(targets: list[Target], auth: str, dists: list[corpus.Dist], log=print) -> dict[str, float]:
    """Files/s of one connection per target, chunks alternating over the targets."""
    login(targets, auth)
    seconds = dict.fromkeys((t.key for t in targets), 0.0)
    for n, start in enumerate(range(0, len(dists), CHUNK)):
        chunk = dists[start : start + CHUNK]
        shift = n % len(targets)
        for target in targets[shift:] + targets[:shift]:
            started = time.perf_counter()
            load.upload_all(target.port, auth, chunk, workers=1, path=target.upload_path)
            seconds[target.key] += time.perf_counter() - started
    rates = {key: round(len(dists) / s, 1) for key, s in seconds.items()}
    log(f"  raw multipart client, 1 connection ({len(dists)} files): {rates}")
    return rates
