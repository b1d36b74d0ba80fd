"""Spec rules that real clients tripped over (issue 15), on the running server.

- A blob's ``Location`` after an upload is a pullable URL, and HEAD and GET of it agree for
  every caller: whoever sees the blob by one sees it by the other.
- Clients push layers in parallel: concurrent first pushes to a new name all succeed.
- A last chunk sent with the final ``PUT`` in chunked transfer encoding (no Content-Length, as
  Go clients stream a body) is part of the blob (issue 13: it was ignored, DIGEST_INVALID).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

from harness.registry_http import RegistryHTTP, RunningRegistry, repository_scope


def test_head_and_get_of_a_just_pushed_blob_agree_for_pushers_and_pullers(
    registry: RunningRegistry, repository_name
):
    name = repository_name()
    pusher = registry.http()
    data = os.urandom(1024)
    response = pusher.request(
        "POST",
        f"/v2/{name}/blobs/uploads/?digest=sha256:{hashlib.sha256(data).hexdigest()}",
        scope=repository_scope(name),
        headers={"Content-Type": "application/octet-stream"},
        data=data,
    )
    assert response.status_code == 201, response.text
    location = response.headers["Location"]

    answers = {}
    for who, client, scope in [
        ("pusher, push token", pusher, repository_scope(name)),
        ("pusher, pull-only token", registry.http(), repository_scope(name, "pull")),
        ("anonymous", RegistryHTTP(registry.url, None, verify=registry.verify), None),
    ]:
        head = client.request("HEAD", location, scope=scope)
        get = client.request("GET", location, scope=scope)
        answers[who] = (head.status_code, get.status_code)
        if get.status_code == 200:
            assert get.content == data

    # Pending content is its pushers' (the access model): they see it by HEAD and GET alike,
    # whatever the token asked; anyone else gets 404 by both.
    assert answers == {
        "pusher, push token": (200, 200),
        "pusher, pull-only token": (200, 200),
        "anonymous": (404, 404),
    }


def test_concurrent_first_pushes_to_new_names_all_succeed(
    registry: RunningRegistry, repository_name
):
    names = [repository_name(f"n{i}") for i in range(10)]

    def start(name: str) -> int:
        return registry.http().start_upload(name).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(start, [name for name in names for _ in range(4)]))

    assert statuses == [202] * len(statuses)


def test_last_chunk_sent_chunked_with_the_final_put_is_part_of_the_blob(
    registry: RunningRegistry, repository_name
):
    name = repository_name()
    http = registry.http()
    data = os.urandom(3 << 20)
    half = len(data) // 2
    location = http.start_upload(name).headers["Location"]
    first = http.patch_upload(name, location, data[:half])
    assert first.status_code == 202, first.text
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    url = http.absolute(first.headers["Location"])
    url += ("&" if "?" in url else "?") + f"digest={digest}"
    chunks = (data[offset : offset + 65536] for offset in range(half, len(data), 65536))
    put = http.session.put(
        url, data=chunks, headers=http.authorization(repository_scope(name)), timeout=60
    )
    assert put.status_code == 201, put.text
    head = http.blob_exists(name, digest)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data)
