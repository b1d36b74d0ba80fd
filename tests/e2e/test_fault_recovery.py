"""Faults end to end (issue 13), against a `scripts/run.sh` of their own that they hurt:

- an API worker killed with SIGKILL in the middle of a PATCH, and of the final PUT: the client's
  retry finishes the push, the digest checks, and nothing half-written was ever visible;
- PostgreSQL stopped for 60 s in the middle of a push: the API answers 503 UNAVAILABLE (OCI JSON)
  meanwhile; every service serves again within 5 s of the database's return, and the same
  run.sh serves the push's retry;
- a layer of 1 GiB pushed by skopeo and by podman (at the same time) over links throttled so that
  each push outlasts both the token lifetime and the API's worker timeout;
- run.sh killed with SIGKILL: within seconds nothing of the instance runs and its ports close.

The instance has its own data folder, ports and embedded PostgreSQL (never the session's
server), with the API's worker timeout at 10 s and tokens that live 60 s with no leeway. 60 s,
not less: the token specification asks for no less ("for compatibility with older clients"),
and skopeo and podman (containers/image) take a shorter token for one of 60 s, so with 10 s
tokens they fail on their first request after 10 s whatever the server does. The tests run in
file order; the SIGKILL of run.sh comes last. Timings are printed (``-s``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from harness import server
from harness.container_tools import Podman, Skopeo
from harness.oci_images import Layer, build_image, write_layer_tar
from harness.registry_http import RegistryHTTP, repository_scope, session_factory
from harness.throttle import ThrottlingProxy

WORKER_TIMEOUT = 10  # seconds
TOKEN_LIFETIME = 60  # the least the token specification and containers/image allow
OUTAGE = 60.0
RECOVERY_LIMIT = 5.0
LARGE_PAYLOAD = (1 << 30) + (1 << 20)  # a little over 1 GiB, so the layer is too
# Slow enough that a 1 GiB upload outlasts the token lifetime, no slower.
THROTTLE_BYTES_PER_SECOND = LARGE_PAYLOAD / (TOKEN_LIFETIME + 2)
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Instance:
    """A run.sh of this module's own."""

    process: subprocess.Popen[bytes]
    folder: Path
    environment: dict[str, str]
    url: str
    api_port: int
    content_port: int
    db_port: int
    admin: tuple[str, str]

    @property
    def ca_cert(self) -> Path:
        return self.folder / "tls" / "ca.crt"

    def http(self) -> RegistryHTTP:
        return RegistryHTTP(self.url, self.admin, verify=str(self.ca_cert), timeout=60)

    def session(self) -> requests.Session:
        """A session for the REST API and plain requests: the admin, basic auth."""
        return session_factory(str(self.ca_cert), self.admin)()

    def postgres(self, action: str) -> None:
        subprocess.run(
            [str(server.REPOSITORY_ROOT / "scripts" / "postgres.sh"), action],
            env=self.environment,
            check=True,
            capture_output=True,
            timeout=120,
        )


@dataclass
class LargeImages:
    """The two 1 GiB images, made in the background (see ``large_images``)."""

    skopeo_layout: Future[tuple[Path, str]] | None
    podman_image: Future[tuple[Podman, str]] | None

    def wait(self) -> float:
        """Seconds until both are made (or failed: the large-layer test reports that)."""
        started = time.monotonic()
        for future in (self.skopeo_layout, self.podman_image):
            if future is not None:
                with contextlib.suppress(Exception):
                    future.result()
        return time.monotonic() - started


@pytest.fixture(scope="module")
def large_images(request: pytest.FixtureRequest, shared_root: Path) -> Iterator[LargeImages]:
    """Starts making the large images, when the large-layer test is selected, before the server
    starts: making them is minutes of work that needs no server, done while it starts and
    while the database is away."""
    if not any(item.name.startswith("test_throttled") for item in request.session.items):
        yield LargeImages(None, None)
        return
    work = Path(tempfile.mkdtemp(prefix="large-", dir=shared_root))
    with ThreadPoolExecutor(max_workers=2) as pool:
        images = LargeImages(
            pool.submit(_skopeo_layout, work / "layout"),
            pool.submit(_podman_image, work / "pm"),
        )
        try:
            yield images
        finally:
            for future in (images.skopeo_layout, images.podman_image):
                assert future is not None
                future.cancel()
                with contextlib.suppress(Exception):
                    future.result()
            shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def instance(
    tmp_path_factory: pytest.TempPathFactory, large_images: LargeImages
) -> Iterator[Instance]:
    if os.environ.get("PULP_E2E_URL"):
        pytest.skip("fault tests start and hurt a server of their own; PULP_E2E_URL names one")
    # Short (Unix socket paths), and reachable by the postgres user (the cluster stays inside).
    folder = Path(tempfile.mkdtemp(prefix="pulp-faults-"))
    folder.chmod(0o755)
    api_port, content_port, db_port = (server.free_port() for _ in range(3))
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PULP_CA_CERT", "PULP_E2E_CA_CERT", "PULP_SETTINGS", "PULP_DATABASE_HOST")
    }
    environment.update(
        PULP_DATA_DIR=str(folder),
        PULP_API_PORT=str(api_port),
        PULP_CONTENT_PORT=str(content_port),
        PULP_DB_PORT=str(db_port),
        PULP_API_WORKERS="2",
        PULP_API_TIMEOUT=str(WORKER_TIMEOUT),
        PULP_TOKEN_EXPIRATION_TIME=str(TOKEN_LIFETIME),
        PULP_TOKEN_LEEWAY="0",
    )
    url = f"https://127.0.0.1:{api_port}"
    started = time.monotonic()
    try:
        process = server.start_server(url, folder / "run.log", environment)
    except server.ServerError as error:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(str(error))
    print(f"fault instance started in {time.monotonic() - started:.1f}s")
    admin = ("admin", environment.get("PULP_ADMIN_PASSWORD", "password"))
    try:
        yield Instance(process, folder, environment, url, api_port, content_port, db_port, admin)
    finally:
        server.stop_server(process)
        for pid in server.instance_processes(folder):  # whatever a failed test left behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(folder, ignore_errors=True)


def _until(check: Callable[[], bool], timeout: float, pause: float = 0.1) -> float:
    """Seconds until ``check()`` is true; fails after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s: {check.__doc__ or check}")
        time.sleep(pause)
    return time.monotonic() - started


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _kill_api_workers(instance: Instance) -> list[int]:
    workers = server.api_workers(instance.folder)
    assert workers, "no API worker found"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    return workers


def _streamed(data: bytes, at: int, action: Callable[[], None]) -> Iterator[bytes]:
    """The body ``data`` in chunks, calling ``action`` once ``at`` bytes went out (at the end
    when ``at == len(data)``) and then sending the rest slowly, so it happens mid-request."""
    chunk = 256 * 1024
    done = False
    for offset in range(0, len(data), chunk):
        if offset >= at and not done:
            action()
            done = True
            time.sleep(1)
        yield data[offset : offset + chunk]
    if not done:
        time.sleep(0.05)
        action()


def _send_cut(http: RegistryHTTP, method: str, url: str, body: Iterator[bytes], **headers: str):
    """A request whose body is cut by a crash: whatever the front or the socket says."""
    try:
        return http.session.request(
            method, url, data=body, headers=headers, timeout=60, allow_redirects=False
        ).status_code
    except requests.RequestException as error:
        return type(error).__name__


def _with_digest(url: str, data: bytes) -> str:
    return url + ("&" if "?" in url else "?") + f"digest={_digest(data)}"


def _resume_and_finish(http: RegistryHTTP, name: str, location: str, data: bytes) -> str:
    """What a client does after a failed request: ask where the upload stands (or start again if
    the server lost it), send the rest, and PUT the digest; returns how it went."""
    scope = repository_scope(name)
    status = http.upload_status(name, location)
    if status.status_code == 204:
        # "0-<last byte>"; "0-0" is also what an empty upload reports.
        end = int(status.headers["Range"].rsplit("-", 1)[1])
        offset = end + 1 if end else 0
        how = f"resumed at {offset}"
    else:
        assert status.status_code == 404, (status.status_code, status.text)
        assert status.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
        started = http.start_upload(name)
        assert started.status_code == 202, started.text
        location, offset, how = started.headers["Location"], 0, "started again"
    if offset < len(data):
        patched = http.patch_upload(name, location, data[offset:], offset)
        assert patched.status_code == 202, patched.text
        location = patched.headers["Location"]
    put = http.request(
        "PUT",
        _with_digest(http.absolute(location), data),
        scope=scope,
        headers={"Content-Length": "0"},
        data=b"",
    )
    assert put.status_code == 201, (put.status_code, put.text)
    return how


def _assert_blob(http: RegistryHTTP, name: str, data: bytes) -> None:
    head = http.blob_exists(name, _digest(data))
    assert head.status_code == 200, head.status_code
    assert int(head.headers["Content-Length"]) == len(data)
    got = http.request("GET", f"/v2/{name}/blobs/{_digest(data)}", scope=repository_scope(name))
    assert got.status_code == 200 and _digest(got.content) == _digest(data)


def _api_answers(http: RegistryHTTP) -> bool:
    try:
        return http.request("GET", "/v2/", timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize("moment", ["mid-patch", "mid-final-put"])
def test_api_worker_killed_mid_upload_then_the_retry_finishes_it(
    instance: Instance, moment: str
) -> None:
    http = instance.http()
    name = f"faults/killed-{moment}"
    data = os.urandom(24 << 20)
    half = len(data) // 2
    started = http.start_upload(name)
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    headers = {
        **http.authorization(repository_scope(name)),
        "Content-Type": "application/octet-stream",
    }
    killed: list[int] = []

    def kill() -> None:
        killed.extend(_kill_api_workers(instance))

    if moment == "mid-patch":
        body = _streamed(data, half, kill)
        answer = _send_cut(http, "PATCH", http.absolute(location), body, **headers)
    else:
        first = http.patch_upload(name, location, data[:half])
        assert first.status_code == 202, first.text
        location = first.headers["Location"]
        body = _streamed(data[half:], len(data) - half, kill)
        put_url = _with_digest(http.absolute(location), data)
        answer = _send_cut(http, "PUT", put_url, body, **headers)
    assert killed
    # Nothing half-written is visible while the workers come back.
    waited = _until(lambda: _api_answers(http), 60)
    head = http.blob_exists(name, _digest(data))
    assert head.status_code in (200, 404)
    if head.status_code == 200:  # the commit finished before the kill: whole, or nothing
        assert int(head.headers["Content-Length"]) == len(data)
    retried = time.monotonic()
    how = _resume_and_finish(http, name, location, data)
    _assert_blob(http, name, data)
    print(
        f"{moment}: workers {killed} killed, the cut request got {answer}; API back in "
        f"{waited:.1f}s; retry {how}, finished in {time.monotonic() - retried:.1f}s"
    )


def _probe_content(instance: Instance) -> bool:
    try:
        return (
            requests.get(
                f"http://127.0.0.1:{instance.content_port}/pulp/content/", timeout=5
            ).status_code
            == 200
        )
    except requests.RequestException:
        return False


def _poll(check: Callable[[], bool], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def _task_picked_up(instance: Instance, deadline: float) -> str | None:
    """Dispatch a task until the API takes it; the task's URL once a worker runs it (the worker
    serves), or None by ``deadline``."""
    session = instance.session()
    while time.monotonic() < deadline:
        try:
            answer = session.post(
                f"{instance.url}/pulp/api/v3/orphans/cleanup/",
                json={"orphan_protection_time": 10000},
                timeout=5,
            )
        except requests.RequestException:
            answer = None
        if answer is not None and answer.status_code == 202:
            task_url = instance.url + answer.json()["task"]
            while time.monotonic() < deadline:
                state = session.get(task_url, timeout=5).json()["state"]
                if state in ("running", "completed"):
                    return task_url
                assert state not in ("failed", "canceled"), state
                time.sleep(0.1)
        time.sleep(0.1)
    return None


def test_database_outage_answers_503_then_every_service_recovers_and_the_push_retries(
    instance: Instance, large_images: LargeImages
) -> None:
    http = instance.http()
    name = "faults/outage"
    data = os.urandom(4 << 20)
    started = http.start_upload(name)
    location = started.headers["Location"]
    first = http.patch_upload(name, location, data[: len(data) // 2])
    assert first.status_code == 202, first.text
    location = first.headers["Location"]
    run_pid = instance.process.pid

    # Basic auth during the outage: a bearer token would expire meanwhile (10 s), and a client
    # cannot get a new one while the database is away.
    basic = instance.session()
    token_url = f"{instance.url}/token/?service=127.0.0.1:{instance.api_port}"
    probes = [
        ("GET", http.absolute(location)),
        ("GET", f"{instance.url}/v2/"),
        ("GET", f"{token_url}&scope={repository_scope(name)}"),
        ("PATCH", http.absolute(location)),
    ]
    instance.postgres("stop")
    outage_started = time.monotonic()
    answered = 0
    while time.monotonic() - outage_started < OUTAGE:
        for method, url in probes:
            answer = basic.request(
                method, url, data=b"x" if method == "PATCH" else None, timeout=30
            )
            answered += 1
            assert answer.status_code == 503, (method, url, answer.status_code, answer.text)
            assert answer.headers["Content-Type"] == "application/json"
            assert answer.json()["errors"][0]["code"] == "UNAVAILABLE"
        assert instance.process.poll() is None, "run.sh exited during the outage"
        time.sleep(5)
    # The large images are made in the background meanwhile; recovery is timed without them.
    outage = time.monotonic() - outage_started + large_images.wait()
    instance.postgres("start")
    back = time.monotonic()

    deadline = back + 60
    serves = {
        "api": lambda: _poll(lambda: _api_answers(http), deadline),
        "content": lambda: _poll(lambda: _probe_content(instance), deadline),
        "worker": lambda: _task_picked_up(instance, deadline),
    }
    recovered: dict[str, float] = {}
    outcome: dict[str, object] = {}

    def measure(service: str) -> None:
        outcome[service] = serves[service]()
        if outcome[service]:
            recovered[service] = time.monotonic() - back

    probes = [threading.Thread(target=measure, args=(service,)) for service in serves]
    for probe in probes:
        probe.start()
    for probe in probes:
        probe.join()
    print(
        f"database stopped {outage:.0f}s ({answered} requests, all 503 UNAVAILABLE); "
        "recovered after it was back: "
        + ", ".join(f"{service} {seconds:.1f}s" for service, seconds in sorted(recovered.items()))
    )
    assert set(recovered) == {"api", "content", "worker"}, recovered
    assert max(recovered.values()) <= RECOVERY_LIMIT, recovered
    task_url = str(outcome["worker"])
    _until(lambda: instance.session().get(task_url, timeout=5).json()["state"] == "completed", 60)

    # The same run.sh serves the push's retry: the session goes on where it stood.
    assert instance.process.poll() is None and instance.process.pid == run_pid
    how = _resume_and_finish(http, name, location, data)
    assert how == f"resumed at {len(data) // 2}"
    _assert_blob(http, name, data)


def _pulled_layer_digest(http: RegistryHTTP, name: str, tag: str) -> tuple[str, str]:
    """The layer digest of ``name:tag``'s manifest, and the digest of the bytes served for it."""
    accept = f"{MANIFEST_TYPE},application/vnd.docker.distribution.manifest.v2+json"
    manifest = http.get_manifest(name, tag, accept)
    assert manifest.status_code == 200, manifest.text
    (layer,) = json.loads(manifest.content)["layers"]
    assert layer["size"] >= 1 << 30, layer
    hasher = hashlib.sha256()
    with http.request(
        "GET", f"/v2/{name}/blobs/{layer['digest']}", scope=repository_scope(name, "pull"),
        stream=True, allow_redirects=True,
    ) as blob:  # fmt: skip
        assert blob.status_code == 200
        for chunk in blob.iter_content(1 << 20):
            hasher.update(chunk)
    return layer["digest"], "sha256:" + hasher.hexdigest()


def _skopeo_layout(layout: Path) -> tuple[Path, str]:
    """An image whose layer is gzip (stored blocks) of zeros: cheap to make, and skopeo pushes a
    compressed layer as is, every byte. Returns the layout and the layer digest."""
    image = build_image(layout, [Layer(1301, LARGE_PAYLOAD, True, zeros=True)], "v1")
    return layout, image.layer_digests[0]


def _podman_image(state_dir: Path) -> tuple[Podman, str]:
    """podman compresses what it pushes, so its layer is random bytes (zeros would shrink to
    nothing), streamed straight into its storage. Returns podman and the image id."""
    podman = Podman(state_dir=state_dir, credentials=None, timeout=900)
    layer = Layer(1302, LARGE_PAYLOAD)
    return podman, podman.import_tarball(lambda stdin: write_layer_tar(layer, stdin), "large:v1")


def _push(instance: Instance, images: LargeImages, client: str, port: int) -> float:
    """Push the client's large image to ``faults/large-<client>:v1`` through ``port``; the
    seconds the push took."""
    destination = f"docker://127.0.0.1:{port}/faults/large-{client}:v1"
    user, password = instance.admin
    if client == "skopeo":
        assert images.skopeo_layout is not None
        layout, _ = images.skopeo_layout.result()
        started = time.monotonic()
        Skopeo(credentials=instance.admin, timeout=900).copy(f"oci:{layout}:v1", destination)
    else:
        assert images.podman_image is not None
        podman, image_id = images.podman_image.result()
        started = time.monotonic()
        # zstd: gzip of 1 GiB would take podman longer than the upload on this machine.
        podman("push", "--tls-verify=false", f"--creds={user}:{password}",
               "--compression-format=zstd", image_id, destination)  # fmt: skip
    return time.monotonic() - started


def test_throttled_1gib_layers_outlast_token_and_worker_timeout(
    instance: Instance, large_images: LargeImages
) -> None:
    """skopeo and podman push at the same time, each over a link of its own at ~15 MiB/s."""
    waited = large_images.wait()
    for future in (large_images.skopeo_layout, large_images.podman_image):
        assert future is not None
        future.result()
    clients = ("skopeo", "podman")
    with ThrottlingProxy(instance.api_port, THROTTLE_BYTES_PER_SECOND) as proxy:
        with ThreadPoolExecutor(max_workers=2) as pool:
            pushes = {client: pool.submit(_push, instance, large_images, client, proxy.port)
                      for client in clients}  # fmt: skip
            pushed = {client: future.result() for client, future in pushes.items()}
    verifying = time.monotonic()
    http = instance.http()
    served = {
        client: _pulled_layer_digest(http, f"faults/large-{client}", "v1") for client in clients
    }
    print(
        f"1 GiB layers pushed at {THROTTLE_BYTES_PER_SECOND / 2**20:.1f} MiB/s a connection "
        f"(token lifetime {TOKEN_LIFETIME}s, worker timeout {WORKER_TIMEOUT}s): "
        + ", ".join(f"{client} {seconds:.1f}s" for client, seconds in pushed.items())
        + f"; longest connection {proxy.longest:.1f}s; images ready {waited:.1f}s after asked; "
        f"both pulled back and hashed in {time.monotonic() - verifying:.1f}s"
    )
    assert proxy.sent >= 2 << 30, proxy.sent
    assert min(pushed.values()) > TOKEN_LIFETIME, pushed
    for client, (layer_digest, bytes_digest) in served.items():
        assert layer_digest == bytes_digest, client
    assert large_images.skopeo_layout is not None
    assert served["skopeo"][0] == large_images.skopeo_layout.result()[1]


def test_run_sh_killed_with_sigkill_leaves_nothing_running(instance: Instance) -> None:
    assert instance.process.poll() is None
    assert server.instance_processes(instance.folder)
    os.kill(instance.process.pid, signal.SIGKILL)
    killed = time.monotonic()
    instance.process.wait(timeout=10)
    ports = (instance.api_port, instance.content_port, instance.db_port)

    def nothing_left() -> bool:
        return not server.instance_processes(instance.folder) and not any(
            server.port_open(port) for port in ports
        )

    try:
        _until(nothing_left, 30, pause=0.2)
    finally:
        left = server.instance_processes(instance.folder)
    elapsed = time.monotonic() - killed
    print(f"run.sh SIGKILLed: nothing of the instance runs after {elapsed:.1f}s")
    assert not left
    assert not (instance.folder / "run.pid").exists()
    assert elapsed <= 15
