"""Our registry (this repository's .venv), started by ``tests/support/server.py``."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.peers import ADMIN, REPOSITORY_ROOT, WORK_DIR, Peer, gunicorn_api_pids
from benchmarks.peers.pulp import PulpInstance
from tests.support.server import start_server

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
    plugin, core = versions.get("container", "?"), versions.get("core", "?")
    return Peer(
        name="ours",
        url=instance.url,
        credentials=ADMIN,
        access_log=instance.access_log,
        log_format="gunicorn",
        api_pids=gunicorn_api_pids(instance.api_port),
        stopper=instance.stop,
        version=f"pulp_container {plugin}, pulpcore {core}",
        started_in_s=time.monotonic() - started,
    )
