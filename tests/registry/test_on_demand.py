"""Blobs synced on demand (issue 16): known by their RemoteArtifact, without bytes until a pull.

HEAD answers from the database; the access decision comes before any fetch; a remote that
cannot give the bytes is UNAVAILABLE (502) and nothing is stored; mounts and a child's manifest
use the blob as any other. (Fetching real bytes from a real registry: tests/e2e/test_mirror.py.)
"""

from __future__ import annotations

import json

from harness.oci_images import sha256_digest
from pulp_container.app.models import ContainerRemote
from pulp_container.app.oci import Digest
from pulp_container.app.services.remote_source import RemoteSource
from pulp_container.app.services.sync import blobs_on_demand
from pulp_container.app.services.versions import commit_version, locked_repository
from tests.registry.client import (
    error_codes,
    error_of,
    image_manifest,
    make_distribution,
    push_scopes,
)

NAME, CHILD = "alice/mirror", "alice/child"
LAYER = b"a layer the remote has and this registry does not" * 100
DIGEST = sha256_digest(LAYER)


def _on_demand_blob(name: str):
    remote = ContainerRemote.objects.create(
        name="gone", url="http://127.0.0.1:9", upstream_name="library/app", max_retries=1,
        policy=ContainerRemote.ON_DEMAND,
    )  # fmt: skip
    repository = make_distribution(name, private=True).repository
    blobs_on_demand(repository, RemoteSource(remote), {Digest.parse(DIGEST): len(LAYER)})
    with locked_repository(repository.pk) as locked:
        commit_version(locked, add=list(locked.pending.values_list("content_id", flat=True)))


def test_an_on_demand_blob_is_known_mountable_and_its_failed_fetch_stores_nothing(
    alice, eve, registry
):
    from pulpcore.plugin.models import Artifact

    _on_demand_blob(NAME)
    path = f"/v2/{NAME}/blobs/{DIGEST}"
    reader = registry(alice, f"repository:{NAME}:pull")
    head = reader.head(path)
    assert head.status_code == 200, error_of(head)
    assert (head["Content-Length"], head["Docker-Content-Digest"]) == (str(len(LAYER)), DIGEST)

    refused = registry(eve, f"repository:{NAME}:pull").get(path)
    assert refused.status_code in (401, 403, 404), error_of(refused)

    failed = reader.get(path)
    assert failed.status_code == 502, error_of(failed)
    assert error_codes(failed) == ["UNAVAILABLE"]
    assert "unreachable" in json.loads(failed.content)["errors"][0]["detail"]
    assert not Artifact.objects.exists()

    make_distribution(CHILD, private=True)
    pusher = registry(alice, *push_scopes(CHILD), f"repository:{NAME}:pull")
    mounted = pusher.post(f"/v2/{CHILD}/blobs/uploads/?mount={DIGEST}&from={NAME}")
    assert mounted.status_code == 201, error_of(mounted)
    config = b'{"architecture": "amd64", "os": "linux"}'
    config_digest = pusher.push_blob(CHILD, config)
    body = image_manifest(config_digest, len(config), [DIGEST], [LAYER])
    pushed = pusher.push_manifest(CHILD, "v1", body)
    assert pushed.status_code == 201, error_of(pushed)
