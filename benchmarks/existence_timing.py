"""Benchmark: does response TIME reveal that a blob exists in a repository the caller may not read?

    .venv/bin/python benchmarks/existence_timing.py            # 50 samples per cell
    .venv/bin/python benchmarks/existence_timing.py --smoke    # 5 samples per cell
    .venv/bin/python benchmarks/existence_timing.py --url https://127.0.0.1:24817 --ca CA.crt

The registry answers a caller the same way whether a blob exists in a repository they may not
read or exists nowhere (tests/registry/test_mounts.py). This benchmark checks that the *time* of
the answer does not tell the two apart either.

Setup (as admin, through the REST API and the registry): users ``victim`` and ``prober``;
``victim`` pushes ``victim/secret`` (one 4 KiB random blob S as the layer of a tagged image) and
the admin makes its distribution private; ``prober`` pushes ``prober/app``. Against a running
server (``--url``) the user names get a random suffix (``victim-1a2b3c``), since the names may
be taken by an earlier run.

Measurement, as ``prober``, with a real token from ``/token/`` for ``repository:prober/app:
pull,push`` and ``repository:victim/secret:pull`` (which the server refuses to grant), over one
``requests.Session`` (keep-alive when the server keeps the connection; Pulp's gunicorn sync
workers close it after each answer, so each request pays a TLS handshake, equally for all):

- ``mount``: ``POST /v2/prober/app/blobs/uploads/?mount=<d>&from=victim/secret`` (a 202 and an
  upload session, cancelled with ``DELETE`` outside the timed part);
- ``head``: ``HEAD /v2/prober/app/blobs/<d>``;
- ``get``: ``GET /v2/prober/app/blobs/<d>``;

for three digests: E (S's digest: exists, in a repository prober may not read), N1 and N2 (two
random digests that exist nowhere; N1 against N2 is the A/A control). ``--samples`` requests per
(kind, digest) cell, after ``--warmup`` untimed rounds over every cell, all interleaved in one
random order so that drift of the machine hits every cell alike. A sample is the wall time of
``session.request`` (sending, the server's work, reading the whole answer).

Statistics, per kind (all in milliseconds):

- ``median E``, ``median N1``, ``median N2``;
- ``E vs N1``: abs(median(E) - median(N1)), the effect measured;
- ``A/A N1 vs N2``: abs(median(N1) - median(N2)), the observed spread of the control;
- ``IQR N1``: interquartile range of N1's samples (how noisy one request is);
- ``control threshold``: the 95th percentile, over 1000 bootstrap resamples, of
  abs(median(N1*) - median(N2*)), where N1* and N2* are each drawn with replacement from N1 and
  N2 (same sizes). It is how far apart two medians of this many samples come out when nothing
  differs but noise (and any drift between the two A/A cells), so it stays meaningful when the
  two observed A/A medians happen to be close;
- ``verdict``: ``within control`` when ``E vs N1`` <= ``control threshold``, else ``OUTSIDE
  control`` (a timing difference larger than the noise: a finding);
- ``same answer``: every E answer and every N1/N2 answer is the same after normalisation: same
  status, same headers apart from ``Date``, ``Correlation-ID``, ``Docker-Upload-UUID`` and the
  upload id inside ``Location``, same body, where the requested digest itself is replaced by
  ``<digest>`` (an error that echoes the digest asked about tells nothing). ``false`` is a
  finding even when the timing is within control.

Prints ``load average at start: x y z`` and the tables, writes JSON (with every sample) to
``benchmarks/results/existence_timing-<timestamp>.json``. ``--check``: exit 1 when any verdict is
``OUTSIDE control`` or any ``same answer`` is false.

Without ``--url`` it starts its own Pulp with ``scripts/run.sh`` in a fresh temporary data folder
on free ports (embedded PostgreSQL on a free port too) and stops it at the end (``--keep`` keeps
the folder and its logs). It imports nothing from ``tests/``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY_ROOT))
from harness.oci_images import sha256_digest  # noqa: E402
from harness.server import ServerError, free_port, start_server, stop_server  # noqa: E402

API = "/pulp/api/v3"
KINDS = ("mount", "head", "get")
CLASSES = ("E", "N1", "N2")
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_PERCENTILE = 95
SECRET_SIZE = 4096
TOKEN_MAX_AGE = 60.0  # seconds; Pulp's tokens live 300 s (TOKEN_EXPIRATION_TIME)
MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar"
IGNORED_HEADERS = {"date", "correlation-id", "docker-upload-uuid", "x-request-id"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
THRESHOLD_DEFINITION = (
    f"control threshold = {BOOTSTRAP_PERCENTILE}th percentile of abs(median(N1*) - median(N2*)) "
    f"over {BOOTSTRAP_RESAMPLES} bootstrap resamples (N1*, N2* drawn with replacement from N1, "
    "N2); verdict 'within control' when abs(median(E) - median(N1)) <= control threshold"
)
SAME_ANSWER_DEFINITION = (
    "same answer = E, N1 and N2 got the same status, headers (apart from Date, Correlation-ID, "
    "Docker-Upload-UUID, the upload id in Location) and body (the requested digest shown as "
    "<digest>) in every sample"
)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


# --- our own server -----------------------------------------------------------------------------


class OwnPulp:
    """``scripts/run.sh`` in a temporary data folder on free ports, in its own process group."""

    def __init__(self, work: Path, admin_password: str) -> None:
        self.work = work
        self.data_dir = work / "data"
        self.api_port = free_port()
        self.url = f"https://127.0.0.1:{self.api_port}"
        self.run_log = work / "run.log"
        # Nothing of a test run's or of another instance's Pulp environment leaks in (with
        # PULP_DATABASE_HOST inherited, two instances would share one database).
        dropped = ("PULP_", "DJANGO_", "PYTEST_", "GUNICORN_")
        self.environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(dropped) and key not in ("VIRTUAL_ENV", "PYTHONPATH")
        }
        self.environment.update(
            PULP_DATA_DIR=str(self.data_dir),
            PULP_API_PORT=str(self.api_port),
            PULP_CONTENT_PORT=str(free_port()),
            PULP_DB_PORT=str(free_port()),
            PULP_ADMIN_PASSWORD=admin_password,
            PULP_SKIP_INSTALL="1",
        )
        for kept in ("PULP_VENV", "PULP_API_WORKERS", "PULP_PG_BIN"):
            if kept in os.environ:
                self.environment[kept] = os.environ[kept]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def ca_cert(self) -> Path:
        tls = self.data_dir / "tls"
        return tls / "ca.crt" if (tls / "ca.crt").exists() else tls / "server.crt"

    def start(self) -> None:
        try:
            self.process = start_server(self.url, self.run_log, self.environment)
        except ServerError as error:
            raise RuntimeError(str(error)) from None

    def stop(self) -> None:
        """SIGTERM to run.sh's process group (it stops its services and PostgreSQL)."""
        if self.process is not None:
            stop_server(self.process)
            self.process = None


# --- HTTP ---------------------------------------------------------------------------------------


def new_session(verify: str | bool) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override ``verify``
    session.verify = verify
    return session


def token_claims(token: str) -> dict[str, Any]:
    """The (unverified) payload of a JWT: what the server says it granted."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@dataclass
class Caller:
    """One user of the registry, with bearer tokens fetched from the realm ``/v2/`` names."""

    url: str
    credentials: tuple[str, str]
    verify: str | bool
    session: requests.Session = field(init=False)
    _challenge: dict[str, str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.session = new_session(self.verify)

    def token(self, *scopes: str) -> str:
        if self._challenge is None:
            response = self.session.get(f"{self.url}/v2/", timeout=60)
            header = response.headers.get("WWW-Authenticate", "")
            if not header.lower().startswith("bearer"):
                raise RuntimeError(
                    f"/v2/ does not ask for a bearer token ({response.status_code} {header!r}); "
                    "this benchmark needs the token server (PULP_TOKEN_AUTH_DISABLED=false)"
                )
            self._challenge = dict(re.findall(r'(\w+)="([^"]*)"', header))
        response = self.session.get(
            self._challenge["realm"],
            params={"service": self._challenge.get("service", ""), "scope": list(scopes)},
            auth=self.credentials,
            timeout=60,
        )
        response.raise_for_status()
        body = response.json()
        return str(body.get("token") or body["access_token"])

    def request(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 120)
        return self.session.request(
            method, f"{self.url}{path}", headers=headers, allow_redirects=False, **kwargs
        )

    def push_blob(self, name: str, data: bytes, token: str) -> str:
        digest = sha256_digest(data)
        response = self.request(
            "POST",
            f"/v2/{name}/blobs/uploads/?digest={digest}",
            token,
            headers={"Content-Type": "application/octet-stream"},
            data=data,
        )
        if response.status_code != 201:
            raise RuntimeError(f"blob upload to {name}: {response.status_code} {response.text}")
        return digest

    def push_image(self, name: str, layer: bytes) -> str:
        """A one-layer image tagged ``v1``: the layer is committed to ``name``."""
        token = self.token(f"repository:{name}:pull,push")
        config = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {}})
        layer_digest = self.push_blob(name, layer, token)
        config_digest = self.push_blob(name, config, token)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": {"mediaType": MEDIA_TYPE_CONFIG, "digest": config_digest,
                       "size": len(config)},
            "layers": [{"mediaType": MEDIA_TYPE_LAYER, "digest": layer_digest,
                        "size": len(layer)}],
        }  # fmt: skip
        response = self.request(
            "PUT",
            f"/v2/{name}/manifests/v1",
            token,
            headers={"Content-Type": MEDIA_TYPE_MANIFEST},
            data=canonical_json(manifest),
        )
        if response.status_code != 201:
            raise RuntimeError(f"manifest to {name}: {response.status_code} {response.text}")
        return layer_digest


class Admin:
    """Pulp's REST API as the administrator."""

    def __init__(self, url: str, credentials: tuple[str, str], verify: str | bool) -> None:
        self.url = url
        self.session = new_session(verify)
        self.session.auth = credentials

    def create_user(self, username: str, password: str) -> None:
        response = self.session.post(
            f"{self.url}{API}/users/",
            json={"username": username, "password": password},
            timeout=60,
        )
        if response.status_code != 201:
            raise RuntimeError(f"user {username}: {response.status_code} {response.text}")

    def make_private(self, name: str) -> None:
        response = self.session.get(
            f"{self.url}{API}/distributions/container/container/", params={"name": name}, timeout=60
        )
        response.raise_for_status()
        results = response.json()["results"]
        if len(results) != 1:
            raise RuntimeError(f"distribution {name}: {results}")
        href = results[0]["pulp_href"]
        response = self.session.patch(f"{self.url}{href}", json={"private": True}, timeout=60)
        if response.status_code not in (200, 202):
            raise RuntimeError(f"PATCH {href}: {response.status_code} {response.text}")
        if response.status_code == 202:
            self._wait(response.json()["task"])
        shown = self.session.get(f"{self.url}{href}", timeout=60).json()
        if shown.get("private") is not True:
            raise RuntimeError(f"distribution {name} is not private: {shown}")

    def _wait(self, task: str) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            state = self.session.get(f"{self.url}{task}", timeout=60).json()
            if state["state"] == "completed":
                return
            if state["state"] in ("failed", "canceled", "skipped"):
                raise RuntimeError(f"task {task}: {state}")
            time.sleep(0.5)
        raise RuntimeError(f"task {task} did not finish")


# --- setup --------------------------------------------------------------------------------------


@dataclass
class World:
    victim: str
    prober: str
    secret_repo: str
    app_repo: str
    secret_digest: str
    prober_caller: Caller
    granted: list[dict[str, Any]]


def set_up(url: str, admin: Admin, verify: str | bool, suffix: str) -> World:
    victim_name, prober_name = f"victim{suffix}", f"prober{suffix}"
    victim = Caller(url, (victim_name, secrets.token_urlsafe(18)), verify)
    prober = Caller(url, (prober_name, secrets.token_urlsafe(18)), verify)
    for caller in (victim, prober):
        admin.create_user(*caller.credentials)
    secret_repo, app_repo = f"{victim_name}/secret", f"{prober_name}/app"
    secret_digest = victim.push_image(secret_repo, os.urandom(SECRET_SIZE))
    admin.make_private(secret_repo)
    prober.push_image(app_repo, os.urandom(SECRET_SIZE))

    # The premises: S is in victim/secret, prober may not read it and gets no token for it.
    check = victim.request(
        "HEAD",
        f"/v2/{secret_repo}/blobs/{secret_digest}",
        victim.token(f"repository:{secret_repo}:pull"),
    )
    if check.status_code != 200:
        raise RuntimeError(f"victim cannot HEAD its own blob: {check.status_code}")
    token = prober.token(f"repository:{app_repo}:pull,push", f"repository:{secret_repo}:pull")
    granted = token_claims(token).get("access", [])
    if any(entry.get("name") == secret_repo and entry.get("actions") for entry in granted):
        raise RuntimeError(f"the server granted prober access to {secret_repo}: {granted}")
    denied = prober.request("HEAD", f"/v2/{secret_repo}/blobs/{secret_digest}", token)
    if denied.status_code not in (401, 403, 404):
        raise RuntimeError(f"prober may HEAD the secret blob: {denied.status_code}")
    return World(
        victim=victim_name,
        prober=prober_name,
        secret_repo=secret_repo,
        app_repo=app_repo,
        secret_digest=secret_digest,
        prober_caller=prober,
        granted=granted,
    )


# --- measurement --------------------------------------------------------------------------------


def signature(response: requests.Response, digest: str) -> str:
    """The answer with what may differ between any two requests taken out (see the docstring)."""

    def normal(text: str) -> str:
        return UUID.sub("<uuid>", text.replace(digest, "<digest>"))

    headers = sorted(
        (name.lower(), normal(value))
        for name, value in response.headers.items()
        if name.lower() not in IGNORED_HEADERS
    )
    body = normal(response.content.decode("utf-8", errors="replace"))
    return json.dumps({"status": response.status_code, "headers": headers, "body": body})


class Prober:
    """Sends the measured requests as ``prober`` and cleans up after each, outside the timing."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.caller = world.prober_caller
        self.scopes = (
            f"repository:{world.app_repo}:pull,push",
            f"repository:{world.secret_repo}:pull",
        )
        self._token = ""
        self._token_at = 0.0
        self.closed_by_server = 0
        self.linked = 0

    def token(self) -> str:
        if time.monotonic() - self._token_at > TOKEN_MAX_AGE:
            self._token = self.caller.token(*self.scopes)
            self._token_at = time.monotonic()
        return self._token

    def send(self, kind: str, digest: str) -> tuple[float, str, int]:
        """One timed request: (milliseconds, normalised answer, status)."""
        app, token = self.world.app_repo, self.token()
        if kind == "mount":
            method = "POST"
            path = f"/v2/{app}/blobs/uploads/?mount={digest}&from={self.world.secret_repo}"
            extra: dict[str, Any] = {"headers": {"Content-Length": "0"}, "data": b""}
        else:
            method, path, extra = kind.upper(), f"/v2/{app}/blobs/{digest}", {}
        started = time.perf_counter()
        response = self.caller.request(method, path, token, **extra)
        elapsed = (time.perf_counter() - started) * 1000
        answer = signature(response, digest)
        if response.headers.get("Connection", "").lower() == "close":
            self.closed_by_server += 1
        self._clean_up(kind, digest, response, token)
        return elapsed, answer, response.status_code

    def _clean_up(self, kind: str, digest: str, response: requests.Response, token: str) -> None:
        if kind == "mount" and response.status_code == 202 and "Location" in response.headers:
            location = urlsplit(response.headers["Location"])
            path = location.path + (f"?{location.query}" if location.query else "")
            self.caller.request("DELETE", path, token)
        elif response.status_code in (200, 201):
            # The blob was linked into prober/app (a mount, or a link on HEAD/GET): a finding in
            # itself. Unlink it, so that the next samples measure the same situation again.
            self.linked += 1
            self.caller.request("DELETE", f"/v2/{self.world.app_repo}/blobs/{digest}", token)


@dataclass
class Cell:
    milliseconds: list[float] = field(default_factory=list)
    answers: set[str] = field(default_factory=set)
    statuses: set[int] = field(default_factory=set)


def measure(
    prober: Prober, digests: dict[str, str], samples: int, warmup: int, rng: random.Random
) -> dict[str, dict[str, Cell]]:
    cells = {kind: {cls: Cell() for cls in CLASSES} for kind in KINDS}
    every = [(kind, cls) for kind in KINDS for cls in CLASSES]
    for _ in range(warmup):
        order = list(every)
        rng.shuffle(order)
        for kind, cls in order:
            prober.send(kind, digests[cls])
    trials = every * samples
    rng.shuffle(trials)
    for done, (kind, cls) in enumerate(trials, 1):
        elapsed, answer, status = prober.send(kind, digests[cls])
        cell = cells[kind][cls]
        cell.milliseconds.append(elapsed)
        cell.answers.add(answer)
        cell.statuses.add(status)
        if done % 90 == 0:
            print(f"  {done}/{len(trials)} requests", file=sys.stderr)
    return cells


# --- statistics and report ----------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap_threshold(first: list[float], second: list[float], rng: random.Random) -> float:
    differences = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        a = statistics.median(rng.choices(first, k=len(first)))
        b = statistics.median(rng.choices(second, k=len(second)))
        differences.append(abs(a - b))
    return quantile(differences, BOOTSTRAP_PERCENTILE / 100)


def summarize(cells: dict[str, Cell], rng: random.Random) -> dict[str, Any]:
    n1, n2 = cells["N1"].milliseconds, cells["N2"].milliseconds
    median = {cls: statistics.median(cells[cls].milliseconds) for cls in CLASSES}
    effect = abs(median["E"] - median["N1"])
    threshold = bootstrap_threshold(n1, n2, rng)
    answers = [cells[cls].answers for cls in CLASSES]
    same = all(len(a) == 1 for a in answers) and answers[0] == answers[1] == answers[2]
    return {
        "median_ms": {cls: round(value, 3) for cls, value in median.items()},
        "e_vs_n1_ms": round(effect, 3),
        "e_vs_n2_ms": round(abs(median["E"] - median["N2"]), 3),
        "aa_n1_vs_n2_ms": round(abs(median["N1"] - median["N2"]), 3),
        "iqr_n1_ms": round(quantile(n1, 0.75) - quantile(n1, 0.25), 3),
        "control_threshold_ms": round(threshold, 3),
        "within_control": effect <= threshold,
        "same_answer": same,
        "statuses": {cls: sorted(cells[cls].statuses) for cls in CLASSES},
        "answers": {cls: sorted(cells[cls].answers) for cls in CLASSES},
        "samples_ms": {cls: [round(v, 3) for v in cells[cls].milliseconds] for cls in CLASSES},
        "mean_ms": {cls: round(statistics.fmean(cells[cls].milliseconds), 3) for cls in CLASSES},
    }


def describe_kinds(world: World) -> dict[str, str]:
    app, secret = world.app_repo, world.secret_repo
    return {
        "mount": f"POST /v2/{app}/blobs/uploads/?mount=<d>&from={secret}",
        "head": f"HEAD /v2/{app}/blobs/<d>",
        "get": f"GET /v2/{app}/blobs/<d>",
    }


def render(results: dict[str, dict[str, Any]], kinds: dict[str, str]) -> str:
    lines: list[str] = []
    for kind in KINDS:
        row = results[kind]
        statuses = " / ".join(",".join(str(s) for s in row["statuses"][cls]) for cls in CLASSES)
        median = row["median_ms"]
        lines += [
            f"### {kind}: `{kinds[kind]}`",
            "",
            "| median E ms | median N1 ms | median N2 ms | E vs N1 ms | A/A N1 vs N2 ms "
            "| IQR N1 ms | control threshold ms | verdict | status E / N1 / N2 | same answer |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
            f"| {median['E']:.2f} | {median['N1']:.2f} | {median['N2']:.2f} "
            f"| {row['e_vs_n1_ms']:.2f} | {row['aa_n1_vs_n2_ms']:.2f} | {row['iqr_n1_ms']:.2f} "
            f"| {row['control_threshold_ms']:.2f} "
            f"| {'within control' if row['within_control'] else 'OUTSIDE control'} "
            f"| {statuses} | {'true' if row['same_answer'] else 'FALSE'} |",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=None, help="per cell (default 50; smoke 5)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds (default 3)")
    parser.add_argument("--smoke", action="store_true", help="5 samples per cell, 1 warm-up round")
    parser.add_argument("--check", action="store_true", help="exit 1 when any check fails")
    parser.add_argument("--url", help="a running Pulp instead of starting one")
    parser.add_argument(
        "--ca", type=Path, help="CA of --url's certificate (default: $PULP_CA_CERT, else none)"
    )
    parser.add_argument(
        "--admin-user", default=os.environ.get("PULP_ADMIN_USER", "admin"),
        help="default: $PULP_ADMIN_USER or admin",
    )  # fmt: skip
    parser.add_argument(
        "--admin-password", default=os.environ.get("PULP_ADMIN_PASSWORD", "password"),
        help="default: $PULP_ADMIN_PASSWORD or password",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, help="random order and bootstrap seed")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=REPOSITORY_ROOT / "benchmarks" / "results",
        help="where the JSON goes (default: benchmarks/results/)",
    )
    parser.add_argument("--keep", action="store_true", help="keep our server's data folder")
    arguments = parser.parse_args(argv)
    samples = arguments.samples or (5 if arguments.smoke else 50)
    warmup = arguments.warmup if arguments.warmup is not None else (1 if arguments.smoke else 3)
    seed = arguments.seed if arguments.seed is not None else secrets.randbelow(1 << 31)
    rng = random.Random(seed)
    load = os.getloadavg()
    started = time.monotonic()
    admin_credentials = (arguments.admin_user, arguments.admin_password)

    own: OwnPulp | None = None
    work: Path | None = None
    try:
        if arguments.url:
            url = arguments.url.rstrip("/")
            ca = arguments.ca or (
                Path(os.environ["PULP_CA_CERT"]) if os.environ.get("PULP_CA_CERT") else None
            )
            suffix = f"-{secrets.token_hex(3)}"  # a running server may know these names
        else:
            work = Path(tempfile.mkdtemp(prefix="pulp-timing-"))
            work.chmod(0o755)  # the embedded PostgreSQL runs as postgres when we are root
            own = OwnPulp(work, arguments.admin_password)
            own.start()
            url, ca, suffix = own.url, own.ca_cert, ""
            print(f"server ready in {time.monotonic() - started:.1f}s ({work})", file=sys.stderr)
        verify: str | bool = str(ca) if ca and ca.is_file() else False
        if verify is False:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            print("no CA certificate: TLS is not verified", file=sys.stderr)
        admin = Admin(url, admin_credentials, verify)
        world = set_up(url, admin, verify, suffix)
        digests = {
            "E": world.secret_digest,
            "N1": "sha256:" + secrets.token_hex(32),
            "N2": "sha256:" + secrets.token_hex(32),
        }
        print(
            f"measuring {samples} samples x {len(KINDS)} kinds x {len(CLASSES)} digests "
            f"(+{warmup} warm-up rounds) as {world.prober}",
            file=sys.stderr,
        )
        prober = Prober(world)
        cells = measure(prober, digests, samples, warmup, rng)
    finally:
        if own is not None:
            own.stop()
        if work is not None and not arguments.keep:
            shutil.rmtree(work, ignore_errors=True)

    results = {kind: summarize(cells[kind], rng) for kind in KINDS}
    kinds = describe_kinds(world)
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"\nserver: {url} ({'started here' if own else '--url'}); {samples} samples per digest "
        f"and kind, {warmup} warm-up rounds, random interleaved order (seed {seed}); "
        f"E = {world.secret_digest} in private {world.secret_repo}, N1/N2 = random digests; "
        f"requests as {world.prober}, token access granted: {json.dumps(world.granted)}; "
        f"{prober.closed_by_server} of {len(KINDS) * len(CLASSES) * (samples + warmup)} answers "
        "closed the connection.\n"
    )
    print(THRESHOLD_DEFINITION + ".")
    print(SAME_ANSWER_DEFINITION + ".\n")
    print(render(results, kinds))
    failures = [
        f"{kind}: {check}"
        for kind, row in results.items()
        for check, ok in (("timing OUTSIDE control", row["within_control"]),
                          ("answers differ", row["same_answer"]))
        if not ok
    ]  # fmt: skip
    if prober.linked:
        failures.append(f"E was linked into {world.app_repo} {prober.linked} times")
    print("findings: " + ("; ".join(failures) if failures else "none"))

    arguments.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = arguments.results_dir / f"existence_timing-{stamp}.json"
    output.write_text(
        json.dumps(
            {
                "smoke": arguments.smoke,
                "url": url,
                "own_server": own is not None,
                "load_average_at_start": list(load),
                "samples": samples,
                "warmup_rounds": warmup,
                "seed": seed,
                "digests": digests,
                "repositories": {"secret": world.secret_repo, "app": world.app_repo},
                "users": {"victim": world.victim, "prober": world.prober},
                "token_access_granted": world.granted,
                "connections_closed_by_server": prober.closed_by_server,
                "linked_into_app": prober.linked,
                "threshold_definition": THRESHOLD_DEFINITION,
                "same_answer_definition": SAME_ANSWER_DEFINITION,
                "requests": kinds,
                "results": results,
                "findings": failures,
                "seconds": round(time.monotonic() - started, 1),
            },
            indent=2,
        )
    )
    print(f"\nwritten: {output}", file=sys.stderr)
    return 1 if arguments.check and failures else 0


if __name__ == "__main__":
    sys.exit(main())
