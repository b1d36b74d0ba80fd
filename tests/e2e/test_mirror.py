"""Mirror from other registries (issue 16): sync, pull-through, and mounts of what was mirrored.

The sources are real registries started here: Debian's ``docker-registry`` (distribution, with
htpasswd Basic authentication and TLS), a second instance of ours (token authentication), and,
for the faults no real registry would serve, ``misbehaving_registry``. What the server
downloaded is read from its own records: the sync task's progress reports and the blob
transfers (outcome ``fetched``), and the source's request counts.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from benchmarks.peers import distribution as distribution_peer
from harness import server
from harness.container_tools import Skopeo
from harness.oci_images import ImageInfo, Layer, build_image
from harness.pulp_api import API, blob_transfers, wait_for_task
from harness.registry_http import RunningRegistry, repository_scope
from tests.e2e.hierarchy import KiB, fresh_seed, gz, skopeo_for, unique_bytes
from tests.e2e.misbehaving_registry import MisbehavingRegistry
from tests.e2e.test_pulp_cli import PulpCli, pulp  # noqa: F401 - the pulp-cli fixture
from tests.e2e.test_push_pull import assert_pulled_intact

API_PORT = int(os.environ.get("PULP_API_PORT", "24817"))
CONTENT_PORT = int(os.environ.get("PULP_CONTENT_PORT", str(API_PORT - 1)))
# The sources listen on ports of this run's block: API port + 100 and up.
SOURCE_API_PORT, SOURCE_CONTENT_PORT = API_PORT + 100, CONTENT_PORT + 100
DISTRIBUTION_PORT, MISBEHAVING_PORT = API_PORT + 123, API_PORT + 124


# --- sources ----------------------------------------------------------------------------------


class Source:
    """A source registry the tests push to with skopeo."""

    def __init__(self, url: str, credentials: tuple[str, str], ca_cert: Path) -> None:
        self.url, self.credentials, self.ca_cert = url, credentials, ca_cert
        self.host = url.split("://", 1)[1]
        self.skopeo = Skopeo(credentials=credentials)

    def push(self, layout: Path, tag: str, name: str) -> None:
        self.skopeo.copy(f"oci:{layout}:{tag}", f"docker://{self.host}/{name}:{tag}")

    def delete(self, name: str, digest: str) -> None:
        response = requests.delete(
            f"{self.url}/v2/{name}/manifests/{digest}",
            auth=self.credentials,
            verify=str(self.ca_cert),
            timeout=60,
        )
        assert response.status_code == 202, response.text


@pytest.fixture(scope="module")
def distribution_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """Debian's docker-registry with htpasswd Basic authentication over TLS."""
    if not distribution_peer.available():
        pytest.skip("docker-registry is not installed (make install)")
    root = tmp_path_factory.mktemp("distribution")
    peer = distribution_peer.launch(root, port=DISTRIBUTION_PORT)
    try:
        yield Source(peer.url, peer.credentials, root / "server.crt")
    finally:
        peer.stopper()


class _Background:
    """A second instance of ours, started in a thread while the first tests run."""

    def __init__(self, run_log: Path) -> None:
        # Nothing of the first instance's environment (its settings, database port, CA).
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PULP_", "DJANGO_")) or key == "PULP_VENV"
        }
        self.environment = {
            **inherited,
            "PULP_DATA_DIR": f"{server.data_dir()}-source",
            "PULP_API_PORT": str(SOURCE_API_PORT),
            "PULP_CONTENT_PORT": str(SOURCE_CONTENT_PORT),
        }
        self.url = f"https://127.0.0.1:{SOURCE_API_PORT}"
        self.process = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._start, args=(run_log,), daemon=True)
        self.thread.start()

    def _start(self, run_log: Path) -> None:
        try:
            self.process = server.start_server(self.url, run_log, self.environment)
        except Exception as error:  # reported to the test that needs the server
            self.error = error


@pytest.fixture(scope="module")
def starting_ours(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Background]:
    started = _Background(tmp_path_factory.mktemp("source") / "run.log")
    yield started
    started.thread.join()
    if started.process is not None:
        # Its shutdown (half a minute of run.sh stopping its services) need not hold the session:
        # the signal goes now, the waiting happens beside the next tests.
        threading.Thread(target=server.stop_server, args=(started.process,), daemon=True).start()


@pytest.fixture(scope="module")
def ours_source(starting_ours: _Background, registry: RunningRegistry) -> Source:
    """A second instance of ours (token authentication), its own database and storage."""
    starting_ours.thread.join()
    if starting_ours.error is not None:
        pytest.fail(f"the second instance did not start: {starting_ours.error}")
    return Source(starting_ours.url, registry.admin, server.ca_cert(starting_ours.environment))


# --- Pulp REST helpers ------------------------------------------------------------------------


def _post(registry: RunningRegistry, path: str, body: dict) -> dict:
    response = registry.session().post(f"{registry.url}{path}", json=body, timeout=60)
    assert response.status_code in (201, 202), response.text
    answer = response.json()
    return wait_for_task(registry, answer["task"]) if "task" in answer else answer


def _remote(registry: RunningRegistry, source: Source | MisbehavingRegistry, name: str, **extra):
    body = {"name": f"{name}-{fresh_seed()}", "url": source.url, "upstream_name": name, **extra}
    if isinstance(source, Source):
        user, password = source.credentials
        body.update(username=user, password=password, ca_cert=source.ca_cert.read_text())
    return _post(registry, f"{API}/remotes/container/container/", body)


def _repository(registry: RunningRegistry, name: str, distributed: bool = False) -> dict:
    repository = _post(registry, f"{API}/repositories/container/container/", {"name": name})
    if distributed:
        body = {"name": name, "base_path": name, "repository": repository["pulp_href"]}
        _post(registry, f"{API}/distributions/container/container/", body)
    return repository


def _sync(registry: RunningRegistry, repository: dict, remote: dict, mirror=False) -> dict:
    """Run a sync to its end and return the task, whatever its outcome."""
    session = registry.session()
    response = session.post(
        f"{registry.url}{repository['pulp_href']}sync/",
        json={"remote": remote["pulp_href"], "mirror": mirror},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    href = response.json()["task"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        task = session.get(f"{registry.url}{href}", timeout=60).json()
        if task["state"] in ("completed", "failed", "canceled"):
            return task
        time.sleep(0.3)
    raise AssertionError(f"sync {href} did not finish")


def _downloaded(task: dict) -> tuple[int, int]:
    """(blobs, bytes) the sync task downloaded, from its progress reports."""
    reports = {report["code"]: report["done"] for report in task["progress_reports"]}
    return reports["sync.downloading.blobs"], reports["sync.downloading.bytes"]


def _latest(registry: RunningRegistry, repository: dict) -> dict:
    href = registry.session().get(f"{registry.url}{repository['pulp_href']}").json()
    return registry.session().get(f"{registry.url}{href['latest_version_href']}").json()


def _version_tags(registry: RunningRegistry, version_href: str) -> set[str]:
    response = registry.session().get(
        f"{registry.url}{API}/content/container/tags/",
        params={"repository_version": version_href, "limit": 1000},
    )
    return {tag["name"] for tag in response.json()["results"]}


def _stored(registry: RunningRegistry, kind: str, digest: str) -> int:
    response = registry.session().get(
        f"{registry.url}{API}/content/container/{kind}/", params={"digest": digest}
    )
    return int(response.json()["count"])


def _base(layout: Path, size: int = 256 * KiB) -> tuple[list[Layer], int]:
    """Two base layers from seeds new to this run, and the next free seed."""
    seed = fresh_seed()
    return [gz(seed, size), gz(seed + 1, size)], seed + 10


def _images(layout: Path, tags: list[str]) -> dict[str, ImageInfo]:
    """Images sharing two base layers, each with a layer of its own."""
    base, seed = _base(layout)
    return {
        tag: build_image(layout, [*base, gz(seed + index, 32 * KiB)], tag)
        for index, tag in enumerate(tags)
    }


# --- sync from distribution (htpasswd, TLS), through pulp-cli ---------------------------------


def test_pulp_cli_syncs_filtered_tags_then_only_what_is_new_then_mirrors(
    starting_ours: _Background,  # the second instance starts meanwhile, for the last test
    pulp: PulpCli,  # noqa: F811 - the fixture imported above
    registry: RunningRegistry,
    distribution_source: Source,
    work_dir: Path,
    repository_name: Callable[..., str],
) -> None:
    name = repository_name()
    layout = work_dir / "src"
    images = _images(layout, ["v1", "v2", "v2-rc", "other", "v3"])
    for tag in ["v1", "v2", "v2-rc", "other"]:
        distribution_source.push(layout, tag, name)
    user, password = distribution_source.credentials
    remote = pulp(
        "container", "remote", "create", "--name", name, "--url", distribution_source.url,
        "--upstream-name", name, "--username", user, "--password", password,
        "--ca-cert", f"@{distribution_source.ca_cert}",
        "--include-tags", '["v*"]', "--exclude-tags", '["*-rc"]',
    )  # fmt: skip
    assert (remote["upstream_name"], remote["include_tags"]) == (name, ["v*"])
    assert (remote["exclude_tags"], remote["policy"]) == (["*-rc"], "immediate")
    repository = pulp("container", "repository", "create", "--name", name, "--remote", name)
    assert repository["remote"] == remote["pulp_href"]

    pulp("container", "repository", "sync", "--name", name)
    version = pulp("container", "repository", "version", "show", "--repository", name)
    assert version["number"] == 1
    tags = pulp("container", "content", "-t", "tag", "list", "--repository-version",
                version["pulp_href"])  # fmt: skip
    assert {tag["name"] for tag in tags} == {"v1", "v2"}
    task = pulp("task", "list", "--limit", "1")[0]
    wanted = [images["v1"], images["v2"]]
    assert task["state"] == "completed"
    assert _downloaded(task) == (6, unique_bytes(wanted)), task["progress_reports"]
    records = blob_transfers(registry, name)
    assert records.count("fetched") == 6 and records.bytes_received() == unique_bytes(wanted)

    pulp("container", "repository", "sync", "--name", name)
    again = pulp("task", "list", "--limit", "1")[0]
    assert again["created_resources"] == [] and _downloaded(again) == (0, 0)

    distribution_source.push(layout, "v3", name)
    pulp("container", "repository", "sync", "--name", name)
    third = pulp("task", "list", "--limit", "1")[0]
    own = images["v3"].layer_sizes[-1] + images["v3"].config_size
    assert _downloaded(third) == (2, own), third["progress_reports"]

    distribution_source.delete(name, images["v1"].manifest_digest)
    _sync(registry, {"pulp_href": repository["pulp_href"]}, remote, mirror=True)
    latest = pulp("container", "repository", "version", "show", "--repository", name)
    assert latest["number"] == 3
    removed = latest["content_summary"]["removed"]
    assert removed["container.tag"]["count"] == 1
    assert removed["container.manifest"]["count"] == 1
    assert removed["container.blob"]["count"] == 2  # v1's own layer and config
    assert _version_tags(registry, latest["pulp_href"]) == {"v2", "v3"}


# --- what was mirrored is ordinary content: pull it, mount it, push a child over it -----------


def test_child_of_a_mirrored_base_pushes_only_its_own_layers(
    registry: RunningRegistry,
    distribution_source: Source,
    work_dir: Path,
    repository_name: Callable[..., str],
    skopeo_home: Callable[[str], Path],
) -> None:
    base_name, child_name = repository_name("base"), repository_name("child")
    layout = work_dir / "src"
    base, seed = _base(layout)
    base_image = build_image(layout, base, "v1")
    child = build_image(layout, [*base, gz(seed, 64 * KiB)], "child")
    distribution_source.push(layout, "v1", base_name)
    repository = _repository(registry, base_name, distributed=True)
    task = _sync(registry, repository, _remote(registry, distribution_source, base_name))
    assert task["state"] == "completed", task["error"]

    client = skopeo_for(registry.admin, skopeo_home("child"))
    client.copy(registry.reference(base_name, "v1"), f"oci:{work_dir / 'pulled'}:v1")
    assert_pulled_intact(work_dir / "pulled", "v1", base_image)
    client.copy(f"oci:{layout}:child", registry.reference(child_name, "v1"))

    records = blob_transfers(registry, child_name)
    own = child.layer_sizes[-1] + child.config_size
    assert records.bytes_received() == own, records.describe()
    assert sorted(records.digests("uploaded")) == sorted(
        [child.config_digest, child.layer_digests[-1]]
    ), records.describe()
    print(f"\nchild over a mirrored base: received {records.bytes_received()} B = its own {own} B")
    client.copy(registry.reference(child_name, "v1"), f"oci:{work_dir / 'back'}:v1")
    assert_pulled_intact(work_dir / "back", "v1", child)


# --- pull-through -----------------------------------------------------------------------------


def test_pull_through_fetches_at_the_first_pull_and_serves_locally_after(
    registry: RunningRegistry,
    distribution_source: Source,
    work_dir: Path,
    repository_name: Callable[..., str],
    skopeo: Skopeo,
) -> None:
    name = repository_name()
    layout = work_dir / "src"
    images = _images(layout, ["v1", "v2"])
    for tag in images:
        distribution_source.push(layout, tag, name)
    remote = _remote(registry, distribution_source, name)
    body = {"name": name, "base_path": name, "remote": remote["pulp_href"]}
    _post(registry, f"{API}/distributions/container/container/", body)

    skopeo.copy(registry.reference(name, "v2"), f"oci:{work_dir / 'first'}:v2")
    assert_pulled_intact(work_dir / "first", "v2", images["v2"])
    fetched = blob_transfers(registry, name)
    assert fetched.bytes_received() == unique_bytes([images["v2"]]), fetched.describe()

    skopeo.copy(registry.reference(name, "v2"), f"oci:{work_dir / 'second'}:v2")
    assert_pulled_intact(work_dir / "second", "v2", images["v2"])
    assert blob_transfers(registry, name).summary == fetched.summary  # nothing fetched again
    skopeo.copy(registry.reference(name, "v1"), f"oci:{work_dir / 'third'}:v1")
    own = images["v1"].layer_sizes[-1] + images["v1"].config_size
    assert blob_transfers(registry, name).bytes_received() == fetched.bytes_received() + own

    distribution = (
        registry.session()
        .get(f"{registry.url}{API}/distributions/container/container/", params={"name": name})
        .json()["results"][0]
    )
    version = _latest(registry, {"pulp_href": distribution["repository"]})
    assert version["number"] == 2
    assert _version_tags(registry, version["pulp_href"]) == {"v1", "v2"}
    missing = registry.http().get_manifest(name, "no-such-tag", "application/json")
    assert missing.status_code == 404


# --- faults: a remote going away, content that does not match ---------------------------------


@pytest.fixture
def misbehaving(work_dir: Path, repository_name: Callable[..., str]):
    name = repository_name()
    layout = work_dir / "src"
    base, seed = _base(layout, size=512 * KiB)
    image = build_image(layout, [*base, gz(seed, 512 * KiB)], "v1")
    source = MisbehavingRegistry(layout, name, {"v1": image}, MISBEHAVING_PORT)
    yield source, image
    source.stop()


def test_a_remote_going_away_fails_the_sync_and_the_next_sync_resumes(
    registry: RunningRegistry, misbehaving
) -> None:
    source, image = misbehaving
    repository = _repository(registry, source.name)
    remote = _remote(registry, source, source.name, max_retries=1)
    source.faults.dropped.add(image.layer_digests[-1])

    failed = _sync(registry, repository, remote)
    assert failed["state"] == "failed"
    assert image.layer_digests[-1] in failed["error"]["description"], failed["error"]
    assert _latest(registry, repository)["number"] == 0
    assert _stored(registry, "blobs", image.layer_digests[-1]) == 0
    arrived = [image.config_digest, *image.layer_digests[:-1]]
    assert all(_stored(registry, "blobs", digest) == 1 for digest in arrived)

    source.faults.dropped.clear()
    resumed = _sync(registry, repository, remote)
    assert resumed["state"] == "completed", resumed["error"]
    assert _downloaded(resumed) == (1, image.layer_sizes[-1])
    assert all(source.blob_requests[digest] == 1 for digest in arrived), source.blob_requests
    assert _version_tags(registry, _latest(registry, repository)["pulp_href"]) == {"v1"}


@pytest.mark.parametrize(
    "fault, message",
    [
        ("corrupted blob", "does not match its digest"),
        ("invalid manifest", "rejected"),
        ("lying digest header", "does not match"),
    ],
)
def test_content_that_does_not_match_is_rejected_and_never_stored(
    registry: RunningRegistry, misbehaving, fault: str, message: str
) -> None:
    source, image = misbehaving
    repository = _repository(registry, source.name)
    if fault == "corrupted blob":
        source.faults.corrupted.add(image.layer_digests[-1])
    elif fault == "invalid manifest":
        source.faults.manifest_bodies["v1"] = b'{"schemaVersion": 2, "layers": "none"}'
    else:
        source.faults.digest_headers["v1"] = "sha256:" + "0" * 64

    task = _sync(registry, repository, _remote(registry, source, source.name, max_retries=1))
    assert task["state"] == "failed"
    assert message in task["error"]["description"], task["error"]
    assert _latest(registry, repository)["number"] == 0
    assert _stored(registry, "manifests", image.manifest_digest) == 0
    assert _stored(registry, "blobs", image.layer_digests[-1]) == 0


# --- sync from a second instance of ours (token authentication) -------------------------------


def test_sync_from_another_instance_of_ours_with_token_auth(
    registry: RunningRegistry,
    ours_source: Source,
    work_dir: Path,
    repository_name: Callable[..., str],
) -> None:
    name = repository_name()
    layout = work_dir / "src"
    images = _images(layout, ["v1", "v2"])
    for tag in images:
        ours_source.push(layout, tag, name)
    challenge = requests.get(f"{ours_source.url}/v2/", verify=str(ours_source.ca_cert), timeout=30)
    assert challenge.headers["WWW-Authenticate"].startswith("Bearer realm=")

    repository = _repository(registry, name)
    task = _sync(registry, repository, _remote(registry, ours_source, name))
    assert task["state"] == "completed", task["error"]
    assert _downloaded(task) == (6, unique_bytes(images.values()))
    assert _version_tags(registry, _latest(registry, repository)["pulp_href"]) == {"v1", "v2"}


# --- on demand: a sync takes no layer; a pull fetches each layer once ---------------------------


def test_on_demand_sync_fetches_each_layer_at_its_first_pull_only(
    registry: RunningRegistry, misbehaving, work_dir: Path, skopeo: Skopeo
) -> None:
    source, image = misbehaving
    name = source.name
    repository = _repository(registry, name, distributed=True)
    remote = _remote(registry, source, name, policy="on_demand", max_retries=1)
    assert remote["policy"] == "on_demand"
    task = _sync(registry, repository, remote)
    assert task["state"] == "completed", task["error"]
    assert _downloaded(task) == (1, image.config_size)
    assert dict(source.blob_requests) == {image.config_digest: 1}  # no layer
    layer = image.layer_digests[-1]
    head = registry.http().blob_exists(name, layer)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(image.layer_sizes[-1])

    # Wrong bytes from the remote: an error for the client, nothing stored.
    source.faults.corrupted.add(layer)
    path = f"/v2/{name}/blobs/{layer}"
    failed = registry.http().request("GET", path, scope=repository_scope(name, "pull"))
    assert failed.status_code == 502, failed.text
    assert failed.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert blob_transfers(registry, name).count("fetched") == 1  # the config only
    source.faults.corrupted.clear()

    skopeo.copy(registry.reference(name, "v1"), f"oci:{work_dir / 'first'}:v1")
    assert_pulled_intact(work_dir / "first", "v1", image)
    expected = {digest: 1 for digest in [image.config_digest, *image.layer_digests]}
    assert dict(source.blob_requests) == {**expected, layer: 2}
    fetched = blob_transfers(registry, name)
    assert fetched.bytes_received() == unique_bytes([image]), fetched.describe()

    skopeo.copy(registry.reference(name, "v1"), f"oci:{work_dir / 'second'}:v1")
    assert_pulled_intact(work_dir / "second", "v1", image)
    assert dict(source.blob_requests) == {**expected, layer: 2}  # nothing fetched again
