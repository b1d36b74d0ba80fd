"""What the tests and benchmarks ask Pulp's REST API as the administrator.

- ``blob_transfers``: the server's own record of every blob that reached a repository (uploaded,
  mounted, fallback, linked-on-head) and its bytes: what proves that a push sent only its
  unique bytes.
- users, private distributions, orphan cleanup and the tasks it starts.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import requests

from harness.registry_http import RunningRegistry

API = "/pulp/api/v3"
TASK_TIMEOUT = 300.0


@dataclass(frozen=True)
class Transfers:
    """``GET .../pulp_container/blob-transfers/?repository=<prefix>``, digested."""

    summary: dict[str, dict[str, int]]
    recent: list[dict[str, Any]]

    def count(self, outcome: str) -> int:
        return self.summary.get(outcome, {}).get("count", 0)

    def bytes_received(self) -> int:
        return sum(row.get("bytes_received", 0) for row in self.summary.values())

    def bytes_saved(self) -> int:
        return sum(row.get("bytes_saved", 0) for row in self.summary.values())

    def records(self, outcome: str | None = None, repository: str | None = None) -> list[dict]:
        return [
            record
            for record in self.recent
            if (outcome is None or record["outcome"] == outcome)
            and (repository is None or record["repository"] == repository)
        ]

    def digests(self, outcome: str, repository: str | None = None) -> list[str]:
        return [record["digest"] for record in self.records(outcome, repository)]

    def uploaded_twice(self) -> list[str]:
        """Digests whose bytes the server received more than once (across the prefix)."""
        counts = Counter(self.digests("uploaded"))
        return sorted(digest for digest, count in counts.items() if count > 1)

    def describe(self) -> str:
        lines = [f"summary: {self.summary}"]
        for record in reversed(self.recent):
            lines.append(
                f"  {record['repository']} {record['digest'][:19]} {record['outcome']}"
                f" ({record['reason']}) received={record['bytes_received']}"
                f" saved={record['bytes_saved']}"
            )
        return "\n".join(lines)


def blob_transfers(registry: RunningRegistry, prefix: str) -> Transfers:
    """The records of every repository whose name starts with ``prefix`` (at most 100 recent)."""
    session = registry.session()
    response = session.get(
        f"{registry.url}{API}/pulp_container/blob-transfers/",
        params={"repository": prefix},
        timeout=60,
    )
    response.raise_for_status()
    body = response.json()
    return Transfers(summary=body["summary"], recent=body["recent"])


def create_user(registry: RunningRegistry, username: str, password: str) -> str:
    session = registry.session()
    response = session.post(
        f"{registry.url}{API}/users/",
        json={"username": username, "password": password},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["pulp_href"])


def distribution_href(registry: RunningRegistry, name: str) -> str:
    session = registry.session()
    response = session.get(
        f"{registry.url}{API}/distributions/container/container/",
        params={"name": name},
        timeout=60,
    )
    response.raise_for_status()
    results = response.json()["results"]
    assert len(results) == 1, f"distribution {name}: {results}"
    return str(results[0]["pulp_href"])


def set_private(registry: RunningRegistry, name: str, private: bool = True) -> None:
    """Make the distribution ``name`` private (only users with a role on it may pull)."""
    session = registry.session()
    href = distribution_href(registry, name)
    response = session.patch(f"{registry.url}{href}", json={"private": private}, timeout=60)
    assert response.status_code in (200, 202), response.text
    if response.status_code == 202:
        wait_for_task(registry, response.json()["task"])
    shown = session.get(f"{registry.url}{href}", timeout=60).json()
    assert shown["private"] is private, shown


def wait_for_task(registry: RunningRegistry, href: str, timeout: float = TASK_TIMEOUT) -> dict:
    """Poll a task until it finishes; fail unless it completed."""
    session = registry.session()
    deadline = time.monotonic() + timeout
    while True:
        task = session.get(f"{registry.url}{href}", timeout=60).json()
        if task["state"] in ("completed", "failed", "canceled", "skipped"):
            assert task["state"] == "completed", task
            return dict(task)
        if time.monotonic() > deadline:
            raise AssertionError(f"task {href} still {task['state']} after {timeout}s")
        time.sleep(0.5)


def orphan_cleanup(registry: RunningRegistry, protection_minutes: int = 0) -> dict:
    """Run orphan cleanup (protection time in minutes) and wait for it to complete."""
    session = registry.session()
    response: requests.Response = session.post(
        f"{registry.url}{API}/orphans/cleanup/",
        json={"orphan_protection_time": protection_minutes},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    return wait_for_task(registry, response.json()["task"])
