"""Where the machine's CPU goes while the two machine-bound targets of compare.py run.

compare.py has two targets that a 2-core machine decides rather than the server: the 512 MiB
pull *with skopeo* (skopeo checks the digest and writes the file: is the client the limit?) and
32 concurrent clients (closed loop: each sends its next request when the last one answered, so
by Little's law the mean latency is clients / throughput; is the CPU saturated, and by whom?).

This samples the CPU time (``/proc/<pid>/stat``: user + system) of every process every 50 ms
while each runs, grouped by what the process is: the client (skopeo, or the load generator's
processes), the front (nginx), the API workers, the content app, PostgreSQL, distribution, and
the rest. It prints each group's share of the machine (100% = both cores busy for the whole
run) and of one core, beside the wall time and throughput, for ours and distribution.

    .venv/bin/python benchmarks/cpu_split.py [--seconds 10] [--size-mib 512]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import hot_path, large_blob  # noqa: E402
from benchmarks.peers import WORK_DIR, Peer, all_pids, cmdline, parent_pid, stat_fields  # noqa: E402
from benchmarks.peers import distribution as distribution_peer  # noqa: E402
from benchmarks.peers import ours as ours_peer  # noqa: E402
from benchmarks.peers.tools import reset_homes, single_layer_image, skopeo_for  # noqa: E402
from harness.container_tools import open_to_everyone  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
MIB = 1 << 20
GROUPS = (
    "client",
    "front (nginx)",
    "API workers",
    "content app",
    "PostgreSQL",
    "distribution",
    "other",
)


def _cpu_seconds(pid: int) -> float | None:
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS if fields else None  # utime, stime


# The group of a process, by a fragment of its command line; the first that matches.
_BY_COMMAND = (
    (("skopeo",), "client"),
    (("nginx",), "front (nginx)"),
    (("pulpcore-api", "pulpcore.app.wsgi"), "API workers"),
    (("pulpcore-content",), "content app"),
    (("postgres",), "PostgreSQL"),
    (("docker-registry", "registry serve"), "distribution"),
)


def _group(pid: int, own: int) -> str:
    command = cmdline(pid)
    for fragments, group in _BY_COMMAND:
        if any(fragment in command for fragment in fragments):
            return group
    return "client" if parent_pid(pid) == own else "other"  # the load generator's processes


class CpuSampler:
    """CPU seconds per group over a window. A process's last sample counts, so one that ends
    within the window (a skopeo run) is counted up to at most one interval before it ended."""

    def __init__(self, interval: float = 0.05) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._groups: dict[int, str] = {}
        self.wall_s = 0.0

    def _sample(self, first: bool = False) -> None:
        for pid in all_pids():
            seconds = _cpu_seconds(pid)
            if seconds is None:
                continue
            if pid not in self._groups:
                self._groups[pid] = _group(pid, os.getpid())
                self._start[pid] = seconds if first else 0.0
            self._last[pid] = seconds

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> CpuSampler:
        self._sample(first=True)
        self._began = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.wall_s = time.perf_counter() - self._began

    def seconds_by_group(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for pid, last in self._last.items():
            totals[self._groups[pid]] += max(0.0, last - self._start[pid])
        return dict(totals)


def measured(run: Callable[[], Any]) -> dict[str, Any]:
    with CpuSampler() as sampler:
        outcome = run()
    seconds = sampler.seconds_by_group()
    return {
        "wall_s": sampler.wall_s,
        "outcome": outcome,
        "cpu_s": seconds,
        "machine_share": {g: s / (sampler.wall_s * CORES) for g, s in seconds.items()},
        "busy_share": sum(seconds.values()) / (sampler.wall_s * CORES),
    }


def skopeo_pull(peer: Peer, size: int, repository: str) -> dict[str, Any]:
    large_blob.measure(peer, size, repository, pull=False)
    target = open_to_everyone(WORK_DIR / "pulls" / f"cpu-{peer.name}-{time.monotonic_ns()}")

    def pull() -> float:
        started = time.perf_counter()
        skopeo_for(peer).copy(peer.reference(repository), f"dir:{target}")
        return size / (time.perf_counter() - started) / 1e6

    try:
        return measured(pull)
    finally:
        shutil.rmtree(target, ignore_errors=True)


def clients(peer: Peer, count: int, seconds: float) -> dict[str, Any]:
    def hammer() -> dict[str, Any]:
        return hot_path.concurrency(peer, [], "GET", "/v2/", count, seconds)

    return measured(hammer)


def table(results: dict[str, dict[str, Any]]) -> str:
    columns = list(results)
    lines = [
        "| CPU share of the machine (2 cores = 100%) | " + " | ".join(columns) + " |",
        "| --- | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for group in GROUPS:
        cells = [f"{100 * results[c]['machine_share'].get(group, 0.0):.0f}%" for c in columns]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    lines.append(
        "| **all** | "
        + " | ".join(f"{100 * results[c]['busy_share']:.0f}%" for c in columns)
        + " |"
    )
    lines.append("| wall s | " + " | ".join(f"{results[c]['wall_s']:.2f}" for c in columns) + " |")
    figures = []
    for column in columns:
        outcome = results[column]["outcome"]
        if isinstance(outcome, dict):
            figures.append(f"{outcome['requests_per_s']:.0f} req/s, p95 {outcome['p95_ms']:.1f} ms")
        else:
            figures.append(f"{outcome:.0f} MB/s")
    lines.append("| throughput | " + " | ".join(figures) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--clients", type=int, default=32)
    arguments = parser.parse_args(argv)
    reset_homes()
    size = arguments.size_mib * MIB
    single_layer_image(size)
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {CORES} cores", flush=True)
    peers = {"ours": ours_peer.launch(), "distribution": distribution_peer.launch()}
    results: dict[str, dict[str, Any]] = {}
    run = f"cpu-{int(time.time())}"
    try:
        for name, peer in peers.items():
            results[f"{name}: skopeo pull"] = skopeo_pull(peer, size, f"{run}/large")
        for name, peer in peers.items():
            key = f"{name}: {arguments.clients} clients GET /v2/"
            results[key] = clients(peer, arguments.clients, arguments.seconds)
    finally:
        for peer in peers.values():
            peer.stop()
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
