"""Comparative benchmark: our registry, upstream pulp-container 2.30.0 and distribution 2.8.

    .venv/bin/python benchmarks/compare.py            # full run (< 15 min), prints the table
    .venv/bin/python benchmarks/compare.py --smoke    # tiny sizes, a minute or two

One run starts the three servers side by side on this machine (each with a fresh database and
empty storage under ``benchmarks/.work/``, all on one disk), pushes the same locally built images
with the same skopeo, measures, stops them, and writes ``benchmarks/results/compare-<time>.json``
and ``.md`` (plus ``latest.json``/``latest.md``). See ``benchmarks/README.md`` for what each row
means. Upstream runs from ``benchmarks/.work/upstream-venv`` (``--install-upstream`` makes it;
a full run makes it when missing; a smoke run without it compares ours with distribution only).

Order per server (it matters): mount latency at 10 repositories on the fresh server, filling
up to 1,000 repositories, mount latency at 1,000, hierarchy pushes, large blob, manifest commit.
"""

# ruff: noqa: E501 - the table rows read best one per line

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import platform
import secrets
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import (  # noqa: E402
    hot_path,
    large_blob,
    manifest_commit,
    physical_limit,
    sync_mirror,
)
from benchmarks.peers import WORK_DIR, Peer, free_port, summarize  # noqa: E402
from benchmarks.peers import distribution as distribution_peer  # noqa: E402
from benchmarks.peers import ours as ours_peer  # noqa: E402
from benchmarks.peers import upstream as upstream_peer  # noqa: E402
from benchmarks.peers.client import (  # noqa: E402
    Client,
    image_config,
    manifest,
    percentile,
    pull,
    pull_push,
)
from benchmarks.peers.tools import (  # noqa: E402
    blob_sizes,
    fresh_home,
    hierarchy_image,
    oci,
    reset_homes,
    single_layer_image,
    skopeo_for,
    small_images,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MIB = 1 << 20
PEER_NAMES = ("ours", "upstream", "distribution")


@dataclass(frozen=True)
class Sizes:
    base_layers: int
    base_layer_size: int
    children: int
    child_layer_size: int
    mounts: int
    repositories_small: int
    repositories_large: int
    large_blob: int
    small_blob: int
    manifest_puts: int
    concurrent: int
    concurrent_layer_size: int
    physical: int
    hot_requests: int
    clients: int
    client_seconds: float
    idle_connections: int
    sync_tags: int
    sync_base_layer_size: int
    sync_own_layer_size: int
    hierarchy_runs: int


FULL = Sizes(
    base_layers=3,
    base_layer_size=16 * MIB,
    children=10,
    child_layer_size=1 * MIB,
    mounts=200,
    repositories_small=10,
    repositories_large=1000,
    large_blob=512 * MIB,
    small_blob=64 * MIB,
    manifest_puts=50,
    concurrent=8,
    concurrent_layer_size=1 * MIB,
    physical=512 * MIB,
    hot_requests=100,
    clients=32,
    client_seconds=20.0,
    idle_connections=64,
    sync_tags=20,
    sync_base_layer_size=4 * MIB,
    sync_own_layer_size=512 * 1024,
    hierarchy_runs=3,
)
SMOKE = Sizes(
    base_layers=2,
    base_layer_size=64 * 1024,
    children=2,
    child_layer_size=16 * 1024,
    mounts=10,
    repositories_small=4,
    repositories_large=8,
    large_blob=2 * MIB,
    small_blob=1 * MIB,
    manifest_puts=5,
    concurrent=3,
    concurrent_layer_size=16 * 1024,
    physical=16 * MIB,
    hot_requests=10,
    clients=4,
    client_seconds=2.0,
    idle_connections=8,
    sync_tags=3,
    sync_base_layer_size=64 * 1024,
    sync_own_layer_size=16 * 1024,
    hierarchy_runs=1,
)


def log(message: str) -> None:
    print(f"[compare {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- 1. hierarchy push ------------------------------------------------------------------------
# benchmarks/push_hierarchy.py (a colleague's) measures the hierarchy push and mount latency
# against our server only. These functions measure the same things against any peer, through
# the same client, so that the three columns are comparable; where the two overlap, they are
# meant to share one implementation once push_hierarchy.py exposes peer-agnostic functions.


# Hierarchies that share no layer with each other or with the sync source (seed 300).
HIERARCHY_SEEDS = (100, 1100, 2100)


def hierarchy_pushes(peer: Peer, prefix: str, sizes: Sizes, mount_possible: bool) -> dict[str, Any]:
    """``hierarchy_push`` of ``sizes.hierarchy_runs`` hierarchies that share no layer, one after
    the other: the run of median wall time, with every run's wall time (one push of ~2 s moves
    by 10% between runs on a shared machine)."""
    runs = [
        hierarchy_push(peer, f"{prefix}-{index}", sizes, mount_possible, seed)
        for index, seed in enumerate(HIERARCHY_SEEDS[: sizes.hierarchy_runs])
    ]
    median = sorted(runs, key=lambda run: run["wall_s"])[len(runs) // 2]
    return {**median, "walls_s": [run["wall_s"] for run in runs]}


def hierarchy_push(
    peer: Peer, prefix: str, sizes: Sizes, mount_possible: bool, seed: int = HIERARCHY_SEEDS[0]
) -> dict[str, Any]:
    """Push the base then each child to its own repository; wall time and bytes received.

    ``mount_possible``: one skopeo cache for every push, so skopeo knows the base's layers sit
    in ``<prefix>/base`` and asks to mount them. Otherwise every push starts from a fresh cache
    (a fresh CI runner): skopeo only asks ``HEAD`` in the target, then uploads what is missing.
    """
    layout, info = hierarchy_image(
        sizes.base_layer_size, sizes.base_layers, sizes.children, sizes.child_layer_size, seed
    )
    images = [info["base"], *info["children"]]
    known_sizes = blob_sizes(images)
    unique_bytes = sum(known_sizes.values())
    shared_home = fresh_home() if mount_possible else None
    offset = peer.log_offset()
    started = time.perf_counter()
    pushes = [("base", f"{prefix}/base")]
    pushes += [(f"child-{i}", f"{prefix}/child-{i}") for i in range(sizes.children)]
    for tag, repository in pushes:
        skopeo = skopeo_for(peer, shared_home)
        skopeo.copy(oci(layout, tag), peer.reference(repository))
    wall_s = time.perf_counter() - started
    traffic = summarize(peer.requests_since(offset), prefix)
    received = traffic.bytes_received(known_sizes)
    return {
        "wall_s": wall_s,
        "pushes": len(pushes),
        "unique_bytes": unique_bytes,
        "bytes_received": received,
        "uploads": len(traffic.uploaded_digests),
        "mounts": traffic.mounted,
        "mount_fallbacks": traffic.mount_fallbacks,
        "head_hits": traffic.head_hits,
        "status_5xx": traffic.errors,
    }


# --- 2. mount latency -------------------------------------------------------------------------


@dataclass
class MountSource:
    name: str
    digests: list[str]
    config: tuple[str, int]
    layer0: tuple[str, int]


def mount_source(peer: Peer, name: str, blobs: int, threads: int = 4) -> MountSource:
    """A repository holding ``blobs`` small distinct layers (one committed image).

    The layers are uploaded monolithically by ``threads`` clients in parallel (setup, not timed).
    """
    layers = [os.urandom(512) for _ in range(blobs)]

    def upload(chunk: list[bytes]) -> list[str]:
        client = Client(peer)
        client.authorize([pull_push(name)])
        return [client.upload_monolithic(name, layer) for layer in chunk]

    # The first upload alone: it creates the repository, which parallel first pushes would race.
    digests = upload(layers[:1])
    chunks = [layers[i::threads] for i in range(threads)]
    chunks[0] = chunks[0][1:]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for result in pool.map(upload, chunks):
            digests += result
    client = Client(peer)
    client.authorize([pull_push(name)])
    config = image_config(name)
    config_digest = client.upload(name, config)
    body = manifest((config_digest, len(config)), [(d, 512) for d in digests])
    client.expect(client.put_manifest(name, "latest", body), 201)
    return MountSource(name, digests, (config_digest, len(config)), (digests[0], 512))


def mount_latency(peer: Peer, source: MountSource, target: str) -> dict[str, Any]:
    """Mount every blob of ``source`` into ``target`` with one token; latency of each POST."""
    client = Client(peer)
    client.authorize([pull_push(target), pull(source.name)])
    latencies = []
    statuses: dict[int, int] = {}
    for digest in source.digests:
        elapsed, response = client.timed(
            "POST",
            f"/v2/{target}/blobs/uploads/?mount={digest}&from={source.name}",
            data=b"",
            headers={"Content-Length": "0"},
        )
        latencies.append(elapsed)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return {
        "count": len(latencies),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "mounted": statuses.get(201, 0),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def request_floor(peer: Peer, name: str, count: int = 50) -> dict[str, Any]:
    """p50/p95 of an authenticated ``GET /v2/`` (token reused): what any request costs."""
    client = Client(peer)
    client.authorize([pull(name)])
    latencies = [client.timed("GET", "/v2/")[0] for _ in range(count)]
    return {
        "count": count,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
    }


def add_repositories(
    peer: Peer, source: MountSource, prefix: str, first: int, count: int, threads: int = 4
) -> float:
    """Create ``count`` repositories ``<prefix>/fill-<i>``, each by one mount of a blob of
    ``source`` (the cheapest way a client makes a repository on all three servers; a token per
    10 repositories, 4 clients in parallel). Returns the seconds taken."""
    names = [f"{prefix}/fill-{i}" for i in range(first, first + count)]
    batches = [names[i : i + 10] for i in range(0, len(names), 10)]

    def fill(batch: list[str]) -> None:
        client = Client(peer)
        client.authorize([pull(source.name), *(pull_push(name) for name in batch)])
        for name in batch:
            client.expect(client.mount(name, source.layer0[0], source.name), 201)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(fill, batch) for batch in batches]:
            future.result()
    return time.perf_counter() - started


def mount_benchmarks(peer: Peer, prefix: str, sizes: Sizes) -> dict[str, Any]:
    """Mount latency at ``repositories_small`` then at ``repositories_large`` repositories.

    Repositories counted: the source, the targets and the fillers, on a server that holds
    nothing else (this runs first).
    """
    source = mount_source(peer, f"{prefix}/source", sizes.mounts)
    fillers_small = sizes.repositories_small - 2
    add_repositories(peer, source, prefix, 0, fillers_small)
    small = mount_latency(peer, source, f"{prefix}/target-small")
    fillers_large = sizes.repositories_large - sizes.repositories_small - 1
    fill_s = add_repositories(peer, source, prefix, fillers_small, fillers_large)
    large = mount_latency(peer, source, f"{prefix}/target-large")
    floor = request_floor(peer, source.name)
    return {
        "floor": floor,
        "small": {"repositories": sizes.repositories_small, **small},
        "large": {"repositories": sizes.repositories_large, **large},
        "fill_s": fill_s,
        "fill_repositories": fillers_large,
    }


# --- 3. the small requests of a push, under load -------------------------------------------


def hot_path_benchmarks(peer: Peer, prefix: str, sizes: Sizes) -> dict[str, Any]:
    """HEAD of a held blob and a repeated token request (one client), then ``clients`` clients
    for ``client_seconds`` on ``GET /v2/`` and on that HEAD, then the idle-connection check."""
    name = f"{prefix}/held"
    client = Client(peer)
    client.authorize([pull_push(name)])
    digest = client.upload_monolithic(name, os.urandom(4096))
    scopes = [pull(name)]
    head = f"/v2/{name}/blobs/{digest}"
    results: dict[str, Any] = {
        "floor": hot_path.latency(peer, scopes, "GET", "/v2/", sizes.hot_requests),
        "head": hot_path.head_latency(peer, name, digest, sizes.hot_requests),
        "token": hot_path.token_latency(peer, name, sizes.hot_requests),
    }
    for key, method, location, single in (
        ("floor_load", "GET", "/v2/", "floor"),
        ("head_load", "HEAD", head, "head"),
    ):
        loaded = hot_path.concurrency(
            peer, scopes, method, location, sizes.clients, sizes.client_seconds
        )
        loaded["p95_over_single"] = loaded["p95_ms"] / results[single]["p50_ms"]
        results[key] = loaded
    results["idle"] = hot_path.idle_connections(peer, f"{prefix}/idle", sizes.idle_connections)
    return results


# --- running a peer ---------------------------------------------------------------------------


def guarded(results: dict[str, Any], key: str, function: Callable[[], Any]) -> None:
    started = time.perf_counter()
    try:
        results[key] = function()
    except Exception as error:  # noqa: BLE001 - one failure must not lose the other results
        results[key] = {"error": f"{type(error).__name__}: {error}"[:2000]}
        log(f"  {key}: FAILED {type(error).__name__}: {str(error)[:500]}")
        traceback.print_exc(file=sys.stderr)
    else:
        log(f"  {key}: {time.perf_counter() - started:.1f}s")


def run_peer(
    peer: Peer, sizes: Sizes, run_id: str, sync_source: sync_mirror.SyncSource | None = None
) -> dict[str, Any]:
    prefix = f"bench-{run_id}"
    results: dict[str, Any] = {}
    log(f"{peer.name}: {peer.version} at {peer.url}")
    if sync_source is not None and peer.psql is not None:
        # First, on the fresh server: a sync's cost does not depend on what else was pushed.
        guarded(results, "sync", lambda: sync_mirror.sync_once(peer, sync_source))
    guarded(results, "mount", lambda: mount_benchmarks(peer, f"{prefix}/mount", sizes))
    guarded(results, "hot", lambda: hot_path_benchmarks(peer, f"{prefix}/hot", sizes))
    guarded(
        results,
        "hierarchy_mount",
        lambda: hierarchy_pushes(peer, f"{prefix}/hier-mount", sizes, mount_possible=True),
    )
    guarded(
        results,
        "hierarchy_fresh",
        lambda: hierarchy_pushes(peer, f"{prefix}/hier-fresh", sizes, mount_possible=False),
    )
    guarded(
        results,
        "blob_small",
        lambda: large_blob.measure(peer, sizes.small_blob, f"{prefix}/blob-small", pull=False),
    )
    guarded(
        results, "blob_large", lambda: large_blob.measure(peer, sizes.large_blob, f"{prefix}/blob")
    )
    guarded(
        results,
        "manifest_put",
        lambda: manifest_commit.put_latency(peer, f"{prefix}/manifests", sizes.manifest_puts),
    )
    guarded(
        results,
        "concurrent",
        lambda: manifest_commit.concurrent_pushes(
            peer, f"{prefix}/concurrent", sizes.concurrent, sizes.concurrent_layer_size
        ),
    )
    return results


def object_storage_blob(sizes: Sizes, run_id: str) -> dict[str, Any]:
    """The large blob pushed and pulled through object storage (issue 14): ours again, with
    ``PULP_STORAGE=s3`` (a local S3 server, moto) and two API hosts behind the front; the pull
    follows the blob GET's redirect to a presigned URL. Its rows sit in our column."""
    peer = ours_peer.launch(
        WORK_DIR / "ours-s3",
        {"PULP_STORAGE": "s3", "PULP_API_HOSTS": "2", "PULP_S3_PORT": str(free_port())},
    )
    try:
        return large_blob.measure(peer, sizes.large_blob, f"bench-{run_id}/blob-s3")
    finally:
        peer.stop()


# --- the table --------------------------------------------------------------------------------


def _get(results: dict[str, Any], *path: str) -> float | None:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) and value is not None else None


@dataclass(frozen=True)
class Row:
    label: str
    path: tuple[str, ...]
    scale: float = 1.0
    digits: int = 1


def rows(sizes: Sizes) -> list[Row]:
    unique_mib = "unique"
    return [
        Row(f"Hierarchy push, mount possible: wall s, median of {sizes.hierarchy_runs} (lower is better)", ("hierarchy_mount", "wall_s"), digits=2),
        Row(f"  bytes received MiB ({unique_mib}: see below)", ("hierarchy_mount", "bytes_received"), 1 / MIB),
        Row(f"Hierarchy push, fresh client cache: wall s, median of {sizes.hierarchy_runs}", ("hierarchy_fresh", "wall_s"), digits=2),
        Row("  bytes received MiB", ("hierarchy_fresh", "bytes_received"), 1 / MIB),
        Row(f"Mount p50 ms at {sizes.repositories_small} repositories", ("mount", "small", "p50_ms"), digits=2),
        Row(f"Mount p95 ms at {sizes.repositories_small} repositories", ("mount", "small", "p95_ms"), digits=2),
        Row(f"Mount p50 ms at {sizes.repositories_large} repositories", ("mount", "large", "p50_ms"), digits=2),
        Row(f"Mount p95 ms at {sizes.repositories_large} repositories", ("mount", "large", "p95_ms"), digits=2),
        Row("  GET /v2/ p50 ms (floor of any request)", ("mount", "floor", "p50_ms"), digits=2),
        Row(f"  filling {sizes.repositories_large - sizes.repositories_small - 1} repositories s", ("mount", "fill_s")),
        Row("HEAD existing blob p50 ms", ("hot", "head", "p50_ms"), digits=2),
        Row("Token request p50 ms (repeated)", ("hot", "token", "p50_ms"), digits=2),
        Row(f"{sizes.clients} clients x {sizes.client_seconds:.0f} s GET /v2/: p50 ms", ("hot", "floor_load", "p50_ms"), digits=2),
        Row("  p95 ms", ("hot", "floor_load", "p95_ms"), digits=2),
        Row("  p95 / single-client GET /v2/ p50", ("hot", "floor_load", "p95_over_single"), digits=2),
        Row("  requests/s", ("hot", "floor_load", "requests_per_s"), digits=0),
        Row("  errors", ("hot", "floor_load", "errors"), digits=0),
        Row(f"{sizes.clients} clients x {sizes.client_seconds:.0f} s HEAD blob: p50 ms", ("hot", "head_load", "p50_ms"), digits=2),
        Row("  p95 ms", ("hot", "head_load", "p95_ms"), digits=2),
        Row("  p95 / single-client HEAD p50", ("hot", "head_load", "p95_over_single"), digits=2),
        Row("  requests/s", ("hot", "head_load", "requests_per_s"), digits=0),
        Row("  errors", ("hot", "head_load", "errors"), digits=0),
        Row("Small push (4 KiB layer, config, manifest) alone s", ("hot", "idle", "alone_s"), digits=3),
        Row(f"  beside {sizes.idle_connections} idle connections s", ("hot", "idle", "with_idle_s"), digits=3),
        Row("  idle check passed (1 = yes)", ("hot", "idle", "ok"), digits=0),
        Row(f"Large blob {sizes.large_blob // MIB} MiB push MB/s (higher is better)", ("blob_large", "push_mb_s")),
        Row("  API peak RSS MiB, one process", ("blob_large", "api_peak_rss_mib")),
        Row(f"  API peak RSS MiB at {sizes.small_blob // MIB} MiB push", ("blob_small", "api_peak_rss_mib")),
        Row("  API RSS MiB before the push", ("blob_large", "api_baseline_rss_mib")),
        Row(f"Large blob {sizes.large_blob // MIB} MiB pull MB/s", ("blob_large", "pull_mb_s")),
        Row("  the server alone: HTTP/2 GET to /dev/null (curl) MB/s", ("blob_large", "server_pull_mb_s")),
        Row(f"Large blob {sizes.large_blob // MIB} MiB push MB/s, S3 + 2 API hosts (ours)", ("blob_large_s3", "push_mb_s")),
        Row(f"Large blob {sizes.large_blob // MIB} MiB pull MB/s, S3 (presigned redirect)", ("blob_large_s3", "pull_mb_s")),
        Row("  the server alone: HTTP/2 GET to /dev/null (curl) MB/s, S3", ("blob_large_s3", "server_pull_mb_s")),
        Row("Manifest PUT p50 ms", ("manifest_put", "p50_ms"), digits=2),
        Row("Manifest PUT p95 ms", ("manifest_put", "p95_ms"), digits=2),
        Row(f"{sizes.concurrent} concurrent pushes to {sizes.concurrent} repositories: wall s", ("concurrent", "wall_s"), digits=2),
        Row("  failed pushes + 429 + 5xx", ("concurrent", "problems"), digits=0),
        Row(f"Sync of {sizes.sync_tags} tags (3 shared layers) from distribution: wall s", ("sync", "wall_s"), digits=2),
        Row("  bytes downloaded MiB", ("sync", "bytes_downloaded"), 1 / MIB, digits=2),
        Row("  unique bytes MiB", ("sync", "unique_bytes"), 1 / MIB, digits=2),
        Row("  blob GETs (unique blobs: see JSON)", ("sync", "blob_gets"), digits=0),
        Row("  database statements", ("sync", "db_statements"), digits=0),
    ]  # fmt: skip


def _format(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(ours: float | None, other: float | None) -> str:
    if ours is None or other is None or other == 0 or math.isnan(ours) or math.isnan(other):
        return "—"
    return f"{ours / other:.2f}"


def markdown(report: dict[str, Any]) -> str:
    sizes = Sizes(**report["sizes"])
    peers = report["peers"]
    results = {name: peers.get(name, {}).get("results", {}) for name in PEER_NAMES}
    lines = [
        f"# Comparative benchmark ({report['mode']}, {report['started']})",
        "",
        f"Machine: {report['machine']['description']}",
        "",
        "| metric | ours | upstream | distribution | ours/upstream | ours/distribution |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows(sizes):
        values = {}
        for name in PEER_NAMES:
            value = _get(results[name], *row.path)
            values[name] = None if value is None else value * row.scale
        lines.append(
            f"| {row.label} | {_format(values['ours'], row.digits)} | "
            f"{_format(values['upstream'], row.digits)} | "
            f"{_format(values['distribution'], row.digits)} | "
            f"{_ratio(values['ours'], values['upstream'])} | "
            f"{_ratio(values['ours'], values['distribution'])} |"
        )
    physical = report.get("physical_limit", {})
    lines += [
        "",
        f"Unique bytes of the hierarchy: "
        f"{_format(_get(results['ours'], 'hierarchy_mount', 'unique_bytes') or _get(results['distribution'], 'hierarchy_mount', 'unique_bytes'), 0)}"
        " bytes (configs and layers; bytes received = sizes of the blobs whose upload completed,"
        " from each server's access log).",
        "",
        f"Physical limit ({_format(physical.get('size_bytes', 0) / MIB, 0)} MiB, same disk): "
        f"sha256 {_format(physical.get('sha256_mb_s'), 0)} MB/s, write+fsync "
        f"{_format(physical.get('write_fsync_mb_s'), 0)} MB/s, both in sequence "
        f"{_format(physical.get('combined_mb_s'), 0)} MB/s.",
    ]
    ours_push = _get(results["ours"], "blob_large", "push_mb_s")
    if ours_push and physical.get("combined_mb_s"):
        lines.append(
            f"Ours large-blob push is {physical['combined_mb_s'] / ours_push:.2f}x below the "
            f"sequential limit and {min(physical['sha256_mb_s'], physical['write_fsync_mb_s']) / ours_push:.2f}x "
            "below the slower of hashing and writing."
        )
    lines += ["", "Servers:"]
    for name in PEER_NAMES:
        peer = peers.get(name)
        if peer is None:
            continue
        note = f" ({'; '.join(peer['notes'])})" if peer.get("notes") else ""
        lines.append(
            f"- {name}: {peer.get('version', '?')}{note}; started in {peer.get('started_in_s', 0):.0f}s"
        )
    for name, reason in report.get("skipped", {}).items():
        lines.append(f"- {name}: skipped, {reason}")
    if report.get("upstream_install_s"):
        lines.append(f"- upstream installed by this run in {report['upstream_install_s']:.0f}s")
    errors = [
        f"- {name} {key}: {value['error']}"
        for name in PEER_NAMES
        for key, value in results[name].items()
        if isinstance(value, dict) and value.get("error")
    ]
    if errors:
        lines += ["", "Errors:", *errors]
    lines += ["", f"Total time: {report['total_s']:.0f}s", ""]
    return "\n".join(lines)  # fmt: skip


# Targets of issue 12, ours/distribution at most (p50s unless named); rows not named have none.
TARGETS = {
    ("mount", "floor", "p50_ms"): 2.0,
    ("hot", "head", "p50_ms"): 2.0,
    ("mount", "small", "p50_ms"): 2.0,
    ("mount", "large", "p50_ms"): 2.0,
    ("manifest_put", "p50_ms"): 3.0,
    ("hierarchy_mount", "wall_s"): 1.2,
    ("concurrent", "wall_s"): 1.5,
}
# Throughputs: ours/distribution at least.
TARGETS_AT_LEAST = {
    ("blob_large", "push_mb_s"): 1.0,
    ("blob_large", "pull_mb_s"): 1.5,
    ("blob_large", "server_pull_mb_s"): 1.5,
}


def chart(report: dict[str, Any], path: Path) -> None:
    """A PNG of ours/distribution for every row both have (log scale; targets as ticks)."""
    import matplotlib  # noqa: PLC0415 - only a full report needs it; the table never does

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    sizes = Sizes(**report["sizes"])
    results = {name: report["peers"].get(name, {}).get("results", {}) for name in PEER_NAMES}
    labels, ratios, targets = [], [], []
    for row in rows(sizes):
        ours = _get(results["ours"], *row.path)
        other = _get(results["distribution"], *row.path)
        if not ours or not other or math.isnan(ours) or math.isnan(other):
            continue
        labels.append(row.label.strip())
        ratios.append(ours / other)
        targets.append(TARGETS.get(row.path) or TARGETS_AT_LEAST.get(row.path))
    figure, axes = plt.subplots(figsize=(11, 0.38 * max(len(labels), 4) + 1.5))
    if labels:
        positions = list(range(len(labels)))[::-1]
        colours = []
        for row_ratio, target, label in zip(ratios, targets, labels, strict=True):
            higher_better = "MB/s" in label or "requests/s" in label
            good = row_ratio >= 1 if higher_better else row_ratio <= 1
            if target is not None:
                good = row_ratio >= target if higher_better else row_ratio <= target
            colours.append("tab:green" if good else "tab:red")
        axes.barh(positions, ratios, color=colours)
        for position, target in zip(positions, targets, strict=True):
            if target is not None:
                axes.plot([target, target], [position - 0.4, position + 0.4], color="black")
        axes.set_yticks(positions, labels, fontsize=8)
        axes.set_xscale("log")
        axes.axvline(1.0, color="grey", linestyle="--")
        for position, value in zip(positions, ratios, strict=True):
            axes.text(value, position, f" {value:.2f}", va="center", fontsize=7)
    axes.set_xlabel("ours / distribution (log scale; black tick: target)")
    axes.set_title(f"{report['mode']} {report['started']}: {report['machine']['description'][:110]}",
                   fontsize=8)  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- machine ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    except OSError:
        pass
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    disk = (
        subprocess.run(
            ["df", "-h", "--output=source,fstype,size", str(WORK_DIR)],
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1:]
    )
    load = os.getloadavg()
    description = (
        f"{os.cpu_count()} CPUs ({model}), {memory_kib / 1024 / 1024:.1f} GiB RAM, "
        f"disk {' '.join(disk[0].split()) if disk else '?'}, {platform.platform()}, "
        f"load at start {load[0]:.2f}"
    )
    return {"cpus": os.cpu_count(), "model": model, "memory_kib": memory_kib, "disk": disk,
            "load_at_start": load, "description": description}  # fmt: skip


# --- main -------------------------------------------------------------------------------------


def launch_peers(names: list[str]) -> tuple[dict[str, Peer], dict[str, str]]:
    launchers = {
        "ours": ours_peer.launch,
        "upstream": upstream_peer.launch,
        "distribution": distribution_peer.launch,
    }
    peers: dict[str, Peer] = {}
    failures: dict[str, str] = {}
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        futures = {name: pool.submit(launchers[name]) for name in names}
        for name, future in futures.items():
            try:
                peers[name] = future.result()
                log(f"{name} ready in {peers[name].started_in_s:.0f}s at {peers[name].url}")
            except Exception as error:  # noqa: BLE001
                failures[name] = f"{type(error).__name__}: {error}"[:3000]
                log(f"{name} did not start: {failures[name]}")
    return peers, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare ours, upstream and distribution.")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (tests use this)")
    parser.add_argument(
        "--peers",
        default=",".join(PEER_NAMES),
        help="comma-separated subset of " + ",".join(PEER_NAMES),
    )
    parser.add_argument(
        "--install-upstream",
        action="store_true",
        help="install upstream into benchmarks/.work/upstream-venv if missing",
    )
    parser.add_argument(
        "--no-install-upstream",
        action="store_true",
        help="never install upstream (skip it when missing)",
    )
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when any measurement failed (default with --smoke)",
    )
    arguments = parser.parse_args(argv)  # fmt: skip
    sizes = SMOKE if arguments.smoke else FULL
    strict = arguments.strict or arguments.smoke
    names = [name.strip() for name in arguments.peers.split(",") if name.strip()]
    unknown = set(names) - set(PEER_NAMES)
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}")
    began = time.monotonic()
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    report: dict[str, Any] = {
        "mode": "smoke" if arguments.smoke else "full",
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "sizes": sizes.__dict__,
        "machine": machine(),
        "peers": {},
        "skipped": {},
    }
    log(report["machine"]["description"])

    if "upstream" in names and not upstream_peer.installed():
        install = arguments.install_upstream or not (
            arguments.smoke or arguments.no_install_upstream
        )
        if install:
            log(
                f"installing upstream pulp-container {upstream_peer.VERSION} into {upstream_peer.VENV}"
            )
            report["upstream_install_s"] = upstream_peer.install()
            log(f"upstream installed in {report['upstream_install_s']:.0f}s")
        else:
            names.remove("upstream")
            report["skipped"]["upstream"] = "not installed (run with --install-upstream)"
            log("upstream is not installed: skipped (--install-upstream installs it)")
    if "distribution" in names and not distribution_peer.available():
        names.remove("distribution")
        report["skipped"]["distribution"] = "docker-registry not installed"
        log("docker-registry is not installed: distribution skipped")

    reset_homes()
    log("building images (cached in benchmarks/.work/images) and measuring the physical limit")
    for seed in HIERARCHY_SEEDS[: sizes.hierarchy_runs]:
        hierarchy_image(
            sizes.base_layer_size, sizes.base_layers, sizes.children, sizes.child_layer_size, seed
        )
    single_layer_image(sizes.large_blob)
    single_layer_image(sizes.small_blob)
    small_images(sizes.concurrent, sizes.concurrent_layer_size)
    report["physical_limit"] = physical_limit.measure(sizes.physical, WORK_DIR)

    log(f"starting {', '.join(names)}")
    peers, failures = launch_peers(names)
    report["skipped"].update({name: f"did not start: {error}" for name, error in failures.items()})
    sync_source = None
    try:
        if distribution_peer.available() and {"ours", "upstream"} & set(peers):
            log(f"starting the sync source: {sizes.sync_tags} tags in a docker-registry")
            sync_source = sync_mirror.start_source(
                WORK_DIR / "sync-source",
                sizes.sync_tags,
                3,
                sizes.sync_base_layer_size,
                sizes.sync_own_layer_size,
            )
        for name in names:
            peer = peers.get(name)
            if peer is None:
                continue
            report["peers"][name] = {
                "version": peer.version,
                "url": peer.url,
                "notes": peer.notes,
                "started_in_s": peer.started_in_s,
                "results": run_peer(peer, sizes, run_id, sync_source),
            }
        # Not in smoke runs: a third instance costs make test ~100 s; the S3 stage of make test
        # covers the path.
        if "ours" in report["peers"] and not arguments.smoke:
            guarded(
                report["peers"]["ours"]["results"],
                "blob_large_s3",
                lambda: object_storage_blob(sizes, run_id),
            )
    finally:
        log("stopping the servers")
        if sync_source is not None:
            sync_source.peer.stop()
        with concurrent.futures.ThreadPoolExecutor(max(1, len(peers))) as pool:
            list(pool.map(lambda peer: peer.stop(), peers.values()))
        shutil.rmtree(WORK_DIR / "homes", ignore_errors=True)
    report["total_s"] = time.monotonic() - began

    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    stem = arguments.output_dir / f"compare-{report['mode']}-{run_id}"
    table = markdown(report)
    chart(report, stem.with_suffix(".png"))
    shutil.copyfile(stem.with_suffix(".png"), arguments.output_dir / f"latest-{report['mode']}.png")
    for path, text in (
        (stem.with_suffix(".json"), json.dumps(report, indent=2, default=str)),
        (stem.with_suffix(".md"), table),
        (
            arguments.output_dir / f"latest-{report['mode']}.json",
            json.dumps(report, indent=2, default=str),
        ),
        (arguments.output_dir / f"latest-{report['mode']}.md", table),
    ):
        path.write_text(text)
    print(table)
    log(f"results: {stem}.json and .md ({report['total_s']:.0f}s)")
    failed = bool(failures) or any(
        isinstance(value, dict) and value.get("error")
        for peer in report["peers"].values()
        for value in peer["results"].values()
    )
    return 1 if strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
