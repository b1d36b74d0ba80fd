"""Cross-repository blob mount with real clients (issue 4), proven from the server's records.

A client sends ``POST /v2/<target>/blobs/uploads/?mount=<digest>&from=<source>`` only when its
blob-info cache remembers where a layer went before, so these stories keep one client cache for
the whole hierarchy. They talk to ``strict_registry``, an API process over the same database with
``CONTAINER_LINK_BLOBS_ON_HEAD`` off: otherwise the client's ``HEAD`` on the target would link
the blob first (issue 8) and no mount would ever be sent.

What the server did with each blob comes from ``/pulp/api/v3/pulp_container/blob-transfers/``.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.container_tools import Podman, Skopeo
from harness.oci_images import build_image, read_blob
from harness.pulp_api import (
    blob_transfers,
    create_user,
    orphan_cleanup,
    set_private,
)
from harness.registry_http import RunningRegistry, repository_scope
from tests.e2e.hierarchy import (
    KiB,
    MiB,
    copy_home,
    fresh_hierarchy,
    fresh_seed,
    gz,
    monolithic_upload,
    mount,
    push_scope,
    put_manifest,
    server_manifest,
    skopeo_for,
    unique_bytes,
)
from tests.e2e.test_push_pull import assert_pulled_intact

CHILDREN = 5


def _pull_back(skopeo: Skopeo, registry: RunningRegistry, name: str, layout: Path, image) -> None:
    skopeo.copy(registry.reference(name, "v1"), f"oci:{layout}:v1")
    assert_pulled_intact(layout, "v1", image)


def test_skopeo_hierarchy_push_mounts_every_shared_layer(
    registry: RunningRegistry,
    strict_registry: RunningRegistry,
    skopeo_home: Callable[[str], Path],
    work_dir: Path,
    repository_name: Callable[..., str],
) -> None:
    prefix = repository_name()
    layout = work_dir / "src"
    hierarchy = fresh_hierarchy(layout, 512 * KiB, CHILDREN, 128 * KiB)
    client = skopeo_for(registry.admin, skopeo_home("hierarchy"))  # one cache, remembering

    client.copy(f"oci:{layout}:base", strict_registry.reference(f"{prefix}/base", "v1"))
    for index in range(CHILDREN):
        target = strict_registry.reference(f"{prefix}/child-{index + 1}", "v1")
        client.copy(f"oci:{layout}:child-{index}", target)

    records = blob_transfers(registry, f"{prefix}/")
    shared = set(hierarchy.base.layer_digests)
    for index, child in enumerate(hierarchy.children):
        name = f"{prefix}/child-{index + 1}"
        assert sorted(records.digests("mounted", name)) == sorted(shared), records.describe()
        assert sorted(records.digests("uploaded", name)) == sorted(
            [child.config_digest, child.layer_digests[-1]]
        ), records.describe()
    assert records.count("mounted") == CHILDREN * 3, records.describe()
    assert records.count("uploaded") == 4 + CHILDREN * 2, records.describe()
    assert records.count("fallback") == 0, records.describe()
    assert records.count("linked-on-head") == 0, records.describe()
    expected = unique_bytes([hierarchy.base, *hierarchy.children])
    assert records.bytes_received() == expected, records.describe()
    assert records.summary["mounted"]["bytes_saved"] == CHILDREN * sum(hierarchy.base.layer_sizes)
    print(f"\nhierarchy: received {records.bytes_received()} B = unique bytes {expected} B")

    puller = skopeo_for(registry.admin, skopeo_home("puller"))
    for index, child in enumerate(hierarchy.children):
        name = f"{prefix}/child-{index + 1}"
        _pull_back(puller, registry, name, work_dir / f"pulled-{index}", child)


def test_podman_hierarchy_push_mounts_every_shared_layer(
    registry: RunningRegistry,
    strict_registry: RunningRegistry,
    shared_root: Path,
    work_dir: Path,
    repository_name: Callable[..., str],
) -> None:
    prefix = repository_name()
    layout = work_dir / "src"
    hierarchy = fresh_hierarchy(layout, 256 * KiB, CHILDREN, 64 * KiB)
    # One podman storage and one blob-info cache for the whole hierarchy, as on a build host.
    state = Path(tempfile.mkdtemp(prefix="pm-h-", dir=shared_root))
    podman = Podman(state, registry.admin, blob_info_cache=state / "cache")
    for tag in ["base", *(f"child-{i}" for i in range(CHILDREN))]:
        podman.pull(f"oci:{layout}:{tag}")

    def push(image, name: str) -> str:
        image_id = image.config_digest.removeprefix("sha256:")
        destination = strict_registry.reference(name, "v1")
        return podman.push(image_id, destination, work_dir / "digest")

    push(hierarchy.base, f"{prefix}/base")
    pushed = [push(child, f"{prefix}/child-{i + 1}") for i, child in enumerate(hierarchy.children)]

    # podman compresses layers on push: the digests are its own; the server's manifests say them.
    http = registry.http()
    base_layers = [
        layer["digest"] for layer in server_manifest(http, f"{prefix}/base", "v1")["layers"]
    ]
    records = blob_transfers(registry, f"{prefix}/")
    for index in range(CHILDREN):
        name = f"{prefix}/child-{index + 1}"
        manifest = server_manifest(http, name, "v1")
        assert [layer["digest"] for layer in manifest["layers"][:3]] == base_layers
        assert sorted(records.digests("mounted", name)) == sorted(base_layers), records.describe()
    assert records.count("mounted") == CHILDREN * 3, records.describe()
    assert records.uploaded_twice() == [], records.describe()
    uploaded = {r["digest"]: r["bytes_received"] for r in records.records("uploaded")}
    assert len(uploaded) == 4 + CHILDREN * 2, records.describe()
    assert records.bytes_received() == sum(uploaded.values()), records.describe()
    assert records.count("fallback") == 0, records.describe()

    state = Path(tempfile.mkdtemp(prefix="pm-p-", dir=shared_root))
    puller = Podman(state, registry.admin, blob_info_cache=state / "cache")
    for index, child in enumerate(hierarchy.children):
        reference = registry.reference(f"{prefix}/child-{index + 1}", "v1")
        # podman checks every layer against the config's diff_ids while pulling.
        assert puller.pull(reference) == child.config_digest.removeprefix("sha256:")
        assert puller.image_inspect(child.config_digest[7:], "{{.Digest}}") == pushed[index]


def test_user_who_may_not_read_the_base_pushes_through_uploads(
    registry: RunningRegistry,
    strict_registry: RunningRegistry,
    skopeo_home: Callable[[str], Path],
    work_dir: Path,
    repository_name: Callable[..., str],
) -> None:
    prefix = repository_name()
    layout = work_dir / "src"
    hierarchy = fresh_hierarchy(layout, 128 * KiB, 1, 64 * KiB)
    admin_home = skopeo_home("admin")
    skopeo_for(registry.admin, admin_home).copy(
        f"oci:{layout}:base", strict_registry.reference(f"{prefix}/base", "v1")
    )
    set_private(registry, f"{prefix}/base")
    username = f"mnt{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    create_user(registry, username, password)
    other = (username, password)
    # The other user's client remembers where the base layers went, so it asks for mounts.
    home = copy_home(admin_home, skopeo_home("other"))
    target = f"{username}/child"

    shared = sorted(hierarchy.base.layer_digests)
    # Mounts from the unreadable base (sent before this user holds the layers anywhere) fall
    # back to a plain upload session, indistinguishable from one for a blob that exists nowhere.
    http = strict_registry.http(other)
    raw_target = f"{username}/child-raw"
    hidden = [mount(http, raw_target, digest, f"{prefix}/base") for digest in shared]
    absent = mount(http, raw_target, "sha256:" + "0" * 64, f"{prefix}/no-such-repository")
    plain = http.request(
        "POST",
        f"/v2/{raw_target}/blobs/uploads/",
        scope=push_scope(raw_target),
        headers={"Content-Length": "0"},
        data=b"",
    )
    for response in (*hidden, absent, plain):
        assert response.status_code == 202, (response.status_code, response.text)
        assert response.content == b""
        assert sorted(response.headers) == sorted(plain.headers)
        assert response.headers["Range"] == "0-0"
        assert response.headers["Location"].startswith(f"/v2/{raw_target}/blobs/uploads/")
    records = blob_transfers(registry, raw_target)
    assert sorted(records.digests("fallback", raw_target)) == sorted(
        [*shared, "sha256:" + "0" * 64]
    )
    assert records.count("mounted") == 0, records.describe()
    denied = http.request(
        "HEAD",
        f"/v2/{prefix}/base/blobs/{shared[0]}",
        scope=repository_scope(f"{prefix}/base", "pull"),
    )
    assert denied.status_code in (401, 403, 404), denied.status_code

    skopeo_for(other, home).copy(f"oci:{layout}:child-0", strict_registry.reference(target, "v1"))

    child = hierarchy.children[0]
    records = blob_transfers(registry, target)
    assert records.count("mounted") == 0, records.describe()
    assert records.count("linked-on-head") == 0, records.describe()
    assert sorted(records.digests("uploaded", target)) == sorted(child.blob_digests)
    assert records.bytes_received() == child.total_size
    # skopeo checks a mount candidate with a HEAD on it (token scope: pull on the base) before
    # it sends ?mount=: the server refused that HEAD, so the client uploaded instead.
    if strict_registry.access_log is not None:
        log = strict_registry.access_log.read_text(errors="replace")
        for digest in shared:
            assert f'"HEAD /v2/{prefix}/base/blobs/{digest} HTTP/1.1" 401' in log, digest

    puller = skopeo_for(other, skopeo_home("puller"))
    _pull_back(puller, registry, target, work_dir / "pulled", child)


def test_concurrent_pushes_of_children_sharing_layers(
    registry: RunningRegistry,
    strict_registry: RunningRegistry,
    skopeo_home: Callable[[str], Path],
    work_dir: Path,
    repository_name: Callable[..., str],
) -> None:
    prefix = repository_name()
    seed = fresh_seed()
    layout = work_dir / "src"
    base_layers = [gz(seed + i, 1 * MiB) for i in range(3)]
    base = build_image(layout, base_layers, "base")
    # Both children also share a layer that is not in the base: both upload it at once.
    common = gz(seed + 50, 2 * MiB)
    children = [
        build_image(layout, [*base_layers, common, gz(seed + 100 + i, 512 * KiB)], f"child-{i}")
        for i in range(2)
    ]
    home = skopeo_home("base")
    skopeo_for(registry.admin, home).copy(
        f"oci:{layout}:base", strict_registry.reference(f"{prefix}/base", "v1")
    )

    processes = []
    for index in range(2):
        client = skopeo_for(registry.admin, copy_home(home, skopeo_home(f"child-{index}")))
        destination = strict_registry.reference(f"{prefix}/child-{index}", "v1")
        processes.append(client.start_copy(f"oci:{layout}:child-{index}", destination))
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr.decode(errors="replace")

    records = blob_transfers(registry, f"{prefix}/")
    for index in range(2):
        name = f"{prefix}/child-{index}"
        assert sorted(records.digests("mounted", name)) == sorted(base.layer_digests), (
            records.describe()
        )
    assert records.count("fallback") == 0, records.describe()
    puller = skopeo_for(registry.admin, skopeo_home("puller"))
    for index, child in enumerate(children):
        _pull_back(puller, registry, f"{prefix}/child-{index}", work_dir / f"pulled-{index}", child)


def test_orphan_cleanup_keeps_mounted_and_uploaded_pending_blobs(
    registry: RunningRegistry, work_dir: Path, repository_name: Callable[..., str]
) -> None:
    source, target = repository_name("source"), repository_name("target")
    layout = work_dir / "src"
    image = build_image(layout, [gz(fresh_seed(), 256 * KiB)], "v1")
    config, layer = image.config_digest, image.layer_digests[0]
    http = registry.http()
    # The layer sits pending in another push (never committed) and is mounted from there;
    # the config is uploaded into the target. Nothing is committed yet.
    monolithic_upload(http, source, read_blob(layout, layer), layer)
    monolithic_upload(http, target, read_blob(layout, config), config)
    mounted = mount(http, target, layer, source)
    assert mounted.status_code == 201, (mounted.status_code, mounted.text)
    records = blob_transfers(registry, target)
    assert records.digests("mounted", target) == [layer], records.describe()

    task = orphan_cleanup(registry, protection_minutes=0)
    print(f"\norphan cleanup: {task.get('progress_reports')}")

    # A pull-only token: a HEAD that could push might re-link a lost blob and hide the loss.
    reader = registry.http()
    for name, digest in ((target, config), (target, layer), (source, layer)):
        head = reader.request(
            "HEAD", f"/v2/{name}/blobs/{digest}", scope=repository_scope(name, "pull")
        )
        assert head.status_code == 200, (name, digest, head.status_code)
    # Pending bytes are served to pushers only; no re-link may have hidden a loss.
    got = reader.request("GET", f"/v2/{target}/blobs/{layer}", scope=repository_scope(target))
    assert got.status_code == 200 and got.content == read_blob(layout, layer)
    assert blob_transfers(registry, target).count("linked-on-head") == 0

    committed = put_manifest(http, target, layout, image, "v1")
    assert committed.status_code == 201, (committed.status_code, committed.text)
    assert server_manifest(http, target, "v1")["layers"][0]["digest"] == layer
