"""Manifest commit: latency of a manifest PUT, and 8 concurrent pushes to 8 repositories.

``put_latency``: into one repository that already holds a config and a layer, ``count``
distinct manifests (an annotation differs) are PUT one after the other with one token, each
timed from the request to the ``201``; p50 and p95 in milliseconds.

``concurrent_pushes``: ``count`` small images (one unique layer each) pushed at the same time by
``count`` skopeo processes (fresh client caches), each to its own repository; wall time from the
first start to the last exit, and what went wrong: failed pushes, 429 answers and 5xx answers
(read from the peer's access log).

Used by ``benchmarks/compare.py``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from benchmarks.peers import Peer, summarize
from benchmarks.peers.client import Client, image_config, manifest, percentile, pull_push
from benchmarks.peers.tools import oci, skopeo_for, small_images


def put_latency(peer: Peer, repository: str, count: int) -> dict[str, Any]:
    client = Client(peer)
    client.authorize([pull_push(repository)])
    config = image_config(repository)
    layer = os.urandom(4096)
    config_digest = client.upload(repository, config)
    layer_digest = client.upload(repository, layer)
    latencies: list[float] = []
    failures: list[str] = []
    for index in range(count):
        body = manifest((config_digest, len(config)), [(layer_digest, len(layer))], str(index))
        elapsed, response = client.timed(
            "PUT",
            f"/v2/{repository}/manifests/t{index}",
            data=body,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        if response.status_code != 201:
            failures.append(f"{response.status_code}: {response.text[:200]}")
        latencies.append(elapsed)
    return {
        "count": count,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
    }


def concurrent_pushes(peer: Peer, prefix: str, count: int, layer_size: int) -> dict[str, Any]:
    layout, images = small_images(count, layer_size)
    offset = peer.log_offset()
    started = time.perf_counter()
    processes = [
        skopeo_for(peer).start_copy(oci(layout, f"c{i}"), peer.reference(f"{prefix}/r{i}"))
        for i in range(count)
    ]
    failed: list[str] = []
    for process in processes:
        _, stderr = process.communicate(timeout=900)
        if process.returncode != 0:
            failed.append(stderr.decode(errors="replace")[-300:])
    wall_s = time.perf_counter() - started
    traffic = summarize(peer.requests_since(offset), prefix)
    return {
        "count": count,
        "wall_s": wall_s,
        "failed_pushes": len(failed),
        "first_failure": failed[0] if failed else None,
        "status_429": traffic.status_429,
        "status_5xx": traffic.errors,
        "problems": len(failed) + traffic.status_429 + traffic.errors,
    }
