"""The registries the comparative benchmark runs side by side, and what it needs to know of each.

A ``Peer`` is one running registry: its URL, credentials, the access log the benchmark reads
(to count uploads, mounts, 429s and errors the same way for every server), and the processes
that answer the registry API (to sample their resident memory). The launchers live beside this
file: ``ours.py`` (this repository, via ``harness/server.py``), ``upstream.py``
(``pulp-container`` 2.30.0 from PyPI in its own venv and database) and ``distribution.py``
(Debian's ``docker-registry``, the reference Go registry).

Every launcher starts its server with a fresh database and an empty storage folder, all of them
under ``benchmarks/.work/`` (one disk), and ``stop()`` ends every process it started.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
WORK_DIR = REPOSITORY_ROOT / "benchmarks" / ".work"
ADMIN = ("admin", "password")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environment(**extra: str) -> dict[str, str]:
    """os.environ without any Pulp/Django/venv variable (a test run exports its own), plus extra."""
    dropped = ("PULP_", "DJANGO_", "PYTEST_", "GUNICORN_")
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(dropped) and key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    environment.update(extra)
    return environment


# --- processes ------------------------------------------------------------------------------


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3 on: state, ppid, ...),
    None when the process is gone. The command name may hold spaces and parentheses: the split
    is after the last ")"."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def parent_pid(pid: int) -> int | None:
    fields = stat_fields(pid)
    return int(fields[1]) if fields else None


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    parents = {pid: parent_pid(pid) for pid in all_pids()}
    found = [root]
    frontier = [root]
    while frontier:
        current = frontier.pop()
        children = [pid for pid, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def processes_matching(*fragments: str) -> list[int]:
    """Processes whose command line holds every fragment."""
    return [pid for pid in all_pids() if all(part in cmdline(pid) for part in fragments)]


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB (empty when it is gone)."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                values[name] = int(value.split()[0])
    except OSError:
        pass
    return values


class RssSampler:
    """Samples the resident memory of a set of processes in a thread, every ``interval`` seconds.

    ``pids`` is called again every second, so that processes that appear later (a gunicorn
    worker that was restarted) are seen too. ``peak_kib`` is the largest VmRSS seen of one
    process, ``peak_total_kib`` the largest sum over all of them, ``baseline_kib`` the largest
    VmRSS of one process when sampling started.
    """

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.05) -> None:
        self._pids_fn = pids
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak_kib = 0
        self.peak_total_kib = 0
        self.baseline_kib = 0
        self.hwm_kib = 0
        self.per_pid_peak: dict[int, int] = {}

    def __enter__(self) -> RssSampler:
        pids = self._pids_fn()
        self.baseline_kib = max((memory_kib(pid).get("VmRSS", 0) for pid in pids), default=0)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        pids = self._pids_fn()
        refreshed = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - refreshed > 1.0:
                pids = self._pids_fn()
                refreshed = time.monotonic()
            total = 0
            for pid in pids:
                memory = memory_kib(pid)
                rss = memory.get("VmRSS", 0)
                total += rss
                self.per_pid_peak[pid] = max(self.per_pid_peak.get(pid, 0), rss)
                self.peak_kib = max(self.peak_kib, rss)
                self.hwm_kib = max(self.hwm_kib, memory.get("VmHWM", 0))
            self.peak_total_kib = max(self.peak_total_kib, total)
            self._stop.wait(self._interval)


# --- access logs ----------------------------------------------------------------------------

_GUNICORN_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    uri: str
    status: int

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.uri).path)

    @property
    def query(self) -> dict[str, str]:
        pairs = (part.partition("=") for part in urlsplit(self.uri).query.split("&") if part)
        return {unquote(key): unquote(value) for key, _, value in pairs}


def parse_gunicorn(text: str) -> list[LoggedRequest]:
    requests = []
    for line in text.splitlines():
        match = _GUNICORN_LINE.search(line)
        if match:
            requests.append(LoggedRequest(match["method"], match["uri"], int(match["status"])))
    return requests


def parse_distribution(text: str) -> list[LoggedRequest]:
    """distribution's JSON log: one ``response completed`` entry per request."""
    requests = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if "http.response.status" not in entry or "http.request.uri" not in entry:
            continue
        requests.append(
            LoggedRequest(
                entry.get("http.request.method", ""),
                entry["http.request.uri"],
                int(entry["http.response.status"]),
            )
        )
    return requests


@dataclass
class TrafficSummary:
    """What a server's access log says happened under a repository prefix."""

    requests: int = 0
    uploaded_digests: list[str] = field(default_factory=list)
    mounted: int = 0
    mount_fallbacks: int = 0
    head_hits: int = 0
    status_429: int = 0
    errors: int = 0

    def bytes_received(self, sizes: dict[str, int]) -> int | None:
        """Bytes of the blobs whose upload completed; None if a digest's size is unknown."""
        total = 0
        for digest in self.uploaded_digests:
            if digest not in sizes:
                return None
            total += sizes[digest]
        return total


def summarize(requests: Iterable[LoggedRequest], prefix: str) -> TrafficSummary:
    """Counts uploads, mounts, HEAD hits, 429s and 5xx of requests to ``/v2/<prefix>...``."""
    summary = TrafficSummary()
    for request in requests:
        path = request.path
        if not path.startswith(f"/v2/{prefix}"):
            continue
        summary.requests += 1
        if request.status == 429:
            summary.status_429 += 1
        if request.status >= 500:
            summary.errors += 1
        query = request.query
        if "/blobs/uploads/" in path:
            if request.method == "POST" and "mount" in query:
                if request.status == 201:
                    summary.mounted += 1
                else:
                    summary.mount_fallbacks += 1
            elif request.method in ("PUT", "POST") and "digest" in query and request.status == 201:
                summary.uploaded_digests.append(query["digest"])
        elif request.method == "HEAD" and "/blobs/" in path and request.status == 200:
            summary.head_hits += 1
    return summary


# --- the peer -------------------------------------------------------------------------------


@dataclass
class Peer:
    """One running registry."""

    name: str
    url: str
    credentials: tuple[str, str] | None
    access_log: Path
    log_format: str  # "gunicorn" or "distribution"
    api_pids: Callable[[], list[int]]
    stopper: Callable[[], None]
    version: str = ""
    notes: list[str] = field(default_factory=list)
    started_in_s: float = 0.0
    # A Pulp peer's embedded PostgreSQL: run SQL as its superuser, and its log file.
    psql: Callable[[str], str] | None = None
    database_log: Path | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def reference(self, name: str, tag: str = "latest") -> str:
        return f"docker://{self.host}/{name}:{tag}"

    def log_offset(self) -> int:
        try:
            return self.access_log.stat().st_size
        except OSError:
            return 0

    def requests_since(self, offset: int) -> list[LoggedRequest]:
        time.sleep(0.3)  # the server logs a request after answering it
        with self.access_log.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        if self.log_format == "distribution":
            return parse_distribution(text)
        return parse_gunicorn(text)

    def stop(self) -> None:
        self.stopper()


def gunicorn_api_pids(bind: str) -> Callable[[], list[int]]:
    """The gunicorn master of ``pulpcore-api --bind <bind>`` and its workers (``bind``:
    ``unix:<socket>`` behind the front of ``scripts/run.sh``, or ``127.0.0.1:<port>``)."""

    def pids() -> list[int]:
        masters = processes_matching("pulpcore-api", bind)
        found: list[int] = []
        for master in masters:
            for pid in descendants(master):
                if pid not in found:
                    found.append(pid)
        return found

    return pids
