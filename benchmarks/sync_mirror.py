"""Sync of a 20-tag repository with shared layers, from a local distribution into a Pulp peer.

The source is Debian's ``docker-registry`` (htpasswd, TLS) holding ``children`` images that share
a base of ``base_layers`` layers; each Pulp peer (ours, upstream pulp-container) gets a remote
and a repository through the same REST calls (their shapes are the same) and one sync, timed
from the POST to the task's end. What was downloaded is read from the source's own log (bytes
written for every blob GET), so both peers are measured the same way, against the unique bytes
of the images. Database statements are counted from the peer's PostgreSQL log, with
``log_statement = 'all'`` switched on for the sync only (every statement any Pulp process ran
in that window: the worker's, and the API's answering the task polls).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.peers import WORK_DIR, Peer  # noqa: E402
from benchmarks.peers import distribution as distribution_peer  # noqa: E402
from benchmarks.peers import ours as ours_peer  # noqa: E402
from benchmarks.peers import upstream as upstream_peer  # noqa: E402
from benchmarks.peers.tools import blob_sizes, hierarchy_image, oci  # noqa: E402
from harness.container_tools import Skopeo  # noqa: E402

API = "/pulp/api/v3"
_STATEMENT = re.compile(r"LOG:  (statement|execute [^:]*):")
NAME = "sync/app"
TASK_TIMEOUT = 900.0


@dataclass
class SyncSource:
    """The running source registry and what it holds."""

    peer: Peer
    ca_cert: Path
    tags: list[str]
    unique_bytes: int
    blobs: int

    def log_offset(self) -> int:
        return self.peer.log_offset()

    def blob_bytes_since(self, offset: int) -> tuple[int, int]:
        """(blob GETs, bytes they wrote) in the source's log after ``offset``."""
        time.sleep(0.3)
        with self.peer.access_log.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        count = written = 0
        for line in text.splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            uri = entry.get("http.request.uri", "")
            if entry.get("msg") != "response completed":
                continue
            if entry.get("http.request.method") == "GET" and "/blobs/" in uri:
                count += 1
                written += int(entry.get("http.response.written", 0))
        return count, written


# Layers of their own: the peer synced into also gets the hierarchy rows' pushes.
SOURCE_SEED = 300


def start_source(root: Path, children: int, base_layers: int, base_size: int, own_size: int):
    """The source registry with ``children`` tags of images sharing their base layers."""
    layout, info = hierarchy_image(base_size, base_layers, children, own_size, seed=SOURCE_SEED)
    peer = distribution_peer.launch(root)
    skopeo = Skopeo(credentials=peer.credentials)
    tags = [f"t{index:02d}" for index in range(children)]
    for index, tag in enumerate(tags):
        skopeo.copy(oci(layout, f"child-{index}"), f"docker://{peer.host}/{NAME}:{tag}")
    sizes = blob_sizes(info["children"])
    return SyncSource(peer, root / "server.crt", tags, sum(sizes.values()), len(sizes))


def _session(peer: Peer) -> requests.Session:
    session = requests.Session()
    session.auth = peer.credentials
    session.verify = False
    session.trust_env = False  # REQUESTS_CA_BUNDLE would win over verify=False
    return session


def _created(session: requests.Session, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = session.post(url, json=body, timeout=60)
    response.raise_for_status()
    return dict(response.json())


@contextmanager
def counting_statements(peer: Peer) -> Iterator[dict[str, int]]:
    """Count the statements the peer's PostgreSQL runs inside the block (``statements``)."""
    counted: dict[str, int] = {}
    if peer.psql is None or peer.database_log is None:
        yield counted
        return
    offset = peer.database_log.stat().st_size
    peer.psql("ALTER SYSTEM SET log_statement = 'all'")
    peer.psql("SELECT pg_reload_conf()")
    try:
        yield counted
    finally:
        peer.psql("ALTER SYSTEM RESET log_statement")
        peer.psql("SELECT pg_reload_conf()")
        with peer.database_log.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        counted["statements"] = len(_STATEMENT.findall(text))


def sync_once(peer: Peer, source: SyncSource) -> dict[str, Any]:
    """One sync of the source into a new repository of ``peer``, measured."""
    session = _session(peer)
    user, password = source.peer.credentials
    remote = _created(
        session,
        f"{peer.url}{API}/remotes/container/container/",
        {
            "name": f"sync-{time.monotonic_ns()}",
            "url": source.peer.url,
            "upstream_name": NAME,
            "username": user,
            "password": password,
            "ca_cert": source.ca_cert.read_text(),
        },
    )
    repository = _created(
        session, f"{peer.url}{API}/repositories/container/container/", {"name": NAME}
    )
    offset = source.log_offset()
    with counting_statements(peer) as counted:
        started = time.monotonic()
        task_href = _created(
            session,
            f"{peer.url}{repository['pulp_href']}sync/",
            {"remote": remote["pulp_href"]},
        )["task"]
        task = _wait(session, f"{peer.url}{task_href}")
        wall = time.monotonic() - started
    if task["state"] != "completed":
        raise RuntimeError(f"sync {task['state']}: {(task.get('error') or {}).get('description')}")
    gets, downloaded = source.blob_bytes_since(offset)
    return {
        "wall_s": wall,
        "blob_gets": gets,
        "bytes_downloaded": downloaded,
        "unique_bytes": source.unique_bytes,
        "unique_blobs": source.blobs,
        "tags": len(source.tags),
        "db_statements": counted.get("statements"),
    }


def _wait(session: requests.Session, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + TASK_TIMEOUT
    while time.monotonic() < deadline:
        task = session.get(url, timeout=60).json()
        if task["state"] in ("completed", "failed", "canceled", "skipped"):
            return dict(task)
        time.sleep(0.2)
    raise RuntimeError(f"sync task {url} did not finish in {TASK_TIMEOUT:.0f}s")


def main(argv: list[str] | None = None) -> int:
    """Only this row: ``python benchmarks/sync_mirror.py [--tags 20] [--peers ours,upstream]``
    starts the source and the peers (fresh), syncs once into each, prints JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--base-layer-size", type=int, default=4 << 20)
    parser.add_argument("--own-layer-size", type=int, default=512 << 10)
    parser.add_argument("--peers", default="ours,upstream")
    arguments = parser.parse_args(argv)
    launchers = {"ours": ours_peer.launch, "upstream": upstream_peer.launch}
    names = [name for name in arguments.peers.split(",") if name]
    source = start_source(
        WORK_DIR / "sync-source",
        arguments.tags,
        3,
        arguments.base_layer_size,
        arguments.own_layer_size,
    )
    results: dict[str, Any] = {"load_average": os.getloadavg()}
    try:
        for name in names:
            peer = launchers[name]()
            try:
                results[name] = {"version": peer.version, **sync_once(peer, source)}
            finally:
                peer.stop()
            print(json.dumps({name: results[name]}), flush=True)
    finally:
        source.peer.stop()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
