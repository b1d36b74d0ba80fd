"""Start and stop Pulp for the end-to-end tests and the benchmarks (one code path for both).

``start_server`` runs ``scripts/run.sh`` (pulpcore-api over TLS, the content app, a worker and,
unless ``PULP_DATABASE_HOST``, the embedded PostgreSQL) in its own process group and waits until
``GET /v2/`` answers; ``stop_server`` stops that group. ``start_api_process`` starts one more
``pulpcore-api`` over the same settings and database (how Pulp scales: several API processes over
one PostgreSQL), with extra settings in its environment, e.g. ``PULP_CONTAINER_LINK_BLOBS_ON_HEAD
=false`` for an API process with strict per-repository semantics.

Failures raise ``ServerError`` with the tail of the logs; callers turn it into a test failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import requests
import urllib3

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 180.0
SHUTDOWN_TIMEOUT = 30.0


class ServerError(RuntimeError):
    """The server could not be started; the message carries the tail of its logs."""


def data_dir(environment: Mapping[str, str] | None = None) -> Path:
    environment = os.environ if environment is None else environment
    return Path(environment.get("PULP_DATA_DIR", REPOSITORY_ROOT / ".pulp"))


def answers(url: str) -> bool:
    """True once ``GET /v2/`` answers as a registry does (200, or 401 asking for credentials)."""
    try:
        # Not verified: the CA may not exist yet while the server starts.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            response = requests.get(f"{url}/v2/", timeout=5, verify=False)
    except requests.RequestException:
        return False
    return response.status_code in (200, 401)


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as error:
        return f"({error})"
    return "\n".join(text[-lines:])


def logs_tail(run_log: Path, environment: Mapping[str, str] | None = None) -> str:
    parts = [f"--- {run_log} ---\n{tail(run_log)}"]
    for log in sorted((data_dir(environment) / "logs").glob("*")):
        if log.is_file():
            parts.append(f"--- {log} ---\n{tail(log)}")
    return "\n".join(parts)


def _wait_until_answers(
    url: str,
    process: subprocess.Popen[bytes],
    run_log: Path,
    what: str,
    environment: Mapping[str, str],
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if answers(url):
            return
        if process.poll() is not None:
            raise ServerError(
                f"{what} exited with {process.returncode} before {url}/v2/ answered\n"
                + logs_tail(run_log, environment)
            )
        time.sleep(1)
    stop_server(process)
    raise ServerError(
        f"{url}/v2/ did not answer within {STARTUP_TIMEOUT:.0f}s\n"
        + logs_tail(run_log, environment)
    )


def start_server(
    url: str, run_log: Path, environment: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Run ``scripts/run.sh`` with ``environment`` (default: ours) until ``url`` answers."""
    script = REPOSITORY_ROOT / "scripts" / "run.sh"
    if not script.exists():
        raise ServerError(f"no server at {url} and no {script} to start one; set PULP_E2E_URL")
    environment = {**(os.environ if environment is None else environment), "PULP_SKIP_INSTALL": "1"}
    with run_log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", str(script)],
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _wait_until_answers(url, process, run_log, "scripts/run.sh", environment)
    return process


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started here, and its whole process group."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=SHUTDOWN_TIMEOUT)


def ca_cert(environment: Mapping[str, str] | None = None) -> Path:
    """The CA that signed the server's certificate (``scripts/`` make one in the data folder)."""
    environment = os.environ if environment is None else environment
    for variable in ("PULP_E2E_CA_CERT", "PULP_CA_CERT"):
        if environment.get(variable):
            return Path(environment[variable])
    tls = data_dir(environment) / "tls"
    return tls / "ca.crt" if (tls / "ca.crt").exists() else tls / "server.crt"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pulpcore_api() -> str:
    venv = Path(os.environ.get("PULP_VENV", REPOSITORY_ROOT / ".venv"))
    candidate = venv / "bin" / "pulpcore-api"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("pulpcore-api")
    if found is None:
        raise ServerError("pulpcore-api not found; run 'make install'")
    return found


def start_api_process(
    port: int,
    log: Path,
    settings: Mapping[str, str],
    environment: Mapping[str, str] | None = None,
    workers: int = 2,
) -> subprocess.Popen[bytes]:
    """One more ``pulpcore-api`` on ``port`` over the settings (and database) of the data folder.

    ``settings`` are extra environment variables, which dynaconf reads as settings
    (``PULP_FOO=false`` -> ``FOO = False``). TLS as ``scripts/run.sh`` sets it up.
    """
    base = dict(os.environ if environment is None else environment)
    folder = data_dir(base).resolve()
    tls = folder / "tls"
    base.pop("GUNICORN_CMD_ARGS", None)
    process_environment = {
        **base,
        "PULP_SETTINGS": str(folder / "settings.py"),
        "DJANGO_SETTINGS_MODULE": "pulpcore.app.settings",
        "GUNICORN_CMD_ARGS": (
            f"--certfile {tls / 'server.crt'} --keyfile {tls / 'server.key'}"
            " --logger-class pulp_container.logs.AccessLogger"
        ),
        **settings,
    }
    command = [
        _pulpcore_api(),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        "600",
        "--graceful-timeout",
        "10",
        "--no-control-socket",
        "--access-logfile",
        "-",
    ]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            cwd=REPOSITORY_ROOT,
            env=process_environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _wait_until_answers(
        f"https://127.0.0.1:{port}", process, log, "pulpcore-api", process_environment
    )
    return process


def _proc_text(pid: int, name: str) -> str:
    try:
        return (
            (Path("/proc") / str(pid) / name)
            .read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")
        )
    except OSError:
        return ""


def instance_processes(folder: Path) -> list[int]:
    """Processes of the instance on the data folder ``folder``: those whose command line names
    it (nginx, PostgreSQL, the API and content sockets) or whose environment does (every process
    ``scripts/run.sh`` starts inherits ``PULP_DATA_DIR``)."""
    folder_text = str(folder.resolve())
    marker = f"PULP_DATA_DIR={folder_text} "
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        if f"{folder_text}/" in _proc_text(pid, "cmdline") or marker in _proc_text(pid, "environ"):
            found.append(pid)
    return found


def parent_pid(pid: int) -> int:
    stat = _proc_text(pid, "stat")
    return int(stat.rsplit(")", 1)[1].split()[1]) if stat else 0


def api_workers(folder: Path) -> list[int]:
    """The gunicorn workers of the instance's pulpcore-api (children of its arbiter)."""
    socket_path = f"{folder.resolve()}/run/api.sock"
    api = [
        pid
        for pid in instance_processes(folder)
        if socket_path in (line := _proc_text(pid, "cmdline")) and "supervise.sh" not in line
    ]
    return [pid for pid in api if parent_pid(pid) in api]


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0
