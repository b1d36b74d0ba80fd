"""The comparative benchmark still runs end to end (``compare.py --smoke``), so it cannot rot.

It starts its own servers (fresh databases, free ports) independent of the ``registry`` fixture:
ours and, when Debian's ``docker-registry`` is installed, distribution. Upstream pulp-container
takes part only when ``benchmarks/.work/upstream-venv`` already exists: the test never installs
it (about 40 s of downloads plus 90 s of first migrations on this 2-core machine, for a check
that ours and distribution already give).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPOSITORY_ROOT / "benchmarks" / "compare.py"

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")


def test_compare_smoke_runs_and_reports(tmp_path: Path) -> None:
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--no-install-upstream",
         "--output-dir", str(tmp_path)],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    print(f"\ncompare --smoke took {elapsed:.1f}s\n{completed.stdout}")
    assert completed.returncode == 0, completed.stderr[-6000:]
    assert "| metric | ours | upstream | distribution |" in completed.stdout

    (output,) = tmp_path.glob("compare-smoke-*.json")
    report = json.loads(output.read_text())
    ours = report["peers"]["ours"]["results"]
    for key, value in ours.items():
        assert "error" not in value, (key, value)
    sizes = report["sizes"]

    mount = ours["hierarchy_mount"]
    assert mount["bytes_received"] == mount["unique_bytes"], mount
    assert mount["mounts"] >= sizes["children"] * sizes["base_layers"] - mount["head_hits"]
    assert ours["mount"]["small"]["mounted"] == sizes["mounts"]
    assert ours["mount"]["large"]["mounted"] == sizes["mounts"]
    assert ours["blob_large"]["push_mb_s"] > 0 and ours["blob_large"]["pull_mb_s"] > 0
    assert ours["blob_large"]["api_peak_rss_mib"] > 0
    assert ours["concurrent"]["problems"] == 0
    assert ours["manifest_put"]["failures"] == 0

    if shutil.which("docker-registry"):
        distribution = report["peers"]["distribution"]["results"]
        for key, value in distribution.items():
            assert "error" not in value, (key, value)
        fresh = distribution["hierarchy_fresh"]
        # Without a client cache, distribution receives the base layers once per child.
        assert fresh["bytes_received"] > fresh["unique_bytes"]
    assert (tmp_path / "latest-smoke.md").read_text().startswith("# Comparative benchmark")
