"""The test image builder writes valid, deterministic OCI image layouts."""

import gzip
import hashlib
import io
import json
import tarfile
import zlib
from pathlib import Path

import pytest

from harness.oci_images import (
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_LAYER_TAR,
    MEDIA_TYPE_LAYER_TAR_GZIP,
    MEDIA_TYPE_MANIFEST,
    REF_NAME_ANNOTATION,
    IndexInfo,
    Layer,
    build_hierarchy,
    build_image,
    build_index,
    random_chunks,
    read_blob,
    read_tagged,
    tagged_descriptor,
    verify_layout,
)


def test_same_seed_gives_same_digests_in_different_directories(tmp_path: Path) -> None:
    layers = [Layer(seed=1, size=1024), Layer(seed=2, size=3 * 1024 * 1024 + 7)]

    first = build_image(tmp_path / "a", layers, "latest")
    second = build_image(tmp_path / "b", layers, "latest")

    assert first == second
    for digest in (first.manifest_digest, first.config_digest, *first.layer_digests):
        assert read_blob(tmp_path / "a", digest) == read_blob(tmp_path / "b", digest)


def test_different_seeds_give_different_layers(tmp_path: Path) -> None:
    one = build_image(tmp_path, [Layer(seed=1, size=4096)], "one")
    two = build_image(tmp_path, [Layer(seed=2, size=4096)], "two")

    assert one.layer_digests != two.layer_digests
    assert one.manifest_digest != two.manifest_digest


def test_random_payload_does_not_depend_on_how_it_is_read() -> None:
    size = 2 * 1024 * 1024 + 13
    whole = b"".join(random_chunks(5, size))

    assert len(whole) == size
    assert whole == b"".join(random_chunks(5, size))
    # Incompressible, so a client that compresses on push cannot make it small.
    assert len(zlib.compress(whole[: 1 << 20])) > (1 << 20) * 0.99


def test_every_blob_hashes_to_its_name_and_descriptors_are_exact(tmp_path: Path) -> None:
    image = build_image(tmp_path, [Layer(3, 10), Layer(4, 100_000)], "v1")

    checked = verify_layout(tmp_path)

    assert set(checked) == {image.manifest_digest, image.config_digest, *image.layer_digests}
    manifest = json.loads(read_blob(tmp_path, image.manifest_digest))
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == MEDIA_TYPE_MANIFEST
    assert manifest["config"]["size"] == len(read_blob(tmp_path, image.config_digest))
    for descriptor, digest, size in zip(
        manifest["layers"], image.layer_digests, image.layer_sizes, strict=True
    ):
        assert descriptor == {"mediaType": MEDIA_TYPE_LAYER_TAR, "digest": digest, "size": size}
        assert len(read_blob(tmp_path, digest)) == size


def test_config_names_the_platform_and_diff_ids_of_uncompressed_layers(tmp_path: Path) -> None:
    image = build_image(tmp_path, [Layer(6, 1000), Layer(7, 2000)], "v1")

    config = json.loads(read_blob(tmp_path, image.config_digest))

    assert config["architecture"] == "amd64"
    assert config["os"] == "linux"
    assert config["rootfs"]["type"] == "layers"
    diff_ids = [
        "sha256:" + hashlib.sha256(read_blob(tmp_path, digest)).hexdigest()
        for digest in image.layer_digests
    ]
    assert config["rootfs"]["diff_ids"] == diff_ids == list(image.layer_digests)
    assert image.diff_ids == tuple(diff_ids)


def test_layer_is_a_readable_tar_with_one_file_of_the_seeded_bytes(tmp_path: Path) -> None:
    layer = Layer(seed=9, size=70_000)
    image = build_image(tmp_path, [layer], "v1")

    blob = read_blob(tmp_path, image.layer_digests[0])
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as archive:
        members = archive.getmembers()
        assert [member.name for member in members] == [layer.file_name]
        assert members[0].isfile() and members[0].size == layer.size
        assert members[0].mtime == 0
        content = archive.extractfile(members[0])
        assert content is not None
        assert content.read() == b"".join(random_chunks(layer.seed, layer.size))


def test_compressed_layer_is_gzip_of_the_same_tar_and_keeps_its_diff_id(tmp_path: Path) -> None:
    plain = build_image(tmp_path / "plain", [Layer(8, 300_000)], "v1")
    packed = build_image(tmp_path / "packed", [Layer(8, 300_000, compressed=True)], "v1")
    again = build_image(tmp_path / "again", [Layer(8, 300_000, compressed=True)], "v1")

    assert packed == again  # deterministic, gzip header included
    blob = read_blob(tmp_path / "packed", packed.layer_digests[0])
    assert blob[:2] == b"\x1f\x8b"
    assert gzip.decompress(blob) == read_blob(tmp_path / "plain", plain.layer_digests[0])
    assert packed.diff_ids == plain.diff_ids == plain.layer_digests
    assert packed.layer_digests != plain.layer_digests
    manifest = json.loads(read_blob(tmp_path / "packed", packed.manifest_digest))
    assert manifest["layers"][0]["mediaType"] == MEDIA_TYPE_LAYER_TAR_GZIP
    config = json.loads(read_blob(tmp_path / "packed", packed.config_digest))
    assert config["rootfs"]["diff_ids"] == list(plain.diff_ids)
    verify_layout(tmp_path / "packed")


def test_layout_index_names_each_tag_and_a_retag_replaces_it(tmp_path: Path) -> None:
    first = build_image(tmp_path, [Layer(1, 10)], "latest")
    other = build_image(tmp_path, [Layer(2, 10)], "other")
    moved = build_image(tmp_path, [Layer(3, 10)], "latest")

    layout = json.loads((tmp_path / "index.json").read_text())
    names = sorted(entry["annotations"][REF_NAME_ANNOTATION] for entry in layout["manifests"])
    assert names == ["latest", "other"]
    assert json.loads((tmp_path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert (
        tagged_descriptor(tmp_path, "latest").digest
        == moved.manifest_digest
        != first.manifest_digest
    )
    assert tagged_descriptor(tmp_path, "other").digest == other.manifest_digest
    with pytest.raises(KeyError):
        tagged_descriptor(tmp_path, "missing")


def test_index_has_an_amd64_and_an_arm64_image(tmp_path: Path) -> None:
    index = build_index(tmp_path, [[Layer(11, 100)], [Layer(12, 100)]], "multi")

    document = json.loads(read_blob(tmp_path, index.index_digest))

    assert document["mediaType"] == MEDIA_TYPE_INDEX
    assert [entry["platform"] for entry in document["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]
    assert [entry["digest"] for entry in document["manifests"]] == [
        image.manifest_digest for image in index.images
    ]
    arm64_config = json.loads(read_blob(tmp_path, index.images[1].config_digest))
    assert arm64_config["architecture"] == "arm64"
    assert tagged_descriptor(tmp_path, "multi").media_type == MEDIA_TYPE_INDEX
    verify_layout(tmp_path)


def test_reading_a_layout_back_describes_what_was_built(tmp_path: Path) -> None:
    image = build_image(tmp_path, [Layer(21, 500), Layer(22, 600)], "img")
    index = build_index(tmp_path, [[Layer(23, 10)], [Layer(24, 10)]], "idx")

    assert read_tagged(tmp_path, "img") == image
    read_index = read_tagged(tmp_path, "idx")
    assert isinstance(read_index, IndexInfo)
    assert read_index.index_digest == index.index_digest
    assert read_index.images == index.images


def test_hierarchy_children_share_the_base_layers_and_add_one_each(tmp_path: Path) -> None:
    base_layers = [Layer(31, 5000), Layer(32, 6000)]

    hierarchy = build_hierarchy(tmp_path, base_layers, n_children=3, child_layer_size=1234)

    base = hierarchy.base
    assert base.tag == "base"
    assert [child.tag for child in hierarchy.children] == ["child-0", "child-1", "child-2"]
    unique_layers = set()
    for child in hierarchy.children:
        assert child.layer_digests[:-1] == base.layer_digests
        unique_layers.add(child.layer_digests[-1])
    assert len(unique_layers) == 3
    assert not unique_layers & set(base.layer_digests)
    # Shared blobs are stored once: 2 base layers + 3 child layers + 4 configs + 4 manifests.
    assert len(verify_layout(tmp_path)) == 2 + 3 + 4 + 4
