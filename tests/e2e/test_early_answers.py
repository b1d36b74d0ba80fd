"""An answer given before the body is read reaches the client through the front.

gunicorn closes the connection after each answer; with body bytes still unread, the kernel
resets it, and nginx (streaming the upload body through) lost the answer: the client got 503
UNAVAILABLE or a reset connection instead of the 401 that tells it to fetch a token, or the 403
that tells it no. The registry now drops the unread body first (request_body.discard_unread_body).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Iterator

import pytest
import requests

from harness.pulp_api import create_user
from harness.registry_http import RegistryHTTP, RunningRegistry, repository_scope

ATTEMPTS = 6
BODY = 4 * 1024 * 1024
PIECE = 256 * 1024


def _slowly(body: bytes) -> Iterator[bytes]:
    """The body in pieces with pauses, as a client on a real link sends it (chunked)."""
    for start in range(0, len(body), PIECE):
        time.sleep(0.01)
        yield body[start : start + PIECE]


def _session(registry: RunningRegistry) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = registry.verify
    return session


def test_an_upload_without_a_token_gets_its_401_challenge(registry: RunningRegistry) -> None:
    body = os.urandom(BODY)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    answers = []
    for attempt in range(ATTEMPTS):
        url = f"{registry.url}/v2/early/anonymous-{attempt}/blobs/uploads/?digest={digest}"
        try:
            response = _session(registry).post(url, data=_slowly(body), timeout=60)
        except requests.ConnectionError as error:
            answers.append(f"connection: {error}")
            continue
        answers.append(response.status_code)
        if response.status_code == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")
            assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert answers == [401] * ATTEMPTS


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_refused_chunk_gets_its_answer_not_a_server_error(
    registry: RunningRegistry, method: str
) -> None:
    """A user who may pull but not push sends a chunk to an upload session of another user."""
    name = f"early/refused-{secrets.token_hex(3)}"
    admin = registry.http()
    admin.push_blob(name, b"makes the repository exist")
    started = admin.start_upload(name)
    assert started.status_code == 202, started.text
    location = admin.absolute(started.headers["Location"])

    username = f"early-{secrets.token_hex(3)}"
    create_user(registry, username, "early-password")
    outsider = RegistryHTTP(registry.url, (username, "early-password"), verify=registry.verify)
    body = os.urandom(BODY)
    statuses = []
    for _ in range(ATTEMPTS // 2):
        separator = "&" if "?" in location else "?"
        target = location
        if method == "PUT":
            target = f"{location}{separator}digest=sha256:{hashlib.sha256(body).hexdigest()}"
        try:
            response = outsider.request(
                method,
                target,
                scope=repository_scope(name),
                headers={"Content-Type": "application/octet-stream"},
                data=body,
            )
        except requests.ConnectionError as error:
            statuses.append(f"connection: {error}")
            continue
        statuses.append(response.status_code)
    # Not found or denied, as the registry decides (it does not tell which sessions exist),
    # but never a server error and never a reset connection.
    assert all(status in (401, 403, 404) for status in statuses), statuses
