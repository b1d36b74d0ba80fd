"""What our server and upstream pulp-container share: one Pulp instance run by scripts/run.sh.

Both run with the same production process model and the same generated settings
(``scripts/settings.sh``): pulpcore-api (gunicorn, ``PULP_API_WORKERS`` processes, TLS),
pulpcore-content, pulpcore-worker, an embedded PostgreSQL of their own, access logs in
``<data>/logs/api.log``. Only the virtualenv differs (``PULP_VENV``).

Each start uses a fresh database: the first start migrates an empty database and keeps a copy
of it (``pulp_migrated``, a PostgreSQL template); later starts clone that copy, so that they
skip the minute of migrations. The copy is remade when the migrations of the plugin or of
pulpcore change (a fingerprint of their files).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import requests
import urllib3

from benchmarks.peers import (
    ADMIN,
    REPOSITORY_ROOT,
    Peer,
    clean_environment,
    free_port,
    gunicorn_api_pids,
)
from harness.server import stop_server

SCRIPTS = REPOSITORY_ROOT / "scripts"
TEMPLATE_DB = "pulp_migrated"

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


class LaunchError(RuntimeError):
    pass


def _run(command: list[str], environment: dict[str, str], log: Path, what: str) -> str:
    with log.open("ab") as output:
        output.write(f"\n$ {' '.join(command)}\n".encode())
    completed = subprocess.run(
        command, env=environment, capture_output=True, stdin=subprocess.DEVNULL, timeout=900
    )
    with log.open("ab") as output:
        output.write(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise LaunchError(
            f"{what} failed (exit {completed.returncode}):\n"
            + (completed.stdout + completed.stderr).decode(errors="replace")[-3000:]
        )
    return completed.stdout.decode()


def _psql(environment: dict[str, str], log: Path, sql: str) -> str:
    """Run ``sql`` on the instance's embedded PostgreSQL (database ``postgres``).

    ``scripts/postgres.sh psql`` logs in as ``postgres`` with the instance's password (the
    cluster accepts only scram-sha-256); ``environment`` names the instance (``PULP_DATA_DIR``,
    ``PULP_DB_PORT``).
    """
    command = ["bash", str(SCRIPTS / "postgres.sh"), "psql", "-tAc", sql]
    return _run(command, environment, log, f"psql {sql!r}")


def migrations_fingerprint(venv: Path, plugin_root: Path) -> str:
    """A hash of every migration file of pulpcore and of the plugin (names and contents)."""
    hasher = hashlib.sha256()
    roots = [plugin_root, *venv.glob("lib/python3*/site-packages/pulpcore")]
    for root in roots:
        for path in sorted(root.glob("**/migrations/*.py")):
            hasher.update(str(path.relative_to(root)).encode())
            hasher.update(path.read_bytes())
    return hasher.hexdigest()


class PulpInstance:
    """One Pulp (ours or upstream) in ``data_dir`` with the virtualenv ``venv``."""

    def __init__(self, name: str, venv: Path, data_dir: Path, plugin_root: Path) -> None:
        self.name = name
        self.venv = venv
        self.data_dir = data_dir
        self.plugin_root = plugin_root
        self.api_port = free_port()
        self.content_port = free_port()
        self.db_port = free_port()
        self.url = f"https://127.0.0.1:{self.api_port}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.launch_log = self.data_dir / "launch.log"
        self.launch_log.write_text("")
        self.environment = clean_environment(
            PULP_DATA_DIR=str(self.data_dir),
            PULP_API_PORT=str(self.api_port),
            PULP_CONTENT_PORT=str(self.content_port),
            PULP_DB_PORT=str(self.db_port),
            PULP_ADMIN_PASSWORD=ADMIN[1],
            PULP_VENV=str(self.venv),
            PULP_SKIP_INSTALL="1",
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.pg_started = False

    @property
    def access_log(self) -> Path:
        return self.data_dir / "logs" / "api.log"

    def _script(self, name: str, *arguments: str) -> str:
        return _run(
            ["bash", str(SCRIPTS / name), *arguments], self.environment, self.launch_log, name
        )

    def prepare(self) -> None:
        """Start PostgreSQL, give the instance a fresh database and empty storage folders."""
        for folder in ("media", "tmp", "logs"):
            shutil.rmtree(self.data_dir / folder, ignore_errors=True)
        self._script("postgres.sh", "start")
        self.pg_started = True
        self._script("settings.sh")
        fingerprint = migrations_fingerprint(self.venv, self.plugin_root)
        stamp = self.data_dir / "template.fingerprint"
        has_template = _psql(
            self.environment, self.launch_log,
            f"SELECT 1 FROM pg_database WHERE datname = '{TEMPLATE_DB}'",
        ).strip() == "1"  # fmt: skip
        fresh = has_template and stamp.exists() and stamp.read_text() == fingerprint
        _psql(self.environment, self.launch_log, "DROP DATABASE IF EXISTS pulp WITH (FORCE)")
        if fresh:
            _psql(self.environment, self.launch_log, f"CREATE DATABASE pulp TEMPLATE {TEMPLATE_DB}")
            return
        _psql(self.environment, self.launch_log, f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        _psql(self.environment, self.launch_log, "CREATE DATABASE pulp")
        manager_environment = {
            **self.environment,
            "PULP_SETTINGS": str(self.data_dir / "settings.py"),
            "DJANGO_SETTINGS_MODULE": "pulpcore.app.settings",
        }
        started = time.monotonic()
        _run(
            [str(self.venv / "bin" / "pulpcore-manager"), "migrate", "--noinput"],
            manager_environment,
            self.launch_log,
            f"{self.name}: pulpcore-manager migrate",
        )
        with self.launch_log.open("a") as log:
            log.write(f"migrations took {time.monotonic() - started:.1f}s\n")
        _psql(self.environment, self.launch_log, f"CREATE DATABASE {TEMPLATE_DB} TEMPLATE pulp")
        stamp.write_text(fingerprint)

    def start(self, starter: Callable[[], subprocess.Popen[bytes]]) -> None:
        self.process = starter()

    def run_log(self) -> Path:
        return self.data_dir / "run.log"

    def peer(self, versions: dict[str, str], started: float) -> Peer:
        """This running Pulp as a benchmark peer (``started``: its ``time.monotonic()`` start)."""
        plugin, core = versions.get("container", "?"), versions.get("core", "?")
        return Peer(
            name=self.name,
            url=self.url,
            credentials=ADMIN,
            access_log=self.access_log,
            log_format="gunicorn",
            # Behind the front (scripts/front.sh), pulpcore-api listens on a Unix socket.
            api_pids=gunicorn_api_pids(f"unix:{self.data_dir / 'run' / 'api.sock'}"),
            stopper=self.stop,
            version=f"pulp_container {plugin}, pulpcore {core}",
            started_in_s=time.monotonic() - started,
            psql=lambda sql: _psql(self.environment, self.launch_log, sql),
            database_log=self.data_dir / "logs" / "postgres.log",
        )

    def status(self) -> dict[str, str]:
        response = requests.get(f"{self.url}/pulp/api/v3/status/", verify=False, timeout=30)
        response.raise_for_status()
        return {entry["component"]: entry["version"] for entry in response.json()["versions"]}

    def stop(self) -> None:
        if self.process is not None:
            stop_server(self.process)
            self.process = None
        if self.pg_started:
            try:
                self._script("postgres.sh", "stop")
            except LaunchError:
                pass
            self.pg_started = False
