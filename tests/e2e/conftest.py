"""Fixtures for end-to-end tests: a running Pulp registry and real clients pointed at it.

The server is the one at ``PULP_E2E_URL`` when that is set. Otherwise ``scripts/run.sh`` starts
one (pulpcore-api over TLS on ``https://127.0.0.1:$PULP_API_PORT``, the content app and a
worker) for the session, with the environment that ``make test`` exports, and stops it at the
end. The server's data persists between runs, so every test pushes to names of its own.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import urllib3

from tests.support.container_tools import (
    UNPRIVILEGED_USER,
    Podman,
    Skopeo,
    ensure_unprivileged_user,
    open_to_everyone,
)
from tests.support.registry_http import RunningRegistry, ca_bundle, session_factory

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 180.0
SHUTDOWN_TIMEOUT = 30.0


def _data_dir() -> Path:
    return Path(os.environ.get("PULP_DATA_DIR", REPOSITORY_ROOT / ".pulp"))


def _answers(url: str) -> bool:
    """True once ``GET /v2/`` answers as a registry does (200, or 401 asking for credentials)."""
    try:
        # Not verified: the CA may not exist yet while the server starts.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            response = requests.get(f"{url}/v2/", timeout=5, verify=False)
    except requests.RequestException:
        return False
    return response.status_code in (200, 401)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as error:
        return f"({error})"
    return "\n".join(text[-lines:])


def _logs_tail(run_log: Path) -> str:
    parts = [f"--- {run_log} ---\n{_tail(run_log)}"]
    for log in sorted((_data_dir() / "logs").glob("*")):
        if log.is_file():
            parts.append(f"--- {log} ---\n{_tail(log)}")
    return "\n".join(parts)


def _start_server(url: str, run_log: Path) -> subprocess.Popen[bytes]:
    script = REPOSITORY_ROOT / "scripts" / "run.sh"
    if not script.exists():
        pytest.fail(f"no server at {url} and no {script} to start one; set PULP_E2E_URL")
    environment = {**os.environ, "PULP_SKIP_INSTALL": "1"}
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
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if _answers(url):
            return process
        if process.poll() is not None:
            pytest.fail(
                f"scripts/run.sh exited with {process.returncode} before {url}/v2/ answered\n"
                + _logs_tail(run_log)
            )
        time.sleep(1)
    _stop_server(process)
    pytest.fail(f"{url}/v2/ did not answer within {STARTUP_TIMEOUT:.0f}s\n" + _logs_tail(run_log))


def _stop_server(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=SHUTDOWN_TIMEOUT)


def _ca_cert() -> Path:
    """The CA that signed the server's certificate (``scripts/`` make one in the data folder)."""
    for variable in ("PULP_E2E_CA_CERT", "PULP_CA_CERT"):
        if os.environ.get(variable):
            return Path(os.environ[variable])
    tls = _data_dir() / "tls"
    return tls / "ca.crt" if (tls / "ca.crt").exists() else tls / "server.crt"


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """The registry under test, started for the session unless ``PULP_E2E_URL`` names one."""
    url = os.environ.get("PULP_E2E_URL", "").rstrip("/")
    process = None
    if not url:
        url = f"https://127.0.0.1:{os.environ.get('PULP_API_PORT', '24817')}"
        if not _answers(url):
            if os.environ.get("PYTEST_XDIST_WORKER"):
                # Each xdist worker has its own session: they would all start (and stop) one.
                pytest.fail(f"no server at {url}: start one (scripts/run.sh) before using -n")
            process = _start_server(url, tmp_path_factory.mktemp("server") / "run.log")
    admin = (
        os.environ.get("PULP_ADMIN_USER", "admin"),
        os.environ.get("PULP_ADMIN_PASSWORD", "password"),
    )
    ca_cert = _ca_cert()
    try:
        yield RunningRegistry(
            url=url,
            host=urlsplit(url).netloc,
            admin=admin,
            ca_cert=ca_cert,
            session=session_factory(ca_bundle(ca_cert), admin),
        )
    finally:
        if process is not None:
            _stop_server(process)


@pytest.fixture(scope="session")
def shared_root() -> Iterator[Path]:
    """A directory that the unprivileged skopeo user can reach (pytest's tmp is root-only)."""
    root = Path(tempfile.mkdtemp(prefix="pulp-e2e-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def work_dir(shared_root: Path, request: pytest.FixtureRequest) -> Path:
    """This test's directory for image layouts, writable by the unprivileged user too."""
    return open_to_everyone(shared_root / f"{_slug(request.node.name)}-{secrets.token_hex(3)}")


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug.removeprefix("test-")[:40].strip("-")


@pytest.fixture
def repository_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Makes registry names unique to this test and run: ``e2e/<test>-<suffix>[-<part>]``."""
    base = f"e2e/{_slug(request.node.name)}-{secrets.token_hex(3)}"

    def name(part: str = "") -> str:
        return f"{base}-{_slug(part)}" if part else base

    return name


@pytest.fixture
def skopeo(registry: RunningRegistry, work_dir: Path) -> Skopeo:
    """skopeo as the admin; run as an unprivileged user with a fresh ``HOME`` (a cold cache)."""
    user = ensure_unprivileged_user()
    if user is None:
        return Skopeo(credentials=registry.admin)
    home = open_to_everyone(work_dir / "home")
    shutil.chown(home, user=UNPRIVILEGED_USER)
    return Skopeo(credentials=registry.admin, user=UNPRIVILEGED_USER, home=home)


@pytest.fixture
def podman_factory(registry: RunningRegistry, shared_root: Path) -> Callable[[str], Podman]:
    """Makes podman instances as the admin, each with private storage (no shared image store)."""

    def make(label: str) -> Podman:
        # A short path: podman refuses a run root longer than 50 characters.
        state_dir = Path(tempfile.mkdtemp(prefix=f"pm-{label[:6]}-", dir=shared_root))
        return Podman(state_dir=state_dir, credentials=registry.admin)

    return make
