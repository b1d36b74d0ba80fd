"""The client side shared by every benchmark: skopeo with a controlled cache, and test images.

skopeo runs as the unprivileged test user with a ``HOME`` of our choosing, because its blob-info
cache (which repositories already hold a blob, the thing that makes it try a mount) lives there:
a new home is a fresh client cache, a shared home remembers earlier pushes. The same skopeo binary
pushes to every peer, with TLS verification off.

Images are built with ``harness/oci_images.py`` into ``benchmarks/.work/images/`` and kept
between runs (they are pure functions of their parameters). Layers are gzip-wrapped (stored
blocks) so that skopeo sends them unchanged and their digests are what the layout says.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.peers import WORK_DIR, Peer
from harness.container_tools import (
    UNPRIVILEGED_USER,
    Skopeo,
    ensure_unprivileged_user,
    open_to_everyone,
)
from harness.oci_images import (
    HierarchyInfo,
    ImageInfo,
    Layer,
    build_hierarchy,
    build_image,
)

IMAGES_DIR = WORK_DIR / "images"
HOMES_DIR = WORK_DIR / "homes"
_home_counter = 0


def fresh_home() -> Path:
    """A new, empty HOME for skopeo (so an empty blob-info cache), owned by the test user
    (created first on a fresh machine, as the end-to-end tests do)."""
    global _home_counter
    if ensure_unprivileged_user() is None:
        raise RuntimeError("skopeo needs the unprivileged test user (run as root)")
    _home_counter += 1
    home = HOMES_DIR / f"h{time.monotonic_ns()}-{_home_counter}"
    open_to_everyone(home)
    shutil.chown(home, user=UNPRIVILEGED_USER)
    return home


def reset_homes() -> None:
    shutil.rmtree(HOMES_DIR, ignore_errors=True)
    open_to_everyone(HOMES_DIR)


def skopeo_for(peer: Peer, home: Path | None = None, timeout: float = 900.0) -> Skopeo:
    """skopeo as the peer's user with ``home`` (a fresh one when None)."""
    if ensure_unprivileged_user() is None:
        raise RuntimeError("skopeo needs the unprivileged test user (run as root)")
    return Skopeo(
        credentials=peer.credentials,
        user=UNPRIVILEGED_USER,
        home=home or fresh_home(),
        timeout=timeout,
    )


SkopeoFactory = Callable[[Peer, Path | None], Skopeo]


def timed_copy(skopeo: Skopeo, source: str, destination: str) -> float:
    started = time.perf_counter()
    skopeo.copy(source, destination)
    return time.perf_counter() - started


def start_copy(skopeo: Skopeo, source: str, destination: str) -> subprocess.Popen[bytes]:
    return skopeo.start_copy(source, destination)


# --- images ---------------------------------------------------------------------------------


def _cached(
    name: str, parameters: dict[str, Any], build: Callable[[Path], Any]
) -> tuple[Path, Any]:
    """Build into ``images/<name>`` unless it holds a build of the same parameters."""
    layout = IMAGES_DIR / name
    stamp = layout / "bench-build.json"
    if stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("parameters") == parameters:
            return layout, saved["info"]
    shutil.rmtree(layout, ignore_errors=True)
    open_to_everyone(IMAGES_DIR)
    open_to_everyone(layout)
    info = build(layout)
    stamp.write_text(json.dumps({"parameters": parameters, "info": info}))
    for path in layout.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return layout, info


def _image_dict(image: ImageInfo) -> dict[str, Any]:
    return asdict(image)


def hierarchy_image(
    base_layer_size: int,
    base_layers: int,
    children: int,
    child_layer_size: int,
    seed: int = 100,
) -> tuple[Path, dict[str, Any]]:
    """A base of ``base_layers`` layers and ``children`` images adding one layer each.

    Returns the layout and ``{"base": image, "children": [image...]}`` (``ImageInfo`` as dicts).
    Hierarchies of different ``seed`` share no layer (one peer receives both: a sync source and
    the pushed hierarchy must not link each other's blobs).
    """
    parameters = {
        "base_layer_size": base_layer_size,
        "base_layers": base_layers,
        "children": children,
        "child_layer_size": child_layer_size,
        "seed": seed,
    }

    def build(layout: Path) -> dict[str, Any]:
        info: HierarchyInfo = build_hierarchy(
            layout,
            [Layer(seed + index, base_layer_size, compressed=True) for index in range(base_layers)],
            children,
            child_layer_size,
            child_seed=10_000 * seed,  # seed 100: the children's layers as before
            compressed=True,
        )
        return {
            "base": _image_dict(info.base),
            "children": [_image_dict(child) for child in info.children],
        }

    name = f"hierarchy-{base_layers}x{base_layer_size}-{children}x{child_layer_size}-{seed}"
    return _cached(name, parameters, build)


def single_layer_image(size: int, seed: int = 7) -> tuple[Path, dict[str, Any]]:
    """One image (tag ``latest``) of one incompressible layer of ``size`` bytes."""

    def build(layout: Path) -> dict[str, Any]:
        return _image_dict(build_image(layout, [Layer(seed, size, compressed=True)], "latest"))

    return _cached(f"single-{size}-{seed}", {"size": size, "seed": seed}, build)


def small_images(count: int, layer_size: int) -> tuple[Path, list[dict[str, Any]]]:
    """``count`` images tagged ``c0``.. each of one unique layer of ``layer_size`` bytes."""

    def build(layout: Path) -> list[dict[str, Any]]:
        return [
            _image_dict(
                build_image(layout, [Layer(5000 + i, layer_size, compressed=True)], f"c{i}")
            )
            for i in range(count)
        ]

    return _cached(f"small-{count}x{layer_size}", {"count": count, "size": layer_size}, build)


def blob_sizes(images: Sequence[dict[str, Any]]) -> dict[str, int]:
    """digest -> size of every config and layer of ``images``."""
    sizes: dict[str, int] = {}
    for image in images:
        sizes[image["config_digest"]] = image["config_size"]
        for digest, size in zip(image["layer_digests"], image["layer_sizes"], strict=True):
            sizes[digest] = size
    return sizes


def oci(layout: Path, tag: str) -> str:
    return f"oci:{layout}:{tag}"
