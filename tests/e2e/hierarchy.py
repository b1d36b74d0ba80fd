"""Helpers shared by the mount and fresh-runner stories (issues 4 and 8): image hierarchies,
client caches, raw-HTTP pushes, and what the server must have received.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from harness.container_tools import (
    UNPRIVILEGED_USER,
    Skopeo,
    ensure_unprivileged_user,
)
from harness.oci_images import (
    MEDIA_TYPE_MANIFEST,
    ImageInfo,
    Layer,
    build_hierarchy,
    read_blob,
)
from harness.registry_http import RegistryHTTP, repository_scope

KiB = 1024
MiB = 1024 * KiB


def gz(seed: int, size: int) -> Layer:
    """A gzip (level 0) layer: skopeo pushes it unchanged, so its digest is known beforehand."""
    return Layer(seed, size, compressed=True)


def fresh_seed() -> int:
    """Seeds unique to this run: the server's data persists, and a layer pushed by an earlier
    run would be found (and mounted or linked) instead of uploaded, spoiling the byte counts."""
    return secrets.randbelow(1 << 40) * 1000


def fresh_hierarchy(layout: Path, base_layer_size: int, children: int, child_layer_size: int):
    """A base of three gzip layers and ``children`` images on it, from seeds new to this run."""
    seed = fresh_seed()
    return build_hierarchy(
        layout,
        [gz(seed + i, base_layer_size) for i in range(3)],
        children,
        child_layer_size,
        child_seed=seed + 100,
        compressed=True,
    )


def skopeo_for(credentials: tuple[str, str], home: Path) -> Skopeo:
    """skopeo as ``credentials`` with the blob-info cache kept under ``home``."""
    if ensure_unprivileged_user() is None:
        return Skopeo(credentials=credentials)
    return Skopeo(credentials=credentials, user=UNPRIVILEGED_USER, home=home)


def copy_home(source: Path, destination: Path) -> Path:
    """A copy of a skopeo ``HOME`` (and so of what that client remembers), owned by the user."""
    shutil.copytree(source, destination, dirs_exist_ok=True)
    if ensure_unprivileged_user() is not None:
        subprocess.run(["chown", "-R", UNPRIVILEGED_USER, str(destination)], check=True)
    return destination


def unique_bytes(images: Iterable[ImageInfo]) -> int:
    """Bytes of the distinct blobs (configs and layers) of ``images``: what a push must send."""
    sizes: dict[str, int] = {}
    for image in images:
        sizes[image.config_digest] = image.config_size
        sizes.update(zip(image.layer_digests, image.layer_sizes, strict=True))
    return sum(sizes.values())


def push_scope(name: str, *readable: str) -> str:
    """The token scope of a push to ``name`` that may mount from ``readable``."""
    return " ".join([repository_scope(name), *(repository_scope(r, "pull") for r in readable)])


def monolithic_upload(http: RegistryHTTP, name: str, data: bytes, digest: str) -> None:
    """``POST /v2/<name>/blobs/uploads/?digest=`` with the whole blob (spec: single POST)."""
    assert http.push_blob(name, data) == digest


def mount(http: RegistryHTTP, name: str, digest: str, source: str | None):
    query = f"mount={digest}" + (f"&from={source}" if source else "")
    readable = (source,) if source else ()
    return http.request(
        "POST",
        f"/v2/{name}/blobs/uploads/?{query}",
        scope=push_scope(name, *readable),
        headers={"Content-Length": "0"},
        data=b"",
    )


def put_manifest(http: RegistryHTTP, name: str, layout: Path, image: ImageInfo, tag: str):
    return http.request(
        "PUT",
        f"/v2/{name}/manifests/{tag}",
        scope=repository_scope(name),
        headers={"Content-Type": MEDIA_TYPE_MANIFEST},
        data=read_blob(layout, image.manifest_digest),
    )


def push_image_http(http: RegistryHTTP, name: str, layout: Path, image: ImageInfo, tag: str):
    """Push an image from a layout with monolithic uploads and a manifest PUT."""
    for digest in image.blob_digests:
        monolithic_upload(http, name, read_blob(layout, digest), digest)
    response = put_manifest(http, name, layout, image, tag)
    assert response.status_code == 201, (response.status_code, response.text)


def server_manifest(http: RegistryHTTP, name: str, reference: str) -> dict:
    response = http.get_manifest(name, reference, MEDIA_TYPE_MANIFEST)
    assert response.status_code == 200, (response.status_code, response.text)
    return dict(json.loads(response.content))
