"""Deterministic OCI image layouts on disk, for tests that push real images with real clients.

An image layout (OCI Image Layout Specification) is a directory holding ``oci-layout``,
``index.json`` and ``blobs/sha256/<hex>``; ``skopeo copy oci:DIR:TAG docker://...`` and
``podman pull oci:DIR:TAG`` read it. Everything written here is a pure function of its inputs:
a layer is an uncompressed tar (``application/vnd.oci.image.layer.v1.tar``) holding one file of
incompressible bytes drawn from ``random.Random(seed)``, with fixed metadata, so the same seed
and size give the same digest on every machine and every run.

Several images may be written into one layout directory; each is named by its tag (the
``org.opencontainers.image.ref.name`` annotation in ``index.json``), and blobs they share are
stored once.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, cast

OCI_LAYOUT_VERSION = "1.0.0"
MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

# Random bytes are drawn in chunks of this size, so a large layer never sits in memory whole;
# the chunking is fixed, which keeps the stream (and so the digest) independent of how
# ``tarfile`` happens to read it.
CHUNK_SIZE = 1 << 20

# The two platforms of a multi-arch index, in order.
DEFAULT_PLATFORMS: tuple[tuple[str, str], ...] = (("linux", "amd64"), ("linux", "arm64"))


@dataclass(frozen=True)
class Layer:
    """One layer: a tar holding ``size`` random bytes seeded by ``seed`` in a single file.

    ``compressed=True`` stores the tar gzip-wrapped (``...tar+gzip``). skopeo and podman
    compress uncompressed layers when they push to a registry, so an image whose layers
    should reach the registry byte for byte as built uses compressed layers. The gzip stream
    uses stored (level 0) deflate blocks: the payload is incompressible anyway, and stored
    blocks are the same bytes whatever zlib version writes them.
    """

    seed: int
    size: int
    compressed: bool = False
    # Zero bytes instead of random ones: cheap to make (a 1 GiB layer in seconds), and pushed
    # as is when compressed; a client that compresses on push shrinks it to almost nothing.
    zeros: bool = False

    @property
    def file_name(self) -> str:
        return f"data-{self.seed}-{self.size}.bin"


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest says about a blob."""

    media_type: str
    digest: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class ImageInfo:
    """What was written for one image manifest (and what a client should get back)."""

    tag: str | None
    manifest_digest: str
    manifest_size: int
    config_digest: str
    config_size: int
    layer_digests: tuple[str, ...]
    layer_sizes: tuple[int, ...]
    diff_ids: tuple[str, ...] = ()
    architecture: str = "amd64"
    media_type: str = MEDIA_TYPE_MANIFEST

    @property
    def blob_digests(self) -> tuple[str, ...]:
        """The config and every layer: the blobs a registry must hold for this image."""
        return (self.config_digest, *self.layer_digests)

    @property
    def total_size(self) -> int:
        return self.config_size + sum(self.layer_sizes)


@dataclass(frozen=True)
class IndexInfo:
    """What was written for one image index (multi-platform image)."""

    tag: str | None
    index_digest: str
    index_size: int
    images: tuple[ImageInfo, ...]
    media_type: str = MEDIA_TYPE_INDEX

    @property
    def manifest_digest(self) -> str:
        return self.index_digest


@dataclass(frozen=True)
class HierarchyInfo:
    """A base image and children built on top of it (each adds one unique layer)."""

    base: ImageInfo
    children: tuple[ImageInfo, ...] = field(default_factory=tuple)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_path(layout: Path | str, digest: str) -> Path:
    algorithm, _, hex_digest = digest.partition(":")
    return Path(layout) / "blobs" / algorithm / hex_digest


def canonical_json(document: dict[str, Any]) -> bytes:
    """Serialize a JSON document the same way every time (sorted keys, no spaces)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


# --- random payloads and tars -----------------------------------------------------------------


def random_chunks(seed: int, size: int) -> Iterator[bytes]:
    """Yield ``size`` bytes from ``random.Random(seed)`` in fixed chunks of ``CHUNK_SIZE``."""
    generator = random.Random(seed)
    remaining = size
    while remaining > 0:
        chunk_size = min(CHUNK_SIZE, remaining)
        yield generator.randbytes(chunk_size)
        remaining -= chunk_size


def zero_chunks(size: int) -> Iterator[bytes]:
    """Yield ``size`` zero bytes in chunks of ``CHUNK_SIZE``."""
    zeros = bytes(CHUNK_SIZE)
    for offset in range(0, size, CHUNK_SIZE):
        yield zeros[: min(CHUNK_SIZE, size - offset)]


class _RandomReader:
    """A read-only file object over a layer's payload (random or zero bytes), for tarfile."""

    def __init__(self, seed: int, size: int, zeros: bool = False) -> None:
        self._chunks = zero_chunks(size) if zeros else random_chunks(seed, size)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class _HashingWriter:
    """Writes to a file while computing the sha256 and the length of what was written."""

    def __init__(self, target: _Sink) -> None:
        self._target = target
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._target.write(data)
        self.hasher.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._target.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hasher.hexdigest()


def _tar_info(layer: Layer) -> tarfile.TarInfo:
    # Fixed metadata: nothing from the clock, the user or the umask reaches the archive.
    info = tarfile.TarInfo(layer.file_name)
    info.size = layer.size
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.type = tarfile.REGTYPE
    return info


def write_layer_tar(layer: Layer, target: _Sink) -> str:
    """Stream the layer's tar into ``target``; return the tar's digest (its ``diff_id``)."""
    tar_hasher = _HashingWriter(target)
    # Stream mode ("w|") only needs ``write``; typeshed asks for a whole IO[bytes].
    stream = cast(IO[bytes], tar_hasher)
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.USTAR_FORMAT) as archive:
        payload = cast(IO[bytes], _RandomReader(layer.seed, layer.size, layer.zeros))
        archive.addfile(_tar_info(layer), payload)
    return tar_hasher.digest


def write_layer(layout: Path | str, layer: Layer) -> tuple[Descriptor, str]:
    """Write ``layer`` as a blob into ``layout``; return its descriptor and its ``diff_id``.

    For an uncompressed layer the blob digest is also its ``diff_id``.
    """
    blobs = Path(layout) / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    partial = blobs / f".partial-{layer.seed}-{layer.size}-{layer.compressed:d}-{os.getpid()}"
    with partial.open("wb") as output:
        blob_hasher = _HashingWriter(output)
        if layer.compressed:
            with gzip.GzipFile(
                filename="", mode="wb", compresslevel=0, fileobj=blob_hasher, mtime=0
            ) as compressor:
                diff_id = write_layer_tar(layer, compressor)
        else:
            diff_id = write_layer_tar(layer, blob_hasher)
    final = blob_path(layout, blob_hasher.digest)
    if final.exists():
        partial.unlink()
    else:
        partial.rename(final)
    media_type = MEDIA_TYPE_LAYER_TAR_GZIP if layer.compressed else MEDIA_TYPE_LAYER_TAR
    return Descriptor(media_type, blob_hasher.digest, blob_hasher.size), diff_id


def write_blob(layout: Path | str, data: bytes) -> str:
    """Store ``data`` as a blob of ``layout``; return its digest."""
    digest = sha256_digest(data)
    path = blob_path(layout, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    return digest


# --- layout ----------------------------------------------------------------------------------


def init_layout(layout: Path | str) -> Path:
    """Create (or reuse) an image layout directory."""
    root = Path(layout)
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    if not (root / "index.json").exists():
        _write_layout_index(root, [])
    return root


def _read_layout_index(root: Path) -> list[dict[str, Any]]:
    return list(json.loads((root / "index.json").read_text()).get("manifests", []))


def _write_layout_index(root: Path, manifests: list[dict[str, Any]]) -> None:
    document = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": manifests}
    (root / "index.json").write_text(json.dumps(document, indent=2))


def _name_in_layout(root: Path, descriptor: Descriptor, tag: str | None) -> None:
    """Point ``tag`` at ``descriptor`` in the layout's ``index.json`` (replacing that tag)."""
    if tag is None:
        return
    manifests = [
        entry
        for entry in _read_layout_index(root)
        if entry.get("annotations", {}).get(REF_NAME_ANNOTATION) != tag
    ]
    entry = descriptor.as_json()
    entry["annotations"] = {REF_NAME_ANNOTATION: tag}
    manifests.append(entry)
    _write_layout_index(root, manifests)


def _image_config(architecture: str, os_name: str, diff_ids: Sequence[str]) -> dict[str, Any]:
    return {
        "architecture": architecture,
        "os": os_name,
        "created": "1970-01-01T00:00:00Z",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "oci_images"}]
        * len(diff_ids),
    }


def build_image(
    layout: Path | str,
    layers: Sequence[Layer],
    tag: str | None,
    *,
    architecture: str = "amd64",
    os_name: str = "linux",
) -> ImageInfo:
    """Write an image (its layers, config and manifest) into ``layout``, named ``tag``.

    With ``tag=None`` the manifest is stored but not named (as the children of an index are).
    """
    root = init_layout(layout)
    written = [write_layer(root, layer) for layer in layers]
    layer_descriptors = [descriptor for descriptor, _ in written]
    diff_ids = tuple(diff_id for _, diff_id in written)
    config = _image_config(architecture, os_name, diff_ids)
    config_bytes = canonical_json(config)
    config_digest = write_blob(root, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": Descriptor(MEDIA_TYPE_CONFIG, config_digest, len(config_bytes)).as_json(),
        "layers": [d.as_json() for d in layer_descriptors],
    }
    manifest_bytes = canonical_json(manifest)
    manifest_digest = write_blob(root, manifest_bytes)
    _name_in_layout(
        root, Descriptor(MEDIA_TYPE_MANIFEST, manifest_digest, len(manifest_bytes)), tag
    )
    return ImageInfo(
        tag=tag,
        manifest_digest=manifest_digest,
        manifest_size=len(manifest_bytes),
        config_digest=config_digest,
        config_size=len(config_bytes),
        layer_digests=tuple(d.digest for d in layer_descriptors),
        layer_sizes=tuple(d.size for d in layer_descriptors),
        diff_ids=diff_ids,
        architecture=architecture,
    )


def build_index(
    layout: Path | str,
    images: Sequence[Sequence[Layer]],
    tag: str | None,
    *,
    platforms: Sequence[tuple[str, str]] = DEFAULT_PLATFORMS,
) -> IndexInfo:
    """Write a multi-platform image: one image per platform and an image index naming them.

    ``images[i]`` are the layers of the image for ``platforms[i]`` (amd64 and arm64 by default).
    """
    if len(images) != len(platforms):
        raise ValueError(f"{len(images)} images for {len(platforms)} platforms")
    root = init_layout(layout)
    built = [
        build_image(root, layers, None, architecture=architecture, os_name=os_name)
        for layers, (os_name, architecture) in zip(images, platforms, strict=True)
    ]
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [
            {
                **Descriptor(
                    MEDIA_TYPE_MANIFEST, image.manifest_digest, image.manifest_size
                ).as_json(),
                "platform": {"architecture": architecture, "os": os_name},
            }
            for image, (os_name, architecture) in zip(built, platforms, strict=True)
        ],
    }
    index_bytes = canonical_json(index)
    index_digest = write_blob(root, index_bytes)
    _name_in_layout(root, Descriptor(MEDIA_TYPE_INDEX, index_digest, len(index_bytes)), tag)
    return IndexInfo(
        tag=tag, index_digest=index_digest, index_size=len(index_bytes), images=tuple(built)
    )


def build_hierarchy(
    layout: Path | str,
    base_layers: Sequence[Layer],
    n_children: int,
    child_layer_size: int,
    *,
    child_seed: int = 1_000_000,
    compressed: bool = False,
    base_tag: str = "base",
    child_tag_prefix: str = "child-",
) -> HierarchyInfo:
    """Write a base image and ``n_children`` images built on it, each tagged in ``layout``.

    Child ``i`` (tag ``child-<i>``) has every base layer and one unique layer of
    ``child_layer_size`` random bytes seeded ``child_seed + i`` (gzip-wrapped when
    ``compressed``); pushing the children after
    the base should cost only their unique layers.
    """
    root = init_layout(layout)
    base = build_image(root, base_layers, base_tag)
    children = tuple(
        build_image(
            root,
            [*base_layers, Layer(child_seed + index, child_layer_size, compressed)],
            f"{child_tag_prefix}{index}",
        )
        for index in range(n_children)
    )
    return HierarchyInfo(base=base, children=children)


# --- reading a layout back (what a client pulled) -----------------------------------------------


def read_blob(layout: Path | str, digest: str) -> bytes:
    return blob_path(layout, digest).read_bytes()


def file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_SIZE):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def tagged_descriptor(layout: Path | str, tag: str) -> Descriptor:
    """The descriptor that ``tag`` names in the layout's ``index.json``."""
    for entry in _read_layout_index(Path(layout)):
        if entry.get("annotations", {}).get(REF_NAME_ANNOTATION) == tag:
            return Descriptor(entry["mediaType"], entry["digest"], entry["size"])
    raise KeyError(f"no image tagged {tag!r} in {layout}")


def read_image(layout: Path | str, digest: str, tag: str | None = None) -> ImageInfo:
    """Describe the image manifest ``digest`` stored in ``layout``."""
    manifest_bytes = read_blob(layout, digest)
    manifest = json.loads(manifest_bytes)
    config = json.loads(read_blob(layout, manifest["config"]["digest"]))
    return ImageInfo(
        tag=tag,
        manifest_digest=digest,
        manifest_size=len(manifest_bytes),
        config_digest=manifest["config"]["digest"],
        config_size=manifest["config"]["size"],
        layer_digests=tuple(layer["digest"] for layer in manifest["layers"]),
        layer_sizes=tuple(layer["size"] for layer in manifest["layers"]),
        diff_ids=tuple(config.get("rootfs", {}).get("diff_ids", [])),
        architecture=config.get("architecture", ""),
        media_type=manifest.get("mediaType", MEDIA_TYPE_MANIFEST),
    )


def read_tagged(layout: Path | str, tag: str) -> ImageInfo | IndexInfo:
    """Describe what ``tag`` names in ``layout``: an image, or an index and its images."""
    descriptor = tagged_descriptor(layout, tag)
    document = json.loads(read_blob(layout, descriptor.digest))
    if document.get("mediaType", descriptor.media_type) == MEDIA_TYPE_INDEX or (
        "manifests" in document and "layers" not in document
    ):
        images = tuple(read_image(layout, entry["digest"]) for entry in document["manifests"])
        return IndexInfo(
            tag=tag, index_digest=descriptor.digest, index_size=descriptor.size, images=images
        )
    return read_image(layout, descriptor.digest, tag)


def verify_layout(layout: Path | str) -> list[str]:
    """Check that every blob's content hashes to its file name; return the digests checked."""
    checked = []
    for path in sorted((Path(layout) / "blobs" / "sha256").iterdir()):
        if path.name.startswith("."):
            continue
        digest = "sha256:" + path.name
        actual = file_digest(path)
        if actual != digest:
            raise AssertionError(f"blob {digest} in {layout} has content {actual}")
        checked.append(digest)
    return checked
