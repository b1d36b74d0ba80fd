"""The scale generator and benchmark still run (tiny sizes), so they cannot rot (issue 14).

The generator fills the session's ``registry`` with 1,000 blobs, 100 manifests and 10
repositories under a prefix of its own (the server's data persists between runs); a generated
image must then pull like a pushed one: its manifest by tag, with the digest of its bytes, and a
layer of the size the manifest gives. The benchmark then runs three rounds with that registry as
both its big and its empty instance; only that every operation answered is asserted, never the
timing.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import server
from harness.registry_http import RunningRegistry

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
GENERATOR = REPOSITORY_ROOT / "benchmarks" / "scale_data.py"
BENCHMARK = REPOSITORY_ROOT / "benchmarks" / "scale.py"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _run(command: list[str], registry: RunningRegistry) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PULP_ADMIN_USER": registry.admin[0],
        "PULP_ADMIN_PASSWORD": registry.admin[1],
    }
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, *command],
        cwd=REPOSITORY_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    print(f"\n{command[0]} took {time.monotonic() - started:.1f}s\n{completed.stdout}")
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed


def test_generated_rows_pull_like_a_push(registry: RunningRegistry) -> None:
    if os.environ.get("PULP_E2E_URL"):
        pytest.skip("the generator writes into the database of a server this session started")
    prefix = f"smoke{secrets.token_hex(3)}"
    _run([str(GENERATOR), "--data-dir", str(server.data_dir()), "--blobs", "1000",
          "--manifests", "100", "--repositories", "10", "--prefix", prefix], registry)  # fmt: skip

    name = f"{prefix}-ns0/app0"
    http = registry.http()
    response = http.get_manifest(name, "latest", MANIFEST)
    assert response.status_code == 200, response.text
    digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
    assert response.headers["Docker-Content-Digest"] == digest
    document = json.loads(response.content)
    assert len(document["layers"]) == 18  # family base 2, repository base 8, top 8
    layer = document["layers"][-1]
    blob = http.request("GET", f"/v2/{name}/blobs/{layer['digest']}",
                        scope=f"repository:{name}:pull", allow_redirects=True)  # fmt: skip
    assert blob.status_code == 200
    assert len(blob.content) == layer["size"]
    assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == layer["digest"]
    assert http.list_tags(name) == sorted(["latest", *(f"v{k}" for k in range(1, 11))])


def test_scale_benchmark_runs_and_reports(registry: RunningRegistry, tmp_path: Path) -> None:
    completed = _run([str(BENCHMARK), "--big", registry.url, "--empty", registry.url,
                      "--smoke", "--results-dir", str(tmp_path)], registry)  # fmt: skip

    assert completed.stdout.startswith("load average at start: ")
    (output,) = tmp_path.glob("scale-*.json")
    report = json.loads(output.read_text())
    assert report["rounds"] == 3
    for instance in report["instances"].values():
        assert len(instance["samples_ms"]) == 7
        assert all(len(samples) == 3 for samples in instance["samples_ms"].values())
    assert all(row["p50_ratio"] > 0 for row in report["rows"])
