"""Which gunicorn worker model serves the API best (issue 12): our server started once per
model, each measured on what it decides: 32 clients on ``GET /v2/`` (p95 over the single-client
p50) and the hierarchy push with mount possible (compare.py's rows, the same code).

    .venv/bin/python benchmarks/api_workers.py            # sync 4, gthread 4x4, gthread 2x8
    .venv/bin/python benchmarks/api_workers.py --smoke

Models are ``PULP_API_WORKERS`` x ``PULP_API_THREADS`` (``scripts/run.sh``); free ports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import compare, hot_path  # noqa: E402
from benchmarks.peers import ours as ours_peer  # noqa: E402
from benchmarks.peers.client import pull  # noqa: E402
from benchmarks.peers.tools import hierarchy_image, reset_homes  # noqa: E402

MODELS = ((4, 4), (2, 8), (4, 1))


def measure(workers: int, threads: int, sizes: compare.Sizes) -> dict:
    peer = ours_peer.launch(
        settings={"PULP_API_WORKERS": str(workers), "PULP_API_THREADS": str(threads)}
    )
    try:
        prefix = f"workers-{workers}x{threads}-{int(time.time())}"
        single = hot_path.latency(peer, [pull("any/name")], "GET", "/v2/", sizes.hot_requests)
        loaded = hot_path.concurrency(
            peer, [pull("any/name")], "GET", "/v2/", sizes.clients, sizes.client_seconds
        )
        hierarchy = compare.hierarchy_push(peer, f"{prefix}/hier", sizes, mount_possible=True)
    finally:
        peer.stop()
    return {
        "model": f"{workers} workers x {threads} threads",
        "single_p50_ms": single["p50_ms"],
        "load_p95_ms": loaded["p95_ms"],
        "p95_over_single": loaded["p95_ms"] / single["p50_ms"],
        "requests_per_s": loaded.get("requests_per_s"),
        "errors": loaded.get("errors"),
        "hierarchy_s": hierarchy.get("wall_s"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    arguments = parser.parse_args()
    sizes = compare.SMOKE if arguments.smoke else compare.FULL
    reset_homes()
    hierarchy_image(
        sizes.base_layer_size, sizes.base_layers, sizes.children, sizes.child_layer_size
    )
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = []
    for workers, threads in MODELS:
        results.append(measure(workers, threads, sizes))
        print(json.dumps(results[-1]), flush=True)
    print(
        "| model | GET /v2/ p50 ms | 32 clients p95 ms | p95/p50 | req/s | errors | hierarchy s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in results:
        print(
            f"| {row['model']} | {row['single_p50_ms']:.2f} | {row['load_p95_ms']:.1f} | "
            f"{row['p95_over_single']:.1f} | {row['requests_per_s'] or 0:.0f} | {row['errors']} | "
            f"{row['hierarchy_s'] or 0:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
