"""Benchmark: pushing an image hierarchy, with and without cross-repository mount, and the
latency of one mount at 10 and at 1,000 repositories (issues 4 and 8).

    .venv/bin/python benchmarks/push_hierarchy.py            # the full run (a few minutes)
    .venv/bin/python benchmarks/push_hierarchy.py --smoke    # tiny sizes, under a minute

Starts its own Pulp (``scripts/run.sh``, the code path of the end-to-end fixture) in a fresh
data folder on free ports, plus a second API process over the same database with
``CONTAINER_LINK_BLOBS_ON_HEAD`` off, and stops both at the end. Prints Markdown tables and
writes them as JSON to ``benchmarks/results/``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY_ROOT))

from harness import server  # noqa: E402
from harness.container_tools import (  # noqa: E402
    UNPRIVILEGED_USER,
    Skopeo,
    ensure_unprivileged_user,
    open_to_everyone,
)
from harness.oci_images import (  # noqa: E402
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_MANIFEST,
    HierarchyInfo,
    Layer,
    build_hierarchy,
    canonical_json,
)
from harness.pulp_api import blob_transfers  # noqa: E402
from harness.registry_http import (  # noqa: E402
    RegistryHTTP,
    RunningRegistry,
    ca_bundle,
    repository_scope,
    session_factory,
)

KiB = 1024
MiB = 1024 * KiB
ADMIN = ("admin", os.environ.get("PULP_ADMIN_PASSWORD", "password"))


@dataclass(frozen=True)
class Sizes:
    base_layers: int
    base_layer_size: int
    children: int
    child_layer_size: int
    mounts: int
    repository_counts: tuple[int, ...]


FULL = Sizes(3, 16 * MiB, 10, 1 * MiB, 200, (10, 1000))
SMOKE = Sizes(3, 64 * KiB, 2, 64 * KiB, 20, (3, 5))


@dataclass
class PushResult:
    case: str
    client_cache: str
    api: str
    base_seconds: float
    children_seconds: float
    bytes_received: int
    unique_bytes: int
    uploaded: int
    mounted: int
    linked_on_head: int
    fallback: int


@dataclass
class LatencyResult:
    repositories: int
    mounts: int
    p50_ms: float
    p95_ms: float
    mean_ms: float


# --- the server ---------------------------------------------------------------------------------


class Servers:
    """Our own Pulp (run.sh) and a strict API process over the same database."""

    def __init__(self, data_dir: Path, log_dir: Path) -> None:
        self.environment = {
            **os.environ,
            "PULP_DATA_DIR": str(data_dir),
            "PULP_API_PORT": str(server.free_port()),
            "PULP_CONTENT_PORT": str(server.free_port()),
            "PULP_DB_PORT": str(server.free_port()),
        }
        for inherited in ("PULP_SETTINGS", "PULP_CA_CERT", "PULP_E2E_CA_CERT"):
            self.environment.pop(inherited, None)
        self.log_dir = log_dir
        self.processes: list = []

    def start(self) -> tuple[RunningRegistry, RunningRegistry]:
        main_url = f"https://127.0.0.1:{self.environment['PULP_API_PORT']}"
        self.processes.append(
            server.start_server(main_url, self.log_dir / "run.log", self.environment)
        )
        strict_port = server.free_port()
        self.processes.append(
            server.start_api_process(
                strict_port,
                self.log_dir / "strict-api.log",
                {"PULP_CONTAINER_LINK_BLOBS_ON_HEAD": "false"},
                self.environment,
            )
        )
        ca = server.ca_cert(self.environment)
        strict_url = f"https://127.0.0.1:{strict_port}"
        return self.registry_at(main_url, ca), self.registry_at(strict_url, ca)

    @staticmethod
    def registry_at(url: str, ca: Path) -> RunningRegistry:
        return RunningRegistry(
            url=url,
            host=urlsplit(url).netloc,
            admin=ADMIN,
            ca_cert=ca,
            session=session_factory(ca_bundle(ca), ADMIN),
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            server.stop_server(process)


# --- hierarchy pushes ---------------------------------------------------------------------------


def _skopeo(work: Path, label: str) -> Skopeo:
    """skopeo with its own blob-info cache (a HOME of its own, as the unprivileged user)."""
    home = open_to_everyone(work / f"home-{label}")
    if ensure_unprivileged_user() is None:
        return Skopeo(credentials=ADMIN, timeout=1800)
    shutil.chown(home, user=UNPRIVILEGED_USER)
    return Skopeo(credentials=ADMIN, user=UNPRIVILEGED_USER, home=home, timeout=1800)


def _unique_bytes(hierarchy: HierarchyInfo) -> int:
    sizes: dict[str, int] = {}
    for image in (hierarchy.base, *hierarchy.children):
        sizes[image.config_digest] = image.config_size
        sizes.update(zip(image.layer_digests, image.layer_sizes, strict=True))
    return sum(sizes.values())


def push_hierarchy(
    case: str,
    registry: RunningRegistry,
    records_from: RunningRegistry,
    sizes: Sizes,
    work: Path,
    one_cache: bool,
    api: str,
) -> PushResult:
    seed = secrets.randbelow(1 << 40) * 1000  # new bytes: nothing to find from earlier cases
    layout = open_to_everyone(work / f"layout-{case}")
    hierarchy = build_hierarchy(
        layout,
        [Layer(seed + i, sizes.base_layer_size, True) for i in range(sizes.base_layers)],
        sizes.children,
        sizes.child_layer_size,
        child_seed=seed + 100,
        compressed=True,
    )
    prefix = f"bench/{case}-{secrets.token_hex(3)}"
    shared = _skopeo(work, f"{case}-base")
    started = time.monotonic()
    shared.copy(f"oci:{layout}:base", registry.reference(f"{prefix}/base", "v1"))
    base_seconds = time.monotonic() - started
    started = time.monotonic()
    for index in range(sizes.children):
        client = shared if one_cache else _skopeo(work, f"{case}-child-{index}")
        client.copy(
            f"oci:{layout}:child-{index}", registry.reference(f"{prefix}/child-{index + 1}", "v1")
        )
    children_seconds = time.monotonic() - started
    records = blob_transfers(records_from, f"{prefix}/")
    shutil.rmtree(layout, ignore_errors=True)
    return PushResult(
        case=case,
        client_cache="one for the hierarchy" if one_cache else "fresh per image",
        api=api,
        base_seconds=round(base_seconds, 2),
        children_seconds=round(children_seconds, 2),
        bytes_received=records.bytes_received(),
        unique_bytes=_unique_bytes(hierarchy),
        uploaded=records.count("uploaded"),
        mounted=records.count("mounted"),
        linked_on_head=records.count("linked-on-head"),
        fallback=records.count("fallback"),
    )


# --- mount latency ------------------------------------------------------------------------------


def _http(registry: RunningRegistry) -> RegistryHTTP:
    return RegistryHTTP(registry.url, ADMIN, verify=registry.verify)


def _fill_repository(registry: RunningRegistry, run: str, index: int) -> None:
    """One more repository holding a tiny image of its own (not the blobs that are mounted)."""
    http = _http(registry)
    name = f"bench/fill-{run}-{index}"
    layer = f"fill layer {run} {index}".encode()
    config = canonical_json({"architecture": "amd64", "os": "linux", "fill": index})
    layer_digest = http.push_blob(name, layer)
    config_digest = http.push_blob(name, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": {"mediaType": MEDIA_TYPE_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": len(layer),
            }
        ],
    }
    response = http.request(
        "PUT",
        f"/v2/{name}/manifests/v1",
        scope=repository_scope(name),
        headers={"Content-Type": MEDIA_TYPE_MANIFEST},
        data=canonical_json(manifest),
    )
    if response.status_code != 201:
        raise RuntimeError(f"manifest to {name}: {response.status_code} {response.text}")


def _repository_count(registry: RunningRegistry) -> int:
    response = registry.session().get(
        f"{registry.url}/pulp/api/v3/repositories/container/container/",
        params={"limit": 1},
        timeout=60,
    )
    response.raise_for_status()
    return int(response.json()["count"])


def mount_latency(
    registry: RunningRegistry, repositories: int, mounts: int, run: str, created: int
) -> tuple[LatencyResult, int]:
    """p50/p95 of ``mounts`` mounts (each a different blob, from a ``from`` source holding it
    pending) into one target, with ``repositories`` repositories in the system."""
    # The source and the target are two of the repositories counted.
    missing = max(repositories - _repository_count(registry) - 2, 0)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda i: _fill_repository(registry, run, i), range(created, created + missing)
            )
        )
    created += missing
    http = _http(registry)
    source = f"bench/mount-source-{run}-{repositories}"
    target = f"bench/mount-target-{run}-{repositories}"
    blobs = [
        http.push_blob(source, f"blob to mount {run} {repositories} {i}".encode())
        for i in range(mounts + 1)
    ]
    scope = " ".join([repository_scope(target), repository_scope(source, "pull")])
    timings = []
    for index, digest in enumerate(blobs):
        started = time.perf_counter()
        response = http.request(
            "POST",
            f"/v2/{target}/blobs/uploads/?mount={digest}&from={source}",
            scope=scope,
            headers={"Content-Length": "0"},
            data=b"",
        )
        elapsed = time.perf_counter() - started
        if response.status_code != 201:
            raise RuntimeError(f"mount {digest}: {response.status_code} {response.text}")
        if index > 0:  # the first one fetched the token (and created the target)
            timings.append(elapsed * 1000)
    timings.sort()
    in_system = _repository_count(registry)
    result = LatencyResult(
        repositories=in_system,
        mounts=len(timings),
        p50_ms=round(statistics.median(timings), 2),
        p95_ms=round(timings[min(len(timings) - 1, int(0.95 * len(timings)))], 2),
        mean_ms=round(statistics.fmean(timings), 2),
    )
    return result, created


# --- report -------------------------------------------------------------------------------------


def _mib(value: int) -> str:
    return f"{value / MiB:.2f}"


def render(sizes: Sizes, pushes: list[PushResult], latencies: list[LatencyResult]) -> str:
    lines = [
        f"Hierarchy: base of {sizes.base_layers} x {_mib(sizes.base_layer_size)} MiB layers, "
        f"{sizes.children} children each adding one {_mib(sizes.child_layer_size)} MiB layer, "
        "each image to its own repository, pushed with skopeo.",
        "",
        "| case | client cache | API process | base push s | children push s | total s "
        "| received MiB | unique MiB | uploaded | mounted | linked-on-head | fallback |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for push in pushes:
        lines.append(
            f"| {push.case} | {push.client_cache} | {push.api} | {push.base_seconds:.2f} "
            f"| {push.children_seconds:.2f} | {push.base_seconds + push.children_seconds:.2f} "
            f"| {_mib(push.bytes_received)} | {_mib(push.unique_bytes)} | {push.uploaded} "
            f"| {push.mounted} | {push.linked_on_head} | {push.fallback} |"
        )
    lines += [
        "",
        "Mount latency: POST ?mount=<digest>&from=<source>, one token and one keep-alive "
        "connection, each mount a different blob pending in the source; the other "
        "repositories each hold a tiny image of their own (not the mounted blobs).",
        "",
        "| repositories in the system | mounts | p50 ms | p95 ms | mean ms |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for latency in latencies:
        lines.append(
            f"| {latency.repositories} | {latency.mounts} | {latency.p50_ms:.2f} "
            f"| {latency.p95_ms:.2f} | {latency.mean_ms:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (under a minute)")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=REPOSITORY_ROOT / "benchmarks" / "results",
        help="where the JSON goes (default: benchmarks/results/)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary data folder (for its logs)"
    )
    parser.add_argument(
        "--registry",
        nargs=2,
        metavar=("URL", "STRICT_URL"),
        help="use running servers instead of starting one: the registry (link-on-HEAD on) and an "
        "API process over the same database with link-on-HEAD off (the smoke test passes its own)",
    )
    parser.add_argument("--ca-cert", type=Path, help="CA of the --registry servers")
    arguments = parser.parse_args(argv)
    if arguments.registry and not arguments.ca_cert:
        parser.error("--registry needs --ca-cert")
    sizes = SMOKE if arguments.smoke else FULL

    work = Path(tempfile.mkdtemp(prefix="pulp-bench-"))
    work.chmod(0o755)  # the embedded PostgreSQL and the skopeo user must reach into it
    servers = Servers(work / "data", work)
    started = time.monotonic()
    try:
        if arguments.registry:
            main_api, strict_api = (
                Servers.registry_at(url.rstrip("/"), arguments.ca_cert)
                for url in arguments.registry
            )
        else:
            main_api, strict_api = servers.start()
        print(f"server ready in {time.monotonic() - started:.1f}s ({work})", file=sys.stderr)
        run = secrets.token_hex(3)
        latencies = []
        created = 0
        for count in sizes.repository_counts:
            result, created = mount_latency(main_api, count, sizes.mounts, run, created)
            latencies.append(result)
            print(f"mount latency at {result.repositories} repositories: {result}", file=sys.stderr)
        pushes = []
        cases = [
            ("a-mount", strict_api, True, "link-on-head off"),
            ("b-no-mount", strict_api, False, "link-on-head off"),
            ("c-link-on-head", main_api, False, "link-on-head on"),
        ]
        for case, registry, one_cache, api in cases:
            result = push_hierarchy(case, registry, main_api, sizes, work, one_cache, api)
            pushes.append(result)
            print(f"{case}: {result}", file=sys.stderr)
    finally:
        servers.stop()
        if not arguments.keep:
            shutil.rmtree(work, ignore_errors=True)

    table = render(sizes, pushes, latencies)
    print(table)
    arguments.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = (
        arguments.results_dir / f"push_hierarchy-{'smoke-' if arguments.smoke else ''}{stamp}.json"
    )
    output.write_text(
        json.dumps(
            {
                "smoke": arguments.smoke,
                "sizes": asdict(sizes),
                "pushes": [asdict(push) for push in pushes],
                "mount_latency": [asdict(latency) for latency in latencies],
                "seconds": round(time.monotonic() - started, 1),
            },
            indent=2,
        )
    )
    print(f"\nwritten: {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
