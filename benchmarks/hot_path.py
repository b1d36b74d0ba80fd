"""The small requests a push is made of, one client and many, and idle connections (issue 12).

- ``head_latency``: p50/p95 of ``HEAD /v2/<name>/blobs/<digest>`` of a blob the repository holds
  (one token, one keep-alive session).
- ``token_latency``: p50/p95 of a repeated token request (``GET <realm>?service=&scope=`` with
  Basic credentials, one keep-alive session): what a client pays per push and per mount
  candidate. A registry without a token server (distribution behind htpasswd) has no row.
- ``concurrency``: ``clients`` processes, each with its own keep-alive session, send the same
  request for ``seconds`` seconds; p50/p95 and errors. Processes, not threads: a client held by
  the GIL would measure itself.
- ``idle_connections``: a small push (a 4 KiB layer, a config and a manifest PUT, a token of its
  own) timed alone, then again while ``idle`` TCP connections to the registry's port are held
  open without sending a byte. ``ok`` when the push still succeeds and takes at most
  ``IDLE_SLOWDOWN_LIMIT`` times as long (plus ``IDLE_SLACK_S``: on a small, noisy machine a
  single push varies by tens of milliseconds).

Used by ``benchmarks/compare.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from benchmarks.peers import Peer
from benchmarks.peers.client import (
    Client,
    image_config,
    manifest,
    percentile,
    pull,
    pull_push,
)

IDLE_SLOWDOWN_LIMIT = 2.0
IDLE_SLACK_S = 0.25
IDLE_PUSH_TIMEOUT_S = 30.0


def _summary(latencies: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "count": len(latencies),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        **extra,
    }


def head_latency(peer: Peer, name: str, digest: str, count: int = 100) -> dict[str, Any]:
    return latency(peer, [pull(name)], "HEAD", f"/v2/{name}/blobs/{digest}", count)


def latency(
    peer: Peer, scopes: list[str], method: str, location: str, count: int = 100
) -> dict[str, Any]:
    """One client, one token, one keep-alive session: ``count`` requests one after the other."""
    client = Client(peer)
    client.authorize(scopes)
    latencies = []
    statuses: dict[str, int] = {}
    for _ in range(count):
        elapsed, response = client.timed(method, location)
        latencies.append(elapsed)
        statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
    return _summary(latencies, statuses=statuses)


def token_latency(peer: Peer, name: str, count: int = 100) -> dict[str, Any] | None:
    """None when the peer has no token server."""
    client = Client(peer)
    challenge = client.challenge()
    if challenge is None or challenge.scheme != "bearer":
        return None
    params = [("service", challenge.parameters.get("service", "")), ("scope", pull_push(name))]
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.session.get(
            challenge.parameters["realm"], params=params, auth=peer.credentials, timeout=60
        )
        latencies.append(time.perf_counter() - started)
        answer.raise_for_status()
    return _summary(latencies)


_PEER: Peer | None = None


def _adopt(peer: Peer) -> None:
    """Pool initializer: the peer reaches the forked clients without pickling (it holds
    closures)."""
    global _PEER
    _PEER = peer


def _hammer(arguments: tuple[list[str], str, str, float]) -> tuple[list[float], int, str]:
    scopes, method, location, seconds = arguments
    assert _PEER is not None
    client = Client(_PEER, timeout=60)
    client.authorize(scopes)
    latencies: list[float] = []
    errors = 0
    first_error = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            elapsed, response = client.timed(method, location)
        except Exception as error:  # noqa: BLE001 - an error is a result here
            errors += 1
            first_error = first_error or f"{type(error).__name__}: {error}"[:300]
            continue
        if response.status_code != 200:
            errors += 1
            first_error = first_error or f"{response.status_code}"
        latencies.append(elapsed)
    return latencies, errors, first_error


def concurrency(
    peer: Peer, scopes: list[str], method: str, location: str, clients: int, seconds: float
) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    with context.Pool(clients, initializer=_adopt, initargs=(peer,)) as pool:
        results = pool.map(_hammer, [(scopes, method, location, seconds)] * clients, chunksize=1)
    latencies = [value for result in results for value in result[0]]
    errors = sum(result[1] for result in results)
    first_error = next((result[2] for result in results if result[2]), None)
    return _summary(
        latencies,
        clients=clients,
        seconds=seconds,
        errors=errors,
        first_error=first_error,
        requests_per_s=len(latencies) / seconds,
    )


def _small_push(peer: Peer, name: str) -> float:
    started = time.perf_counter()
    client = Client(peer, timeout=IDLE_PUSH_TIMEOUT_S)
    client.authorize([pull_push(name)])
    layer = os.urandom(4096)
    layer_digest = client.upload_monolithic(name, layer)
    config = image_config(name + str(time.monotonic_ns()))
    config_digest = client.upload_monolithic(name, config)
    body = manifest((config_digest, len(config)), [(layer_digest, len(layer))])
    client.expect(client.put_manifest(name, "latest", body), 201)
    return time.perf_counter() - started


def open_idle_connections(url: str, count: int) -> list[socket.socket]:
    """``count`` TCP connections to ``url``'s host and port that never send a byte."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    sockets = []
    for _ in range(count):
        connection = socket.create_connection((parts.hostname, port), timeout=10)
        sockets.append(connection)
    return sockets


def idle_connections(peer: Peer, prefix: str, idle: int = 64) -> dict[str, Any]:
    _small_push(peer, f"{prefix}/warmup")
    baseline = min(_small_push(peer, f"{prefix}/alone-{i}") for i in range(3))
    sockets = open_idle_connections(peer.url, idle)
    error = None
    try:
        time.sleep(0.5)  # let the server accept them
        try:
            with_idle = _small_push(peer, f"{prefix}/beside-idle")
        except Exception as failure:  # noqa: BLE001 - a timeout is the finding
            with_idle = float("nan")
            error = f"{type(failure).__name__}: {failure}"[:500]
    finally:
        for connection in sockets:
            connection.close()
    ok = error is None and with_idle <= baseline * IDLE_SLOWDOWN_LIMIT + IDLE_SLACK_S
    return {
        "idle": idle,
        "alone_s": baseline,
        "with_idle_s": None if error else with_idle,
        "slowdown": None if error else with_idle / baseline,
        "ok": 1 if ok else 0,
        # Not "error": that key marks a measurement that could not be made.
        "push_error": error,
    }
