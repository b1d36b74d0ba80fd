"""A user pushes images to Pulp with real clients and pulls back exactly what they pushed.

Every image is built on the spot from seeded random bytes (``harness.oci_images``), so
each byte a client pulls back can be checked against what was pushed: the manifest digest,
the config, every layer's digest and size. Layers are gzip-wrapped so that skopeo sends them
unchanged (it compresses plain tar layers on the way to a registry, which would make the
pushed manifest differ from the built one).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.container_tools import Podman, Skopeo, wait_for_output
from harness.oci_images import (
    ImageInfo,
    IndexInfo,
    Layer,
    build_image,
    build_index,
    read_blob,
    read_tagged,
    verify_layout,
)
from harness.registry_http import RunningRegistry

KiB = 1024
MiB = 1024 * KiB


def gz(seed: int, size: int) -> Layer:
    """A gzip layer: clients push it as it is (they would compress a plain tar on the way)."""
    return Layer(seed, size, compressed=True)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pull_to_layout(skopeo: Skopeo, source: str, layout: Path, tag: str, **options: bool) -> None:
    skopeo.copy(source, f"oci:{layout}:{tag}", **options)


def assert_pulled_intact(layout: Path, tag: str, pushed: ImageInfo | IndexInfo) -> None:
    """The layout holds, under ``tag``, byte for byte the image that was pushed."""
    verify_layout(layout)  # every blob pulled hashes to its digest
    pulled = read_tagged(layout, tag)
    if isinstance(pushed, IndexInfo):
        assert isinstance(pulled, IndexInfo)
        assert pulled.index_digest == pushed.index_digest
        assert pulled.index_size == pushed.index_size
        assert pulled.images == pushed.images
        return
    assert isinstance(pulled, ImageInfo)
    assert pulled.manifest_digest == pushed.manifest_digest
    assert pulled.manifest_size == pushed.manifest_size
    assert pulled.config_digest == pushed.config_digest
    assert pulled.config_size == pushed.config_size
    assert pulled.layer_digests == pushed.layer_digests
    assert pulled.layer_sizes == pushed.layer_sizes


def test_pushed_image_pulls_back_byte_for_byte(
    registry: RunningRegistry, skopeo: Skopeo, work_dir: Path, repository_name: Callable[..., str]
) -> None:
    name = repository_name()
    image = build_image(work_dir / "src", [gz(1, 1 * KiB)], "v1")

    started = time.monotonic()
    skopeo.copy(f"oci:{work_dir / 'src'}:v1", registry.reference(name, "v1"))
    print(f"\npush of a small image took {time.monotonic() - started:.2f}s")

    served = skopeo.inspect_raw(registry.reference(name, "v1"))
    assert sha256(served) == image.manifest_digest
    assert served == read_blob(work_dir / "src", image.manifest_digest)
    pull_to_layout(skopeo, registry.reference(name, "v1"), work_dir / "pulled", "v1")
    assert_pulled_intact(work_dir / "pulled", "v1", image)


@pytest.mark.parametrize("layer_size", [1 * KiB, 5 * MiB, 40 * MiB], ids=["1KiB", "5MiB", "40MiB"])
def test_images_of_every_size_pull_back_by_tag_and_by_digest(
    registry: RunningRegistry,
    skopeo: Skopeo,
    work_dir: Path,
    repository_name: Callable[..., str],
    layer_size: int,
) -> None:
    name = repository_name()
    image = build_image(work_dir / "src", [gz(10, 2 * KiB), gz(11, layer_size)], "v1")

    started = time.monotonic()
    skopeo.copy(f"oci:{work_dir / 'src'}:v1", registry.reference(name, "v1"))
    print(f"\npush of an image with a {layer_size} B layer took {time.monotonic() - started:.2f}s")

    pull_to_layout(skopeo, registry.reference(name, "v1"), work_dir / "by-tag", "v1")
    assert_pulled_intact(work_dir / "by-tag", "v1", image)
    by_digest = registry.reference(name, digest=image.manifest_digest)
    pull_to_layout(skopeo, by_digest, work_dir / "by-digest", "v1")
    assert_pulled_intact(work_dir / "by-digest", "v1", image)


def test_multi_arch_index_pushes_and_pulls_back_whole(
    registry: RunningRegistry, skopeo: Skopeo, work_dir: Path, repository_name: Callable[..., str]
) -> None:
    name = repository_name()
    index = build_index(
        work_dir / "src",
        [[gz(20, 4 * KiB), gz(21, 1 * MiB)], [gz(20, 4 * KiB), gz(22, 1 * MiB)]],
        "multi",
    )

    skopeo.copy(f"oci:{work_dir / 'src'}:multi", registry.reference(name, "multi"), all_images=True)

    served = skopeo.inspect_raw(registry.reference(name, "multi"))
    assert sha256(served) == index.index_digest
    assert [entry["platform"]["architecture"] for entry in json.loads(served)["manifests"]] == [
        "amd64",
        "arm64",
    ]
    pull_to_layout(
        skopeo, registry.reference(name, "multi"), work_dir / "by-tag", "multi", all_images=True
    )
    assert_pulled_intact(work_dir / "by-tag", "multi", index)
    by_digest = registry.reference(name, digest=index.index_digest)
    pull_to_layout(skopeo, by_digest, work_dir / "by-digest", "multi", all_images=True)
    assert_pulled_intact(work_dir / "by-digest", "multi", index)
    # A single platform's manifest is addressable by its own digest, too.
    arm64 = index.images[1]
    arm64_ref = registry.reference(name, digest=arm64.manifest_digest)
    pull_to_layout(skopeo, arm64_ref, work_dir / "arm64", "arm64")
    assert_pulled_intact(work_dir / "arm64", "arm64", arm64)


def test_podman_push_and_pull_agree_with_skopeo(
    registry: RunningRegistry,
    skopeo: Skopeo,
    podman_factory: Callable[[str], Podman],
    work_dir: Path,
    repository_name: Callable[..., str],
) -> None:
    name = repository_name()
    image = build_image(work_dir / "src", [gz(30, 64 * KiB), gz(31, 2 * MiB)], "v1")
    pusher = podman_factory("pusher")
    image_id = pusher.pull(f"oci:{work_dir / 'src'}:v1")
    assert image_id == image.config_digest.removeprefix("sha256:")

    # podman compresses layers on push, so the manifest it pushes is its own; it says which.
    pushed_digest = pusher.push(image_id, registry.reference(name, "v1"), work_dir / "digest")

    served = skopeo.inspect_raw(registry.reference(name, "v1"))
    assert sha256(served) == pushed_digest
    assert json.loads(served)["config"]["digest"] == image.config_digest
    assert json.loads(skopeo.inspect(registry.reference(name, "v1")))["Digest"] == pushed_digest

    puller = podman_factory("puller")
    pulled_id = puller.pull(registry.reference(name, "v1"))
    # podman checks every layer against the config's diff_ids while pulling, so the same id
    # means the same config and the same uncompressed layer bytes.
    assert pulled_id == image_id
    assert puller.image_inspect(pulled_id, "{{.Digest}}") == pushed_digest


def test_retag_shows_both_tags_and_a_new_push_moves_a_tag(
    registry: RunningRegistry, skopeo: Skopeo, work_dir: Path, repository_name: Callable[..., str]
) -> None:
    name = repository_name()
    first = build_image(work_dir / "src", [gz(40, 8 * KiB)], "first")
    second = build_image(work_dir / "src", [gz(41, 8 * KiB)], "second")
    http = registry.http()

    skopeo.copy(f"oci:{work_dir / 'src'}:first", registry.reference(name, "one"))
    skopeo.copy(f"oci:{work_dir / 'src'}:first", registry.reference(name, "two"))

    assert http.list_tags(name) == ["one", "two"]
    assert sha256(skopeo.inspect_raw(registry.reference(name, "two"))) == first.manifest_digest

    skopeo.copy(f"oci:{work_dir / 'src'}:second", registry.reference(name, "one"))

    assert http.list_tags(name) == ["one", "two"]
    assert sha256(skopeo.inspect_raw(registry.reference(name, "one"))) == second.manifest_digest
    assert sha256(skopeo.inspect_raw(registry.reference(name, "two"))) == first.manifest_digest
    pull_to_layout(skopeo, registry.reference(name, "one"), work_dir / "pulled", "one")
    assert_pulled_intact(work_dir / "pulled", "one", second)


def test_two_names_sharing_layers_both_pull_back_intact(
    registry: RunningRegistry, skopeo: Skopeo, work_dir: Path, repository_name: Callable[..., str]
) -> None:
    shared = [gz(50, 3 * MiB), gz(51, 64 * KiB)]
    app = build_image(work_dir / "src", [*shared, gz(52, 1 * MiB)], "app")
    tool = build_image(work_dir / "src", [*shared, gz(53, 1 * MiB)], "tool")
    app_name, tool_name = repository_name("app"), repository_name("tool")

    skopeo.copy(f"oci:{work_dir / 'src'}:app", registry.reference(app_name, "v1"))
    skopeo.copy(f"oci:{work_dir / 'src'}:tool", registry.reference(tool_name, "v1"))

    pull_to_layout(skopeo, registry.reference(app_name, "v1"), work_dir / "app", "v1")
    assert_pulled_intact(work_dir / "app", "v1", app)
    pull_to_layout(skopeo, registry.reference(tool_name, "v1"), work_dir / "tool", "v1")
    assert_pulled_intact(work_dir / "tool", "v1", tool)


def test_abandoned_upload_does_not_spoil_a_later_push(
    registry: RunningRegistry, skopeo: Skopeo, work_dir: Path, repository_name: Callable[..., str]
) -> None:
    name = repository_name()
    image = build_image(work_dir / "src", [gz(60, 2 * MiB)], "v1")
    layer = read_blob(work_dir / "src", image.layer_digests[0])
    http = registry.http()

    started = http.start_upload(name)
    assert started.status_code == 202, started.text
    half = layer[: len(layer) // 2]
    patched = http.patch_upload(name, started.headers["Location"], half)
    assert patched.status_code == 202, patched.text
    assert patched.headers["Range"] == f"0-{len(half) - 1}"
    # ...and the client goes away without finishing the upload.

    skopeo.copy(f"oci:{work_dir / 'src'}:v1", registry.reference(name, "v1"))

    pull_to_layout(skopeo, registry.reference(name, "v1"), work_dir / "pulled", "v1")
    assert_pulled_intact(work_dir / "pulled", "v1", image)


def test_upload_in_progress_reports_how_much_was_received(
    registry: RunningRegistry, repository_name: Callable[..., str]
) -> None:
    name = repository_name()
    http = registry.http()
    started = http.start_upload(name)
    assert started.status_code == 202, started.text
    chunk = b"\x00\x01" * 5000
    patched = http.patch_upload(name, started.headers["Location"], chunk)
    assert patched.status_code == 202, patched.text

    # OCI distribution spec, "Pushing a blob in chunks": GET on the upload URL answers 204
    # with the range received so far, so an interrupted client can resume.
    status = http.upload_status(name, patched.headers["Location"])

    assert status.status_code == 204, status.text
    assert status.headers["Range"] == f"0-{len(chunk) - 1}"


def test_push_killed_midway_succeeds_when_retried(
    registry: RunningRegistry, skopeo: Skopeo, work_dir: Path, repository_name: Callable[..., str]
) -> None:
    name = repository_name()
    image = build_image(work_dir / "src", [gz(70, 64 * MiB), gz(71, 4 * KiB)], "v1")
    source, destination = f"oci:{work_dir / 'src'}:v1", registry.reference(name, "v1")

    interrupted = skopeo.start_copy(source, destination)
    finished_early = wait_for_output(interrupted, 0.5)
    skopeo.kill(interrupted)
    print(f"first push {'finished before' if finished_early else 'killed after'} 0.5s")

    skopeo.copy(source, destination)

    pull_to_layout(skopeo, destination, work_dir / "pulled", "v1")
    assert_pulled_intact(work_dir / "pulled", "v1", image)
