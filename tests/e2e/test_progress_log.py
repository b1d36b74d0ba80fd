"""The first ``make run`` says what it does and when: every line of ``run.sh`` carries the
seconds since it started, and the banner says how long Pulp took to be ready (issue 15, 7)."""

from __future__ import annotations

import re
import time

import pytest

LINE = re.compile(r"^\[run\.sh \+\d+s\] ")
BANNER = re.compile(r"is ready, \d+s after start")


def test_run_sh_lines_carry_elapsed_seconds_and_the_banner_the_time_to_ready(
    registry, tmp_path_factory
):
    run_log = tmp_path_factory.getbasetemp() / "server0" / "run.log"
    if not run_log.exists():
        pytest.skip("the server was not started by this session (PULP_E2E_URL or already up)")
    # The fixture goes on once /v2/ answers; run.sh prints its banner once the status API does.
    deadline = time.monotonic() + 120
    text = run_log.read_text(errors="replace")
    while not BANNER.search(text) and time.monotonic() < deadline:
        time.sleep(1)
        text = run_log.read_text(errors="replace")
    own = [line for line in text.splitlines() if line.startswith("[run.sh")]

    assert own, text[:2000]
    assert all(LINE.match(line) for line in own), [bad for bad in own if not LINE.match(bad)][:5]
    assert BANNER.search(text), text[-2000:]
