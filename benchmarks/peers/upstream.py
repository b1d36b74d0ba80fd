"""Upstream ``pulp-container`` 2.30.0 from PyPI, in its own venv, database and data folder.

It is never imported here: its own ``pulpcore-api`` (gunicorn), ``pulpcore-content`` and
``pulpcore-worker`` run from ``benchmarks/.work/upstream-venv`` through ``scripts/run.sh`` with
``PULP_VENV`` pointing there, so that it gets exactly the process model and generated settings
(TLS, ES256 token keys, ``TOKEN_SERVER``, ``CONTENT_ORIGIN``...) that ours gets. The processes
start in the data folder, never in this repository, so that our ``pulp_container`` package can
never shadow upstream's on ``sys.path``; the status API's version is checked after the start.

pulp-container 2.30.0 requires ``pulpcore>=3.118.0,<3.130``; we pin the pulpcore that our
requirements resolve to (3.123.x) so that only the plugin differs.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from benchmarks.peers import REPOSITORY_ROOT, WORK_DIR, Peer
from benchmarks.peers.pulp import LaunchError, PulpInstance
from harness.server import ServerError, answers, logs_tail, stop_server

VERSION = "2.30.0"
PULPCORE = "3.123.1"
VENV = WORK_DIR / "upstream-venv"
STARTUP_TIMEOUT = 180.0


def installed() -> bool:
    return (VENV / "bin" / "pulpcore-api").exists() and any(
        VENV.glob(f"lib/python3*/site-packages/pulp_container-{VERSION}.dist-info")
    )


def install(python: str = "python3") -> float:
    """Create the venv and install upstream into it; return the seconds it took."""
    started = time.monotonic()
    if not (VENV / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [
            str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
            f"pulp-container=={VERSION}", f"pulpcore=={PULPCORE}",
        ],
        check=True,
    )  # fmt: skip
    return time.monotonic() - started


def _plugin_root() -> Path:
    return next(VENV.glob("lib/python3*/site-packages/pulp_container"))


def _start(instance: PulpInstance) -> subprocess.Popen[bytes]:
    run_log = instance.run_log()
    with run_log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", str(REPOSITORY_ROOT / "scripts" / "run.sh")],
            cwd=instance.data_dir,
            env=instance.environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if answers(instance.url):
            return process
        if process.poll() is not None:
            raise ServerError(
                f"upstream run.sh exited with {process.returncode}\n"
                + logs_tail(run_log, instance.environment)
            )
        time.sleep(1)
    stop_server(process)
    raise ServerError("upstream did not answer\n" + logs_tail(run_log, instance.environment))


def launch(data_dir: Path | None = None) -> Peer:
    if not installed():
        raise LaunchError(f"upstream pulp-container {VERSION} is not installed in {VENV}")
    started = time.monotonic()
    instance = PulpInstance("upstream", VENV, data_dir or WORK_DIR / "upstream", _plugin_root())
    try:
        instance.prepare()
        instance.start(lambda: _start(instance))
        versions = instance.status()
        if versions.get("container") != VERSION:
            raise LaunchError(f"upstream answers with versions {versions}, not {VERSION}")
    except BaseException:
        instance.stop()
        raise
    return instance.peer(versions, started)
