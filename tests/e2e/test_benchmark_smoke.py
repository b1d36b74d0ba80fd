"""The hierarchy benchmark still runs end to end (``--smoke``: tiny sizes), so it cannot rot.

It runs on the session's servers (``registry`` and ``strict_registry``: ``--registry``), which
saves starting a fresh instance; ``benchmarks/push_hierarchy.py`` without ``--registry`` starts
its own. It must show in its own output that mounts and link-on-HEAD saved the shared bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from harness.registry_http import RunningRegistry

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPOSITORY_ROOT / "benchmarks" / "push_hierarchy.py"


def test_benchmark_smoke_runs_and_reports(
    tmp_path: Path, registry: RunningRegistry, strict_registry: RunningRegistry
) -> None:
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--results-dir", str(tmp_path),
         "--registry", registry.url, strict_registry.url, "--ca-cert", str(registry.ca_cert)],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert completed.returncode == 0, completed.stderr[-4000:]
    print(f"\nbenchmark --smoke took {elapsed:.1f}s\n{completed.stdout}")
    assert "| a-mount |" in completed.stdout

    (output,) = tmp_path.glob("push_hierarchy-smoke-*.json")
    report = json.loads(output.read_text())
    pushes = {push["case"]: push for push in report["pushes"]}
    children = report["sizes"]["children"]
    shared = children * report["sizes"]["base_layers"]
    assert pushes["a-mount"]["mounted"] == shared
    assert pushes["a-mount"]["bytes_received"] == pushes["a-mount"]["unique_bytes"]
    assert pushes["b-no-mount"]["mounted"] == pushes["b-no-mount"]["linked_on_head"] == 0
    assert pushes["b-no-mount"]["bytes_received"] > pushes["b-no-mount"]["unique_bytes"]
    assert pushes["c-link-on-head"]["linked_on_head"] == shared
    assert pushes["c-link-on-head"]["bytes_received"] == pushes["c-link-on-head"]["unique_bytes"]
    latencies = report["mount_latency"]
    # On the session's server other tests' repositories count too: at least the sizes asked.
    counts = [row["repositories"] for row in latencies]
    assert counts == sorted(counts), counts
    asked = report["sizes"]["repository_counts"]
    assert all(c >= a for c, a in zip(counts, asked, strict=True)), (counts, asked)
    assert all(row["mounts"] == 20 and row["p95_ms"] >= row["p50_ms"] > 0 for row in latencies)
