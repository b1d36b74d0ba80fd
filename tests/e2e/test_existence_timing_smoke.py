"""The existence-timing benchmark still runs end to end (``--smoke``), so it cannot rot.

It runs against the session's ``registry`` (``--url``, with a user-name suffix of its own, since
the server's data persists between runs) and must report that the prober got the same answer
for a blob hidden in an unreadable repository as for digests that exist nowhere. Its timing
verdict is not asserted: five samples per cell on a shared machine are noise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harness.registry_http import RunningRegistry

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPOSITORY_ROOT / "benchmarks" / "existence_timing.py"


def test_existence_timing_smoke_runs_and_reports(registry: RunningRegistry, tmp_path: Path) -> None:
    command = [sys.executable, str(SCRIPT), "--smoke", "--url", registry.url,
               "--results-dir", str(tmp_path)]  # fmt: skip
    if registry.ca_cert.is_file():
        command += ["--ca", str(registry.ca_cert)]
    environment = {
        **os.environ,
        "PULP_ADMIN_USER": registry.admin[0],
        "PULP_ADMIN_PASSWORD": registry.admin[1],
    }
    started = time.monotonic()
    completed = subprocess.run(
        command,
        cwd=REPOSITORY_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    print(f"\nexistence_timing --smoke took {elapsed:.1f}s\n{completed.stdout}")
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert completed.stdout.startswith("load average at start: ")
    for kind in ("mount", "head", "get"):
        assert f"### {kind}: " in completed.stdout

    (output,) = tmp_path.glob("existence_timing-*.json")
    report = json.loads(output.read_text())
    assert report["smoke"] is True
    secret = report["repositories"]["secret"]
    assert not any(entry["name"] == secret for entry in report["token_access_granted"])
    assert report["linked_into_app"] == 0
    for kind in ("mount", "head", "get"):
        row = report["results"][kind]
        assert row["same_answer"] is True, (kind, row["answers"])
        for samples in row["samples_ms"].values():
            assert len(samples) == report["samples"] and min(samples) > 0
    assert report["results"]["mount"]["statuses"] == {"E": [202], "N1": [202], "N2": [202]}
