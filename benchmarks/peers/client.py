"""A minimal OCI Distribution client over ``requests`` for the HTTP-level benchmarks.

Unlike ``harness/registry_http.py`` (which answers each 401 as it comes), this client takes
a token once for an explicit list of scopes and reuses it for every request, as a registry client
does within one push: so a latency measured here is the latency of the operation, not of the
token server. TLS is not verified (every peer has a self-signed or private CA).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3

from benchmarks.peers import Peer
from harness.registry_http import Challenge

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class RegistryCallError(AssertionError):
    pass


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pull_push(name: str) -> str:
    return f"repository:{name}:pull,push"


def pull(name: str) -> str:
    return f"repository:{name}:pull"


def image_config(tag: str) -> bytes:
    """A valid image config (Pulp parses it), distinct per ``tag``."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Labels": {"bench": tag}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    return json.dumps(config, sort_keys=True).encode()


def manifest(
    config: tuple[str, int], layers: list[tuple[str, int]], annotation: str | None = None
) -> bytes:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": {"mediaType": MEDIA_TYPE_CONFIG, "digest": config[0], "size": config[1]},
        "layers": [
            {"mediaType": MEDIA_TYPE_LAYER, "digest": digest, "size": size}
            for digest, size in layers
        ],
    }
    if annotation is not None:
        document["annotations"] = {"bench": annotation}
    return json.dumps(document, sort_keys=True).encode()


@dataclass
class Client:
    peer: Peer
    timeout: float = 120.0
    session: requests.Session = field(default_factory=requests.Session)
    token: str | None = None

    def __post_init__(self) -> None:
        self.session.trust_env = False
        self.session.verify = False

    def url(self, location: str) -> str:
        return location if "://" in location else self.peer.url + location

    def challenge(self) -> Challenge | None:
        """The challenge of an anonymous ``GET /v2/``, or None when it answers 200."""
        response = self.session.get(self.url("/v2/"), timeout=self.timeout)
        if response.status_code == 200:
            return None
        return Challenge.parse(response.headers.get("WWW-Authenticate", ""))

    def authorize(self, scopes: list[str]) -> None:
        """Take a token for ``scopes`` (if the registry asks for one) and use it from now on."""
        response = self.session.get(self.url("/v2/"), timeout=self.timeout)
        if response.status_code == 200:
            self.token = None
            return
        challenge = Challenge.parse(response.headers.get("WWW-Authenticate", ""))
        if challenge.scheme == "basic":
            self.session.auth = self.peer.credentials
            return
        if challenge.scheme != "bearer":
            raise RegistryCallError(f"unexpected /v2/ answer {response.status_code}")
        params: list[tuple[str, str]] = [("service", challenge.parameters.get("service", ""))]
        params += [("scope", scope) for scope in scopes]
        answer = self.session.get(
            challenge.parameters["realm"],
            params=params,
            auth=self.peer.credentials,
            timeout=self.timeout,
        )
        answer.raise_for_status()
        body = answer.json()
        self.token = str(body.get("token") or body["access_token"])

    def call(self, method: str, location: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, self.url(location), headers=headers, **kwargs)

    def expect(self, response: requests.Response, *statuses: int) -> requests.Response:
        if response.status_code not in statuses:
            raise RegistryCallError(
                f"{response.request.method} {response.request.url} -> {response.status_code}, "
                f"expected {statuses}: {response.text[:500]}"
            )
        return response

    # --- operations ---------------------------------------------------------------------------

    def upload(self, name: str, data: bytes) -> str:
        """Upload a blob (POST, PATCH, PUT ?digest=: what skopeo does); return its digest."""
        digest = digest_of(data)
        started = self.expect(
            self.call(
                "POST", f"/v2/{name}/blobs/uploads/", data=b"", headers={"Content-Length": "0"}
            ),
            202,
        )
        location = started.headers["Location"]
        patched = self.expect(
            self.call(
                "PATCH",
                location,
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            ),
            202,
        )
        location = patched.headers.get("Location", location)
        separator = "&" if "?" in location else "?"
        self.expect(
            self.call(
                "PUT",
                f"{location}{separator}digest={digest}",
                data=b"",
                headers={"Content-Type": "application/octet-stream", "Content-Length": "0"},
            ),
            201,
        )
        return digest

    def upload_monolithic(self, name: str, data: bytes) -> str:
        """Upload a blob in one ``POST ?digest=`` (falls back to ``upload`` if refused)."""
        digest = digest_of(data)
        response = self.call(
            "POST",
            f"/v2/{name}/blobs/uploads/?digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if response.status_code == 201:
            return digest
        if response.status_code == 202 and "Location" in response.headers:
            self.call("DELETE", response.headers["Location"])
        return self.upload(name, data)

    def mount(self, name: str, digest: str, source: str) -> requests.Response:
        return self.call(
            "POST",
            f"/v2/{name}/blobs/uploads/?mount={digest}&from={source}",
            data=b"",
            headers={"Content-Length": "0"},
        )

    def put_manifest(self, name: str, reference: str, body: bytes) -> requests.Response:
        return self.call(
            "PUT",
            f"/v2/{name}/manifests/{reference}",
            data=body,
            headers={"Content-Type": MEDIA_TYPE_MANIFEST},
        )

    def timed(self, method: str, location: str, **kwargs: Any) -> tuple[float, requests.Response]:
        started = time.perf_counter()
        response = self.call(method, location, **kwargs)
        return time.perf_counter() - started, response


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 of [1, 2, 3, 4] is 2; p95 of 200 values is the 190th)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-int(round(fraction * 1000)) * len(ordered) // 1000))
    return ordered[min(rank, len(ordered)) - 1]
