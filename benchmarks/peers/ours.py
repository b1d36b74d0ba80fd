"""Our registry (this repository's .venv), started by ``harness/server.py``."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.peers import REPOSITORY_ROOT, WORK_DIR, Peer
from benchmarks.peers.pulp import PulpInstance
from harness.server import start_server

VENV = REPOSITORY_ROOT / ".venv"


def launch(data_dir: Path | None = None, settings: dict[str, str] | None = None) -> Peer:
    """Start ours; ``settings`` are extra ``PULP_*`` environment variables (dynaconf settings)."""
    started = time.monotonic()
    instance = PulpInstance(
        "ours", VENV, data_dir or WORK_DIR / "ours", REPOSITORY_ROOT / "pulp_container"
    )
    instance.environment.update(settings or {})
    try:
        instance.prepare()
        instance.start(lambda: start_server(instance.url, instance.run_log(), instance.environment))
        versions = instance.status()
    except BaseException:
        instance.stop()
        raise
    return instance.peer(versions, started)
