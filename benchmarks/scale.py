"""Does a push cost more with a million blobs? Hot requests, big instance beside empty (issue 14).

    .venv/bin/python benchmarks/scale.py --big https://127.0.0.1:25427 --empty https://127.0.0.1:25457
    .venv/bin/python benchmarks/scale.py --big URL --empty URL --smoke   # 3 rounds (CI)

Fill the big instance first with ``benchmarks/scale_data.py`` (1,000,000 blobs, 100,000
manifests, 10,000 repositories); the empty one is a fresh instance of the same code. Both must run
(``scripts/run.sh`` with their own ``PULP_DATA_DIR`` and ports) and share the admin login
(``--admin-user``/``--admin-password``, or ``PULP_ADMIN_USER``/``PULP_ADMIN_PASSWORD``, default
``admin``/``password``).

On each instance, as admin through the REST API, a new user ``scale-<random>`` is made; as that
user (who owns the namespace of their name), through the registry: ``<user>/source`` gets a
committed image of 2 x ``rounds`` small layers; ``<user>/target`` gets a config and a layer. Then,
``rounds`` times, each operation once on each instance, in a random order per round (so that
the drift of a shared machine hits both alike), one keep-alive session and one token per instance
(renewed, untimed, every minute):

- ``HEAD blob``: ``HEAD /v2/<target>/blobs/<layer>`` of a layer the target holds (200);
- ``HEAD absent blob``: of a digest nobody holds, by a pusher (404, after asking whether the
  blob is readable elsewhere: link-on-HEAD);
- ``HEAD links from source``: of a committed layer of the source that the target lacks, a
  different one each round: the pusher may read it, so the HEAD links it into the target (200;
  what a fresh CI runner's push costs per layer, issue 8);
- ``mount``: ``POST /v2/<target>/blobs/uploads/?mount=<d>&from=<source>``, a different committed
  layer of the source each round (201);
- ``mount absent blob``: the same with a digest nobody holds (202; the upload it opens is
  cancelled untimed);
- ``manifest PUT``: ``PUT /v2/<target>/manifests/t<i>`` of a new manifest (config and layer held,
  a different annotation each round), one repository version each (201);
- ``token``: ``GET /token/?service=&scope=repository:<target>:pull,push`` with Basic credentials
  (200).

``--push-rate SECONDS``: then, on each instance, ``--pushers`` (8) client processes push small
images (a token; ``HEAD``, ``POST``, ``PATCH``, ``PUT`` of a 4 KiB layer and of a config; the
manifest ``PUT`` with a new tag), each into a repository of its own, for that long: pushes per
hour, and failures.

Prints ``load average at start: ...``, the sizes of both instances (their REST counts), and a
Markdown table: p50 and p95 per operation and instance, and the ratio of the p50s (big over
empty; the target of issue 14 is at most 1.5). JSON with every sample goes to
``benchmarks/results/scale-<time>.json`` (``--results-dir``). ``--check`` exits 1 when a ratio
exceeds ``--limit`` (1.5).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY_ROOT))
from benchmarks.peers import Peer  # noqa: E402
from benchmarks.peers.client import (  # noqa: E402
    Client,
    digest_of,
    image_config,
    manifest,
    percentile,
    pull,
    pull_push,
)

API = "/pulp/api/v3"
OPERATIONS = (
    "HEAD blob",
    "HEAD absent blob",
    "HEAD links from source",
    "mount",
    "mount absent blob",
    "manifest PUT",
    "token",
)
TOKEN_MAX_AGE_S = 60.0
LIMIT = 1.5


@dataclass
class Instance:
    """One running Pulp, and what the benchmark set up in it."""

    label: str
    url: str
    admin: tuple[str, str]
    user: tuple[str, str] = ("", "")
    client: Client | None = None
    token_taken: float = 0.0
    source_layers: list[str] = field(default_factory=list)
    target_blobs: tuple[tuple[str, int], tuple[str, int]] | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    sizes: dict[str, int | None] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return f"{self.user[0]}/source"

    @property
    def target(self) -> str:
        return f"{self.user[0]}/target"

    def rest(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = False
        session.auth = self.admin
        return session

    def count(self, endpoint: str) -> int | None:
        response = self.rest().get(f"{self.url}{API}/{endpoint}", params={"limit": 1}, timeout=600)
        return int(response.json()["count"]) if response.ok else None

    def authorize(self) -> Client:
        assert self.client is not None
        if time.monotonic() - self.token_taken > TOKEN_MAX_AGE_S:
            self.client.authorize([pull_push(self.target), pull(self.source)])
            self.token_taken = time.monotonic()
        return self.client


def set_up(instance: Instance, rounds: int) -> None:
    """A user of its own, a committed source image of 2 x ``rounds`` layers (one set to mount, one
    to link on HEAD), a target holding a config and a layer; all through the REST API and the
    registry, as a user would."""
    instance.sizes = {
        "blobs": instance.count("content/container/blobs/"),
        "manifests": instance.count("content/container/manifests/"),
        "repositories": instance.count("repositories/container/container/"),
    }
    name, password = f"scale-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    created = instance.rest().post(
        f"{instance.url}{API}/users/", json={"username": name, "password": password}, timeout=60
    )
    created.raise_for_status()
    instance.user = (name, password)
    peer = Peer(
        name=instance.label,
        url=instance.url,
        credentials=instance.user,
        access_log=Path(os.devnull),
        log_format="gunicorn",
        api_pids=list,
        stopper=lambda: None,
    )
    client = Client(peer)
    client.authorize([pull_push(instance.source)])
    layers = [client.upload_monolithic(instance.source, os.urandom(512)) for _ in range(2 * rounds)]
    config = image_config(name)
    config_digest = client.upload_monolithic(instance.source, config)
    body = manifest((config_digest, len(config)), [(digest, 512) for digest in layers])
    client.expect(client.put_manifest(instance.source, "v1", body), 201)
    instance.source_layers = layers
    client.authorize([pull_push(instance.target)])
    layer = os.urandom(1024)
    target_config = image_config(name + "-target")
    instance.target_blobs = (
        (client.upload_monolithic(instance.target, target_config), len(target_config)),
        (client.upload_monolithic(instance.target, layer), len(layer)),
    )
    instance.client = client
    instance.token_taken = 0.0


def measure(instance: Instance, operation: str, round_number: int) -> float:
    """One timed request of ``operation``; its answer is checked (a wrong status is an error)."""
    client = instance.authorize()
    assert instance.target_blobs is not None
    config, layer = instance.target_blobs
    absent = digest_of(os.urandom(32))
    if operation == "HEAD blob":
        elapsed, response = client.timed("HEAD", f"/v2/{instance.target}/blobs/{layer[0]}")
        client.expect(response, 200)
    elif operation == "HEAD absent blob":
        elapsed, response = client.timed("HEAD", f"/v2/{instance.target}/blobs/{absent}")
        client.expect(response, 404)
    elif operation == "HEAD links from source":
        linked = instance.source_layers[len(instance.source_layers) // 2 + round_number]
        elapsed, response = client.timed("HEAD", f"/v2/{instance.target}/blobs/{linked}")
        client.expect(response, 200)
    elif operation in ("mount", "mount absent blob"):
        digest = instance.source_layers[round_number] if operation == "mount" else absent
        started = time.perf_counter()
        response = client.mount(instance.target, digest, instance.source)
        elapsed = time.perf_counter() - started
        client.expect(response, 201 if operation == "mount" else 202)
        if response.status_code == 202:
            client.call("DELETE", response.headers["Location"])
    elif operation == "manifest PUT":
        body = manifest(config, [layer], annotation=f"{instance.user[0]}-{round_number}")
        started = time.perf_counter()
        response = client.put_manifest(instance.target, f"t{round_number}", body)
        elapsed = time.perf_counter() - started
        client.expect(response, 201)
    elif operation == "token":
        challenge = client.challenge()
        assert challenge is not None
        params = [
            ("service", challenge.parameters.get("service", "")),
            ("scope", pull_push(instance.target)),
        ]
        started = time.perf_counter()
        response = client.session.get(
            challenge.parameters["realm"], params=params, auth=instance.user, timeout=60
        )
        elapsed = time.perf_counter() - started
        client.expect(response, 200)
    else:
        raise ValueError(operation)
    return elapsed


def _pushes(arguments: tuple[str, str, tuple[str, str], int, float]) -> tuple[int, int]:
    """Small pushes one after the other for ``seconds``, as a client sends them: a token, then for
    a 4 KiB layer and a config, ``HEAD`` (404) and ``POST``, ``PATCH``, ``PUT ?digest=``; then the
    manifest ``PUT`` with a new tag, into one repository of this client. (pushes, failures)"""
    label, url, user, number, seconds = arguments
    peer = Peer(label, url, user, Path(os.devnull), "gunicorn", list, lambda: None)
    name = f"{user[0]}/rate{number}"
    pushes = failures = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            client = Client(peer, timeout=60)
            client.authorize([pull_push(name)])
            blobs = []
            for data in (os.urandom(4096), image_config(f"{name}-{pushes}")):
                client.expect(client.call("HEAD", f"/v2/{name}/blobs/{digest_of(data)}"), 404)
                blobs.append((client.upload(name, data), len(data)))
            body = manifest(blobs[1], [blobs[0]])
            client.expect(client.put_manifest(name, f"p{pushes}", body), 201)
            pushes += 1
        except Exception:  # noqa: BLE001 - a failed push is counted, not fatal
            failures += 1
    return pushes, failures


def push_rate(instance: Instance, clients: int, seconds: float) -> dict[str, Any]:
    """Pushes per hour that ``clients`` concurrent pushers get from the instance."""
    context = multiprocessing.get_context("fork")
    started = time.monotonic()
    with context.Pool(clients) as pool:
        arguments = [
            (instance.label, instance.url, instance.user, n, seconds) for n in range(clients)
        ]
        results = pool.map(_pushes, arguments)
    elapsed = time.monotonic() - started
    pushes = sum(result[0] for result in results)
    return {
        "clients": clients,
        "seconds": elapsed,
        "pushes": pushes,
        "failures": sum(result[1] for result in results),
        "pushes_per_hour": pushes / elapsed * 3600,
    }


def run(instances: list[Instance], rounds: int, seed: int | None = None) -> None:
    order = random.Random(seed)
    for round_number in range(rounds):
        cells = [(instance, operation) for instance in instances for operation in OPERATIONS]
        order.shuffle(cells)
        for instance, operation in cells:
            elapsed = measure(instance, operation, round_number)
            instance.samples.setdefault(operation, []).append(elapsed)


def summary(instances: list[Instance]) -> list[dict[str, Any]]:
    big, empty = instances
    rows = []
    for operation in OPERATIONS:
        row: dict[str, Any] = {"operation": operation}
        for instance in (empty, big):
            samples = instance.samples.get(operation, [])
            row[f"{instance.label}_p50_ms"] = percentile(samples, 0.50) * 1000
            row[f"{instance.label}_p95_ms"] = percentile(samples, 0.95) * 1000
        row["p50_ratio"] = row["big_p50_ms"] / row["empty_p50_ms"]
        rows.append(row)
    return rows


def table(instances: list[Instance], rows: list[dict[str, Any]], rounds: int) -> str:
    big, empty = instances

    def sizes(instance: Instance) -> str:
        return ", ".join(
            f"{value:,} {key}" for key, value in instance.sizes.items() if value is not None
        )

    lines = [
        f"- empty: {empty.url} ({sizes(empty) or 'nothing else'})",
        f"- big: {big.url} ({sizes(big)})",
        f"- {rounds} rounds, each operation once per instance per round, in random order",
        "",
        "| operation | empty p50 ms | empty p95 ms | big p50 ms | big p95 ms | p50 big/empty |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['operation']} | {row['empty_p50_ms']:.1f} | {row['empty_p95_ms']:.1f} "
            f"| {row['big_p50_ms']:.1f} | {row['big_p95_ms']:.1f} | {row['p50_ratio']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big", required=True, help="URL of the instance filled by scale_data")
    parser.add_argument("--empty", required=True, help="URL of an empty instance")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="3 rounds")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--admin-user", default=os.environ.get("PULP_ADMIN_USER", "admin"))
    parser.add_argument(
        "--admin-password", default=os.environ.get("PULP_ADMIN_PASSWORD", "password")
    )
    parser.add_argument("--results-dir", type=Path, default=REPOSITORY_ROOT / "benchmarks/results")
    parser.add_argument("--check", action="store_true", help="exit 1 when a ratio > --limit")
    parser.add_argument("--limit", type=float, default=LIMIT)
    parser.add_argument(
        "--push-rate",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="then, on each instance, small pushes by --pushers clients",
    )
    parser.add_argument("--pushers", type=int, default=8)
    args = parser.parse_args(argv)
    rounds = 3 if args.smoke else args.rounds

    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average at start: {load}", flush=True)
    admin = (args.admin_user, args.admin_password)
    instances = [Instance("big", args.big.rstrip("/"), admin),
                 Instance("empty", args.empty.rstrip("/"), admin)]  # fmt: skip
    for instance in instances:
        set_up(instance, rounds)
    started = time.monotonic()
    run(instances, rounds, args.seed)
    rows = summary(instances)
    print(table(instances, rows, rounds))
    print(f"\nmeasured in {time.monotonic() - started:.0f}s", flush=True)
    rates = {}
    if args.push_rate > 0:
        for instance in instances:
            rates[instance.label] = rate = push_rate(instance, args.pushers, args.push_rate)
            print(f"push rate, {instance.label}: {rate['pushes_per_hour']:,.0f} pushes/hour "
                  f"({rate['pushes']} pushes, {rate['failures']} failed, {rate['clients']} "
                  f"clients, {rate['seconds']:.0f}s)", flush=True)  # fmt: skip

    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = args.results_dir / f"scale-{stamp}.json"
    report = {
        "load_average_at_start": load,
        "rounds": rounds,
        "smoke": args.smoke,
        "instances": {
            i.label: {"url": i.url, "sizes": i.sizes, "samples_ms": {
                op: [s * 1000 for s in samples] for op, samples in i.samples.items()}}
            for i in instances
        },
        "rows": rows,
        "push_rate": rates,
    }  # fmt: skip
    output.write_text(json.dumps(report, indent=2))
    print(f"results: {output}")
    over = [row["operation"] for row in rows if row["p50_ratio"] > args.limit]
    if over:
        print(f"p50 over {args.limit}x the empty instance: {', '.join(over)}")
    return 1 if args.check and over else 0


if __name__ == "__main__":
    sys.exit(main())
