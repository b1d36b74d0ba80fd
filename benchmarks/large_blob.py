"""Large blob: push one incompressible layer with skopeo, sample the API's memory, pull it back.

For one peer: ``skopeo copy oci:<layout>:latest docker://<peer>/<repo>:latest`` with a fresh
client cache, timed; meanwhile the resident memory (VmRSS) of every API process of the peer
(each gunicorn process of pulpcore-api, or the registry process) is sampled every 50 ms. Then
``skopeo copy docker://... dir:<tmp>`` pulls the image back, timed. Throughput is the layer's
size over the wall time of the whole copy (so it includes the manifest and config round trips,
negligible next to 512 MiB).

skopeo's pull is bound by skopeo itself (it checks the digest and writes the file): both servers
send faster than it takes. ``server_pull`` measures the server: the layer fetched with curl over
HTTP/2 (as skopeo negotiates it) to ``/dev/null``, the best of three, redirects followed.

Used by ``benchmarks/compare.py``; its ``measure`` is the function to call.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.peers import WORK_DIR, Peer, RssSampler
from benchmarks.peers.client import Client, pull
from benchmarks.peers.tools import oci, single_layer_image, skopeo_for
from harness.container_tools import open_to_everyone

MB = 1_000_000
MIB = 1 << 20


def measure(peer: Peer, size: int, repository: str, pull: bool = True) -> dict[str, Any]:
    layout, image = single_layer_image(size)
    layer_size = image["layer_sizes"][0]
    skopeo = skopeo_for(peer)
    offset = peer.log_offset()
    with RssSampler(peer.api_pids) as sampler:
        started = time.perf_counter()
        skopeo.copy(oci(layout, "latest"), peer.reference(repository))
        push_s = time.perf_counter() - started
    traffic_errors = sum(r.status >= 500 for r in peer.requests_since(offset))
    result: dict[str, Any] = {
        "layer_bytes": layer_size,
        "push_s": push_s,
        "push_mb_s": layer_size / push_s / MB,
        "api_baseline_rss_mib": sampler.baseline_kib / 1024,
        "api_peak_rss_mib": sampler.peak_kib / 1024,
        "api_peak_rss_total_mib": sampler.peak_total_kib / 1024,
        "api_processes": len(sampler.per_pid_peak),
        "server_errors": traffic_errors,
    }
    if pull:
        target = open_to_everyone(WORK_DIR / "pulls" / f"{peer.name}-{time.monotonic_ns()}")
        try:
            started = time.perf_counter()
            skopeo_for(peer).copy(peer.reference(repository), f"dir:{target}")
            pull_s = time.perf_counter() - started
            pulled = Path(target) / image["layer_digests"][0].split(":", 1)[1]
            if pulled.stat().st_size != layer_size:
                raise AssertionError(f"pulled {pulled.stat().st_size} bytes, pushed {layer_size}")
        finally:
            shutil.rmtree(target, ignore_errors=True)
        result.update({"pull_s": pull_s, "pull_mb_s": layer_size / pull_s / MB})
        result["server_pull_mb_s"] = server_pull(peer, repository, image["layer_digests"][0])
    return result


def server_pull(peer: Peer, repository: str, digest: str, tries: int = 3) -> float | None:
    """MB/s of ``GET /v2/<repository>/blobs/<digest>`` over HTTP/2 to /dev/null (curl)."""
    client = Client(peer)
    client.authorize([pull(repository)])
    headers = []
    if client.token:
        headers = ["-H", f"Authorization: Bearer {client.token}"]
    elif peer.credentials is not None:
        headers = ["-u", ":".join(peer.credentials)]
    speeds = []
    for _ in range(tries):
        answer = subprocess.run(
            ["curl", "-sSfk", "--http2", "-L", *headers, "-o", "/dev/null"]
            + ["-w", "%{speed_download}", client.url(f"/v2/{repository}/blobs/{digest}")],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        if answer.returncode != 0:  # a row left empty, not the whole measurement lost
            print(f"server_pull: curl failed: {answer.stderr.strip()}", flush=True)
            return None
        speeds.append(float(answer.stdout) / MB)
    return max(speeds)
