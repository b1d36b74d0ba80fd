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
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness import server
from harness.container_tools import (
    UNPRIVILEGED_USER,
    Podman,
    Skopeo,
    ensure_unprivileged_user,
    open_to_everyone,
)
from harness.registry_http import RunningRegistry, ca_bundle, session_factory


def _start_server(url: str, run_log: Path) -> subprocess.Popen[bytes]:
    try:
        return server.start_server(url, run_log)
    except server.ServerError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """The registry under test, started for the session unless ``PULP_E2E_URL`` names one."""
    url = os.environ.get("PULP_E2E_URL", "").rstrip("/")
    process = None
    if not url:
        url = f"https://127.0.0.1:{os.environ.get('PULP_API_PORT', '24817')}"
        if not server.answers(url):
            if os.environ.get("PYTEST_XDIST_WORKER"):
                # Each xdist worker has its own session: they would all start (and stop) one.
                pytest.fail(f"no server at {url}: start one (scripts/run.sh) before using -n")
            process = _start_server(url, tmp_path_factory.mktemp("server") / "run.log")
    admin = (
        os.environ.get("PULP_ADMIN_USER", "admin"),
        os.environ.get("PULP_ADMIN_PASSWORD", "password"),
    )
    ca_cert = server.ca_cert()
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
            server.stop_server(process)


@pytest.fixture(scope="session")
def strict_registry(
    registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    """The same registry through one more API process with ``CONTAINER_LINK_BLOBS_ON_HEAD`` off.

    With link-on-head on, a client's ``HEAD`` on the target already links a readable blob, so it
    never sends ``?mount=``; tests of real mounts talk to this process instead. It runs over the
    same settings and database (several API processes over one PostgreSQL is how Pulp scales).
    With ``PULP_E2E_URL`` (an external server) it is ``PULP_E2E_STRICT_URL``, or the test skips.
    """
    process = None
    log = None
    if os.environ.get("PULP_E2E_URL"):
        url = os.environ.get("PULP_E2E_STRICT_URL", "").rstrip("/")
        if not url:
            pytest.skip("PULP_E2E_URL is set but PULP_E2E_STRICT_URL is not")
    else:
        port = server.free_port()
        url = f"https://127.0.0.1:{port}"
        log = tmp_path_factory.mktemp("strict-api") / "api.log"
        try:
            process = server.start_api_process(
                port, log, {"PULP_CONTAINER_LINK_BLOBS_ON_HEAD": "false"}
            )
        except server.ServerError as error:
            pytest.fail(str(error))
    try:
        yield RunningRegistry(
            url=url,
            host=urlsplit(url).netloc,
            admin=registry.admin,
            ca_cert=registry.ca_cert,
            session=registry.session,
            access_log=log,
        )
    finally:
        if process is not None:
            server.stop_server(process)


@pytest.fixture(scope="session")
def shared_root() -> Iterator[Path]:
    """A directory that the unprivileged skopeo user can reach (pytest's tmp is root-only)."""
    # podman names an image pulled from an OCI layout after its path, so every path segment
    # must be a valid reference component: hex, not mkdtemp's letters and underscores.
    root = Path(tempfile.gettempdir()) / f"pulp-e2e-{secrets.token_hex(4)}"
    root.mkdir(mode=0o755)
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


@pytest.fixture
def skopeo_home(work_dir: Path) -> Callable[[str], Path]:
    """Makes ``HOME`` folders for the unprivileged skopeo user: one per client cache wanted."""

    def make(label: str) -> Path:
        home = open_to_everyone(work_dir / f"home-{_slug(label)}")
        if ensure_unprivileged_user() is not None:
            shutil.chown(home, user=UNPRIVILEGED_USER)
        return home

    return make
