"""Content management (OCI spec, "Deleting tags", "Deleting manifests", "Deleting blobs")."""

from __future__ import annotations

import json
import os

from pulp_container.app.models import ContainerRepository
from pulp_container.constants import OCI_MANIFEST
from tests.registry.client import error_codes, latest_content, pending_digests
from tests.registry.test_referrers import SIGNATURE, push_artifact

NAME = "alice/managed"


def test_deleting_a_tag_keeps_the_manifest_reachable_by_digest(admin_registry):
    client = admin_registry(NAME)
    image = client.push_image(NAME, "v1")
    response = client.delete(f"/v2/{NAME}/manifests/v1")
    assert response.status_code == 202
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 404
    by_digest = client.get(f"/v2/{NAME}/manifests/{image.digest}", Accept=OCI_MANIFEST)
    assert by_digest.status_code == 200 and by_digest.content == image.body
    assert client.get(f"/v2/{NAME}/tags/list").json()["tags"] == []


def test_deleting_a_tag_leaves_the_referrers_listed_under_the_digest(admin_registry):
    client = admin_registry(NAME)
    image = client.push_image(NAME, "v1")
    signature, _, _ = push_artifact(client, NAME, SIGNATURE, image, b"sig")
    assert client.delete(f"/v2/{NAME}/manifests/v1").status_code == 202
    listed = client.get(f"/v2/{NAME}/referrers/{image.digest}").json()["manifests"]
    assert [entry["digest"] for entry in listed] == [signature]


def test_deleting_a_manifest_by_digest_removes_it_and_its_tags(admin_registry):
    client = admin_registry(NAME)
    image = client.push_image(NAME, "v1")
    response = client.delete(f"/v2/{NAME}/manifests/{image.digest}")
    assert response.status_code == 202
    assert client.get(f"/v2/{NAME}/manifests/{image.digest}").status_code == 404
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 404
    assert image.digest not in latest_content(NAME)["manifests"]


def test_deleting_an_unknown_manifest_or_tag_is_manifest_unknown(admin_registry):
    client = admin_registry(NAME)
    client.push_image(NAME, "v1")
    for reference in ("nope", "sha256:" + "0" * 64):
        response = client.delete(f"/v2/{NAME}/manifests/{reference}")
        assert response.status_code == 404
        assert error_codes(response) == ["MANIFEST_UNKNOWN"]


def test_deleting_a_blob_makes_it_unknown_to_the_repository(admin_registry):
    client = admin_registry(NAME)
    image = client.push_image(NAME, "v1", layers=[os.urandom(300)])
    layer = image.layer_digests[0]
    assert client.delete(f"/v2/{NAME}/blobs/{layer}").status_code == 202
    assert client.head(f"/v2/{NAME}/blobs/{layer}").status_code == 404
    response = client.delete(f"/v2/{NAME}/blobs/{layer}")
    assert response.status_code == 404
    assert error_codes(response) == ["BLOB_UNKNOWN"]


def test_deleting_a_pending_blob_removes_it_from_the_push_in_progress(admin_registry):
    client = admin_registry(NAME)
    client.push_image(NAME, "v1")
    digest = client.push_blob(NAME, os.urandom(200))
    assert digest in pending_digests(NAME)
    assert client.delete(f"/v2/{NAME}/blobs/{digest}").status_code == 202
    assert digest not in pending_digests(NAME)
    assert client.head(f"/v2/{NAME}/blobs/{digest}").status_code == 404


def test_delete_needs_the_delete_action(admin_registry, registry, carol):
    admin_registry(NAME).push_image(NAME, "v1")
    collaborator = registry(carol, f"repository:{NAME}:pull,push,delete")
    response = collaborator.delete(f"/v2/{NAME}/manifests/v1")
    assert response.status_code == 401
    assert "insufficient_scope" in response["WWW-Authenticate"]


def test_a_manifest_over_4_mib_is_refused_with_size_invalid(admin_registry):
    client = admin_registry(NAME)
    body = b'{"schemaVersion": 2, "padding": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    response = client.push_manifest(NAME, "big", body)
    assert response.status_code == 413
    assert error_codes(response) == ["SIZE_INVALID"]


def test_an_unknown_endpoint_answers_an_oci_error_with_the_version_header(admin_registry):
    client = admin_registry(NAME)
    response = client.get(f"/v2/{NAME}/nonsense")
    assert response.status_code == 404
    assert error_codes(response) == ["NAME_UNKNOWN"]


def test_a_name_nested_in_an_existing_repository_is_name_invalid(admin_registry):
    """Pulp keeps distribution base paths prefix-free, so a/b and a/b/c cannot both exist."""
    client = admin_registry(NAME, f"{NAME}/sub", "alice")
    client.push_image(NAME, "v1")
    for nested in (f"{NAME}/sub", "alice"):
        response = client.post(f"/v2/{nested}/blobs/uploads/")
        assert response.status_code == 400
        assert error_codes(response) == ["NAME_INVALID"]
        assert NAME in json.loads(response.content)["errors"][0]["detail"]


def test_pushing_to_an_invalid_tag_is_manifest_invalid(admin_registry):
    client = admin_registry(NAME)
    image = client.push_image(NAME, "v1")
    response = client.push_manifest(NAME, ".bad", image.body)
    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_INVALID"]


def test_a_rejected_post_leaves_no_repository_behind(admin_registry):
    client = admin_registry("alice/never")
    response = client.post("/v2/alice/never/blobs/uploads/?mount=sha256:bad")
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]
    assert not ContainerRepository.objects.filter(name="alice/never").exists()


def test_pending_blobs_are_seen_by_pushers_only_and_head_and_get_agree(
    admin, admin_registry, registry, dave
):
    """A push in progress is its pushers' until a manifest commits it: a reader gets 404 from
    HEAD and GET alike, a pusher 200 from both, even with a pull-only token."""
    pusher = admin_registry(NAME)
    pusher.push_image(NAME, "v1")
    digest = pusher.push_blob(NAME, os.urandom(100))
    reader = registry(dave, f"repository:{NAME}:pull")
    assert reader.head(f"/v2/{NAME}/blobs/{digest}").status_code == 404
    assert reader.get(f"/v2/{NAME}/blobs/{digest}").status_code == 404
    pusher_pulling = registry(admin, f"repository:{NAME}:pull")
    assert pusher_pulling.head(f"/v2/{NAME}/blobs/{digest}").status_code == 200
    assert pusher_pulling.get(f"/v2/{NAME}/blobs/{digest}").status_code == 200
