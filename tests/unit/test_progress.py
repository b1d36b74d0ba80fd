"""Progress a person can follow: ``make install`` names its phases, how far along it is and the
time taken (issue 15, finding 7). A run that has nothing to do still says so, phase by phase.

The first ``make run``'s own lines and banner are checked against the e2e server's log in
tests/e2e/test_progress_log.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
PHASE = re.compile(r"^\[install\.sh\] \[\+(\d+)s\] (\d)/3 (.+)$")
DONE = re.compile(r"^\[install\.sh\] \[\+\d+s\] done: make install took \d+s$")


def test_make_install_prints_each_phase_with_elapsed_time_and_the_total():
    result = subprocess.run(
        ["bash", str(REPOSITORY / "scripts" / "install.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]

    phases = [PHASE.match(line) for line in lines if PHASE.match(line)]
    assert [int(phase.group(2)) for phase in phases] == [1, 2, 3], lines
    assert [phase.group(3).split(":")[0] for phase in phases] == [
        "system packages",
        "Python packages",
        "npm clients",
    ]
    assert DONE.match(lines[-1]), lines[-1]
