"""Throughput and latency of pypicloud's read paths, each beside the hello-world ceiling.

For every concurrency the runs go: hello-world, then for each case pypicloud
anonymous, pypicloud with Basic auth, the in-memory ceiling (``ceiling.py``, when
given) on the same path, hello-world again. Each case's hello-world figure is the
mean of the hello-world runs just before and just after it, so a machine that gets
faster or slower during the case (other builds on 2 cores) moves both sides alike;
its ceiling figure is the run right beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import canonicalize_name

from . import wrk
from .corpus import PROBE, probe_dists
from .server import get

HTML = "text/html"
JSON = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    expect: int = 200

    def with_headers(self, auth: str | None) -> dict[str, str]:
        headers = dict(self.headers)
        if auth:
            headers["Authorization"] = auth
        return headers


def read_cases() -> list[Case]:
    """The five read paths of a client installing the probe project."""
    project = canonicalize_name(PROBE)
    wheel = probe_dists()[0].filename
    file_path = f"/api/package/{project}/{wheel}"
    return [
        Case("simple_index", "/simple/", (("Accept", HTML),)),
        Case("project_html", f"/simple/{project}/", (("Accept", HTML),)),
        Case("project_json", f"/simple/{project}/", (("Accept", JSON),)),
        Case("metadata", file_path + ".metadata"),
        Case("download", file_path),
    ]


def check(port: int, case: Case, auth: str | None) -> None:
    """One request first: the case must answer as expected (this also warms caches)."""
    status, _, body = get(port, case.path, case.with_headers(auth))
    if status != case.expect:
        raise RuntimeError(f"{case.name}: GET {case.path} answered {status}: {body[:200]!r}")


def measure(
    hello_port: int,
    port: int,
    cases: list[Case],
    *,
    auth: str,
    connections: tuple[int, ...] = (1, 16),
    duration: int = 5,
    auth_modes: tuple[str, ...] = ("anonymous", "basic"),
    ceiling_port: int | None = None,
    log=print,
) -> list[dict]:
    """Rows of figures: one per case, auth mode and connection count.

    With ``ceiling_port`` each row also has ``ceiling_rps`` and ``ceiling_ratio``.
    """
    for case in cases:
        for mode in auth_modes:
            check(port, case, auth if mode == "basic" else None)
        if ceiling_port is not None:
            check(ceiling_port, case, None)
    rows = []
    for conns in connections:
        before = wrk.run(hello_port, "/", connections=conns, duration=duration)["rps"]
        for case in cases:
            measured = [
                (
                    mode,
                    wrk.run(
                        port,
                        case.path,
                        connections=conns,
                        duration=duration,
                        headers=case.with_headers(auth if mode == "basic" else None),
                    ),
                )
                for mode in auth_modes
            ]
            ceiling = None
            if ceiling_port is not None:
                ceiling = wrk.run(
                    ceiling_port,
                    case.path,
                    connections=conns,
                    duration=duration,
                    headers=case.with_headers(None),
                )["rps"]
            after = wrk.run(hello_port, "/", connections=conns, duration=duration)["rps"]
            hello = (before + after) / 2
            for mode, ours in measured:
                row = {
                    "case": case.name,
                    "path": case.path,
                    "auth": mode,
                    **ours,
                    "hello_rps": round(hello, 1),
                    "hello_before_rps": before,
                    "hello_after_rps": after,
                    "ratio": round(ours["rps"] / hello, 3) if hello else None,
                }
                if ceiling is not None:
                    row["ceiling_rps"] = ceiling
                    row["ceiling_ratio"] = round(ours["rps"] / ceiling, 3) if ceiling else None
                rows.append(row)
                log(
                    f"  {case.name:<14} {mode:<9} c={conns:<3} {ours['rps']:>8.1f} req/s "
                    f"p50 {ours['p50_ms']:.2f} ms p99 {ours['p99_ms']:.2f} ms "
                    f"(hello {before:.0f}/{after:.0f}, ratio {row['ratio']}; "
                    f"ceiling {ceiling or 0:.0f}, x {row.get('ceiling_ratio')}; errors {ours['errors']})"
                )
            before = after  # the run after this case is the run before the next
    return rows
