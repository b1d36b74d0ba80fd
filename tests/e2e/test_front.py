"""The front (nginx, scripts/front.sh): idle clients cost Pulp nothing, blob bytes come from
storage behind the same access decision, the internal location is no way around it, and what
nginx refuses itself is refused with OCI error JSON."""

from __future__ import annotations

import json
import os
import socket
import time
from urllib.parse import urlsplit

import pytest

from harness.raw_http import raw_request
from harness.registry_http import RegistryHTTP, RunningRegistry, repository_scope

IDLE_CONNECTIONS = 64


def _small_push(http: RegistryHTTP, name: str) -> float:
    """A layer, a config and a manifest PUT, with a fresh token: the seconds it took."""
    started = time.perf_counter()
    layer = os.urandom(4096)
    layer_digest = http.push_blob(name, layer)
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": time.time_ns()}).encode()
    config_digest = http.push_blob(name, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    response = http.request(
        "PUT",
        f"/v2/{name}/manifests/latest",
        scope=repository_scope(name),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        data=manifest,
    )
    assert response.status_code == 201, response.text
    return time.perf_counter() - started


def test_idle_connections_do_not_slow_another_clients_push(
    registry: RunningRegistry, repository_name
) -> None:
    """64 clients that connect and never send a byte (more than Pulp has workers) leave another
    client's push as fast as it was: the front holds them, no gunicorn worker does."""
    _small_push(registry.http(), repository_name("warmup"))
    alone = min(_small_push(registry.http(), repository_name(f"alone-{i}")) for i in range(3))
    url = urlsplit(registry.url)
    idle = [
        socket.create_connection((url.hostname, url.port), timeout=10)
        for _ in range(IDLE_CONNECTIONS)
    ]
    try:
        time.sleep(0.5)
        http = registry.http()
        http.timeout = 30
        beside_idle = _small_push(http, repository_name("beside-idle"))
    finally:
        for connection in idle:
            connection.close()
    print(f"push alone {alone:.3f}s, beside {IDLE_CONNECTIONS} idle connections {beside_idle:.3f}s")
    # Generous for a noisy 2-core machine; before the front, the push did not finish at all.
    assert beside_idle <= 2 * alone + 0.5


def test_blob_bytes_come_from_the_front_after_the_access_decision(
    registry: RunningRegistry, repository_name
) -> None:
    name = repository_name()
    http = registry.http()
    data = os.urandom(70_000)
    digest = http.push_blob(name, data)
    scope = repository_scope(name, "pull")

    whole = http.request("GET", f"/v2/{name}/blobs/{digest}", scope=scope)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["Docker-Content-Digest"] == digest
    assert "X-Accel-Redirect" not in whole.headers
    part = http.request(
        "GET", f"/v2/{name}/blobs/{digest}", scope=scope, headers={"Range": "bytes=10-19"}
    )
    assert part.status_code == 206 and part.content == data[10:20]

    # Without a token, the view refuses before any byte is sent; and the front's internal
    # location answers no client, whatever the path under it.
    bare = RegistryHTTP(registry.url, None, verify=registry.verify).session
    assert bare.get(f"{registry.url}/v2/{name}/blobs/{digest}", timeout=30).status_code == 401
    stored = digest.removeprefix("sha256:")
    for path in ("/_front/media/", f"/_front/media/artifact/{stored[:2]}/{stored[2:]}"):
        assert bare.get(registry.url + path, timeout=30).status_code == 404


@pytest.mark.parametrize(
    ("request_head", "status", "code"),
    [
        pytest.param(b"GET /v2/ HTTP/1.1\r\nHost: a/b\r\n", 400, "UNSUPPORTED", id="bad-host"),
        pytest.param(
            b"PATCH /v2/x/blobs/uploads/u HTTP/1.1\r\nHost: h\r\nContent-Length: 12ab\r\n",
            400,
            "UNSUPPORTED",
            id="bad-content-length",
        ),
        pytest.param(
            b"GET /v2/" + b"a" * 20_000 + b"/tags/list HTTP/1.1\r\nHost: h\r\n",
            414,
            "UNSUPPORTED",
            id="over-long-request-line",
        ),
        pytest.param(
            b"GET /v2/ HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 20_000 + b"\r\n",
            400,
            "UNSUPPORTED",
            id="over-long-header",
        ),
    ],
)
def test_what_the_front_refuses_is_an_oci_error(
    registry: RunningRegistry, request_head: bytes, status: int, code: str
) -> None:
    """Requests nginx refuses before Pulp sees them get the registry's JSON errors, not HTML."""
    answer = raw_request(
        registry.url, registry.ca_cert, request_head + b"Connection: close\r\n\r\n"
    )
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["docker-distribution-api-version"] == "registry/2.0"
    assert [error["code"] for error in json.loads(answer.body)["errors"]] == [code]
