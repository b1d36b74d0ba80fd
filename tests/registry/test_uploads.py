"""Pushing blobs (OCI distribution spec, "Pushing blobs"): monolithic, chunked, resumed, cancelled.

Each story pushes as the administrator with a real token for the repository, and checks the
answer (status, Location, Range, Docker-Upload-UUID, Docker-Content-Digest) and what the
registry then holds: the blob pending in the repository, visible to HEAD.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from django.contrib.auth.models import AnonymousUser

from harness.oci_images import sha256_digest
from pulp_container.app.models import Blob, BlobUpload, ContainerRepository
from pulp_container.app.oci import RepositoryName
from pulp_container.app.services import repositories
from tests.registry.client import (
    RegistryClient,
    error_codes,
    error_of,
    image_manifest,
    latest_content,
    pending_digests,
)

NAME = "admin/uploads"
UPLOAD_LOCATION = re.compile(rf"^/v2/{NAME}/blobs/uploads/(?P<id>[0-9a-f-]{{36}})$")


@pytest.fixture
def pusher(admin_registry) -> RegistryClient:
    return admin_registry(NAME)


def assert_upload_session(response, received: int) -> str:
    """A 202/204 answer about an upload in progress; returns its Location."""
    location = response["Location"]
    match = UPLOAD_LOCATION.match(location)
    assert match, location
    assert response["Docker-Upload-UUID"] == match["id"]
    assert response["Range"] == f"0-{max(received - 1, 0)}"
    assert response["Content-Length"] == "0"
    return location


def assert_blob_created(response, digest: str) -> None:
    assert response.status_code == 201, error_of(response)
    assert response["Location"] == f"/v2/{NAME}/blobs/{digest}"
    assert response["Docker-Content-Digest"] == digest
    assert response.content == b""


def assert_blob_present(client: RegistryClient, data: bytes, digest: str) -> None:
    """The blob is pending in the repository and its bytes come back from HEAD and GET."""
    head = client.head(f"/v2/{NAME}/blobs/{digest}")
    assert head.status_code == 200, error_of(head)
    assert head["Content-Length"] == str(len(data))
    assert head["Docker-Content-Digest"] == digest
    get = client.get(f"/v2/{NAME}/blobs/{digest}")
    assert get.status_code == 200
    assert b"".join(get.streaming_content) == data
    assert digest in pending_digests(NAME)


def assert_nothing_stored(client: RegistryClient, digest: str) -> None:
    response = client.head(f"/v2/{NAME}/blobs/{digest}")
    assert response.status_code == 404
    assert not Blob.objects.filter(digest=digest).exists()
    assert digest not in pending_digests(NAME)


def test_a_monolithic_post_with_the_digest_stores_the_blob(pusher):
    data = os.urandom(3000)
    digest = sha256_digest(data)

    response = pusher.post(f"/v2/{NAME}/blobs/uploads/?digest={digest}", data)

    assert_blob_created(response, digest)
    assert_blob_present(pusher, data, digest)
    assert not BlobUpload.objects.exists()


def test_post_then_patch_then_put_stores_the_blob(pusher):
    data = os.urandom(5000)
    digest = sha256_digest(data)

    started = pusher.post(f"/v2/{NAME}/blobs/uploads/")
    assert started.status_code == 202
    location = assert_upload_session(started, received=0)

    patched = pusher.patch(location, data, Content_Range=f"0-{len(data) - 1}")
    assert patched.status_code == 202, error_of(patched)
    location = assert_upload_session(patched, received=len(data))

    assert_blob_created(pusher.put(f"{location}?digest={digest}"), digest)
    assert_blob_present(pusher, data, digest)


@pytest.mark.parametrize("chunk_size", [1, 1000, 4096, 4097])
def test_several_patch_chunks_with_content_range_make_one_blob(pusher, chunk_size):
    data = os.urandom(chunk_size * 3 + 17 if chunk_size > 1 else 5)
    digest = sha256_digest(data)
    location = assert_upload_session(pusher.start_upload(NAME), received=0)

    for start in range(0, len(data), chunk_size):
        chunk = data[start : start + chunk_size]
        response = pusher.patch(location, chunk, Content_Range=f"{start}-{start + len(chunk) - 1}")
        assert response.status_code == 202, error_of(response)
        location = assert_upload_session(response, received=start + len(chunk))

    assert_blob_created(pusher.put(f"{location}?digest={digest}"), digest)
    assert_blob_present(pusher, data, digest)


@pytest.mark.parametrize(
    "second_range",
    [
        pytest.param("150-199", id="out-of-order-gap"),
        pytest.param("0-99", id="retried-earlier-chunk"),
        pytest.param("50-149", id="overlapping"),
        pytest.param("99-0", id="malformed"),
    ],
)
def test_a_chunk_not_starting_where_the_upload_stands_is_416_with_the_current_range(
    pusher, second_range
):
    data = os.urandom(200)
    location = pusher.start_upload(NAME)["Location"]
    first = pusher.patch(location, data[:100], Content_Range="0-99")
    assert first.status_code == 202

    start, end = (int(part) for part in second_range.split("-"))
    body = data[start : end + 1] if end >= start else b"x"
    response = pusher.patch(location, body, Content_Range=second_range)

    assert response.status_code == 416, error_of(response)
    assert error_codes(response) == ["RANGE_INVALID"]
    assert response["Range"] == "0-99"
    # The upload is intact: the client resumes from the offset it was told.
    status = pusher.get(location)
    assert status.status_code == 204
    assert status["Range"] == "0-99"
    resumed = pusher.patch(location, data[100:], Content_Range="100-199")
    assert resumed.status_code == 202, error_of(resumed)
    assert_blob_created(pusher.put(f"{location}?digest={sha256_digest(data)}"), sha256_digest(data))


def test_patches_without_content_range_then_an_empty_put_store_the_blob(pusher):
    """Podman and skopeo stream the blob in PATCHes without Content-Range, then PUT nothing."""
    data = os.urandom(7000)
    digest = sha256_digest(data)
    location = pusher.start_upload(NAME)["Location"]

    first = pusher.patch(location, data[:3000])
    assert first.status_code == 202
    location = assert_upload_session(first, received=3000)
    second = pusher.patch(location, data[3000:])
    assert second.status_code == 202
    location = assert_upload_session(second, received=len(data))

    assert_blob_created(pusher.put(f"{location}?digest={digest}"), digest)
    assert_blob_present(pusher, data, digest)


@pytest.mark.parametrize("patched_bytes", [0, 1000])
def test_put_with_the_final_chunk_in_its_body_stores_the_blob(pusher, patched_bytes):
    data = os.urandom(2500)
    digest = sha256_digest(data)
    location = pusher.start_upload(NAME)["Location"]
    if patched_bytes:
        location = pusher.patch(location, data[:patched_bytes])["Location"]

    response = pusher.put(f"{location}?digest={digest}", data[patched_bytes:])

    assert_blob_created(response, digest)
    assert_blob_present(pusher, data, digest)


def test_get_on_an_upload_tells_how_much_was_received(pusher):
    location = pusher.start_upload(NAME)["Location"]
    fresh = pusher.get(location)
    assert fresh.status_code == 204
    assert_upload_session(fresh, received=0)

    pusher.patch(location, os.urandom(1234), Content_Range="0-1233")
    status = pusher.get(location)

    assert status.status_code == 204
    assert_upload_session(status, received=1234)
    assert status.content == b""


def test_delete_cancels_an_upload(pusher):
    location = pusher.start_upload(NAME)["Location"]
    pusher.patch(location, os.urandom(100))

    cancelled = pusher.delete(location)

    assert cancelled.status_code == 204
    assert not BlobUpload.objects.exists()
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = pusher.request(method, f"{location}?digest={sha256_digest(b'')}", b"x")
        assert response.status_code == 404, (method, error_of(response))
        assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]


@pytest.mark.parametrize("monolithic", [True, False], ids=["post", "put"])
def test_a_digest_mismatch_is_digest_invalid_and_leaves_nothing_visible(pusher, monolithic):
    data = os.urandom(800)
    claimed = sha256_digest(b"something else " + data)
    if monolithic:
        response = pusher.post(f"/v2/{NAME}/blobs/uploads/?digest={claimed}", data)
    else:
        location = pusher.start_upload(NAME)["Location"]
        pusher.patch(location, data)
        response = pusher.put(f"{location}?digest={claimed}")

    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]
    assert_nothing_stored(pusher, claimed)
    assert_nothing_stored(pusher, sha256_digest(data))
    assert not BlobUpload.objects.exists()


@pytest.mark.parametrize(
    "digest",
    [
        pytest.param("sha256:1234", id="short"),
        pytest.param("sha256:" + "A" * 64, id="uppercase"),
        pytest.param("md5:" + "0" * 32, id="unknown-algorithm"),
        pytest.param("", id="empty"),
    ],
)
def test_a_malformed_digest_is_digest_invalid(pusher, digest):
    monolithic = pusher.post(f"/v2/{NAME}/blobs/uploads/?digest={digest}", b"data")
    location = pusher.start_upload(NAME)["Location"]
    put = pusher.put(f"{location}?digest={digest}", b"data")

    for response in (monolithic, put):
        assert response.status_code == 400
        assert error_codes(response) == ["DIGEST_INVALID"]


def test_a_put_without_digest_is_digest_invalid(pusher):
    location = pusher.start_upload(NAME)["Location"]

    response = pusher.put(location, b"data")

    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]


@pytest.mark.parametrize(
    "upload_id",
    ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "1234"],
)
def test_an_unknown_upload_id_is_blob_upload_unknown(pusher, upload_id):
    pusher.start_upload(NAME)
    location = f"/v2/{NAME}/blobs/uploads/{upload_id}"

    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = pusher.request(method, f"{location}?digest={sha256_digest(b'x')}", b"x")
        assert response.status_code == 404, (method, error_of(response))
        assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]


def test_an_upload_of_one_repository_is_unknown_to_another(admin_registry):
    pusher = admin_registry(NAME, "admin/other")
    upload_id = UPLOAD_LOCATION.match(pusher.start_upload(NAME)["Location"])["id"]

    response = pusher.get(f"/v2/admin/other/blobs/uploads/{upload_id}")

    assert response.status_code == 404
    assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]


@pytest.mark.parametrize(
    "name",
    ["Admin/app", "admin//app", "admin/app-", "admin/a..b", "admin/" + "a" * 260],
)
def test_an_invalid_name_is_name_invalid(admin, registry, name):
    client = registry(admin, "repository:admin/app:pull,push")

    response = client.post(f"/v2/{name}/blobs/uploads/")

    assert response.status_code == 400, error_of(response)
    assert error_codes(response) == ["NAME_INVALID"]


def test_an_upload_started_by_one_client_continues_in_another(admin, registry, token):
    """API processes keep no state: each request of an upload may reach another one."""
    data = os.urandom(9000)
    digest = sha256_digest(data)
    scopes = f"repository:{NAME}:pull,push"
    first, second, third = (registry(admin, scopes) for _ in range(3))

    location = first.start_upload(NAME)["Location"]
    location = second.patch(location, data[:4000], Content_Range="0-3999")["Location"]
    location = third.patch(location, data[4000:], Content_Range=f"4000-{len(data) - 1}")["Location"]
    response = first.put(f"{location}?digest={digest}")

    assert_blob_created(response, digest)
    assert_blob_present(second, data, digest)


def test_the_same_bytes_pushed_twice_are_one_blob(pusher, admin_registry):
    data = os.urandom(1000)
    digest = pusher.push_blob(NAME, data)
    other = admin_registry("admin/elsewhere")

    assert other.push_blob("admin/elsewhere", data) == digest
    assert pusher.push_blob(NAME, data) == digest

    assert Blob.objects.filter(digest=digest).count() == 1
    assert digest in pending_digests(NAME)
    assert digest in pending_digests("admin/elsewhere")


def test_a_head_for_a_blob_never_pushed_is_404_blob_unknown(pusher):
    pusher.push_blob(NAME, os.urandom(10))
    digest = sha256_digest(os.urandom(10))

    head = pusher.head(f"/v2/{NAME}/blobs/{digest}")
    get = pusher.get(f"/v2/{NAME}/blobs/{digest}")

    assert head.status_code == 404
    assert head.content == b""
    assert get.status_code == 404
    assert error_codes(get) == ["BLOB_UNKNOWN"]


@pytest.mark.parametrize("body_size", [50, 150], ids=["shorter", "longer"])
def test_a_body_that_is_not_the_size_of_its_content_range_is_refused_and_changes_nothing(
    pusher, body_size
):
    data = os.urandom(300)
    location = pusher.patch(pusher.start_upload(NAME)["Location"], data[:100])["Location"]

    response = pusher.patch(location, os.urandom(body_size), Content_Range="100-199")

    assert response.status_code == 400, error_of(response)
    assert error_codes(response) == ["BLOB_UPLOAD_INVALID"]
    assert pusher.get(location)["Range"] == "0-99"
    location = pusher.patch(location, data[100:], Content_Range="100-299")["Location"]
    assert_blob_created(pusher.put(f"{location}?digest={sha256_digest(data)}"), sha256_digest(data))


@pytest.mark.parametrize(
    "existing, nested",
    [("admin/app", "admin/app/sub"), ("admin/x/y", "admin/x"), ("admin/a/b", "admin/a/b/c/d")],
)
def test_a_name_nesting_with_a_pushed_name_is_name_invalid_and_creates_nothing(
    admin_registry, existing, nested
):
    """Pulp keeps distribution base paths prefix-free: a/b and a/b/c cannot both exist."""
    pusher = admin_registry(existing, nested)
    pusher.push_blob(existing, os.urandom(10))

    response = pusher.post(f"/v2/{nested}/blobs/uploads/")

    assert response.status_code == 400, error_of(response)
    assert error_codes(response) == ["NAME_INVALID"]
    assert existing in json.loads(response.content)["errors"][0]["detail"]
    assert not ContainerRepository.objects.filter(name=nested).exists()
    assert not BlobUpload.objects.filter(repository__name=nested).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_whole_push_committed_for_real_is_pulled_back(admin, registry):
    """Without a test transaction around it: every request commits, as it does on a server."""
    scopes = f"repository:{NAME}:pull,push"
    clients = [registry(admin, scopes) for _ in range(3)]
    layer = os.urandom(10_000)
    layer_digest = sha256_digest(layer)

    location = clients[0].start_upload(NAME)["Location"]
    location = clients[1].patch(location, layer[:6000], Content_Range="0-5999")["Location"]
    location = clients[2].patch(location, layer[6000:], Content_Range="6000-9999")["Location"]
    assert_blob_created(clients[0].put(f"{location}?digest={layer_digest}"), layer_digest)
    config = b'{"architecture": "amd64", "os": "linux"}'
    config_digest = clients[1].push_blob(NAME, config)
    body = image_manifest(config_digest, len(config), [layer_digest], [layer])
    assert clients[2].push_manifest(NAME, "latest", body).status_code == 201

    puller = registry(admin, f"repository:{NAME}:pull")
    manifest = puller.get(f"/v2/{NAME}/manifests/latest")
    assert manifest.status_code == 200
    assert manifest.content == body
    blob = puller.get(f"/v2/{NAME}/blobs/{layer_digest}")
    assert b"".join(blob.streaming_content) == layer
    assert pending_digests(NAME) == set()
    assert latest_content(NAME)["blobs"] == {config_digest, layer_digest}


def test_a_first_push_that_loses_the_race_to_create_its_name_writes_into_the_winners(
    admin_registry, monkeypatch
):
    """Clients push layers in parallel, so first pushes to a new name race. Here another
    request creates the name between this one's lookup of the repository and of the
    distribution: the push goes on into that repository (it was once 405 UNSUPPORTED)."""
    name = "admin/raced"
    looked_up = repositories.find_push_repository

    def lookup_just_before_the_winner_commits(found: RepositoryName):
        if str(found) == name and not winner:
            winner.append(repositories._create_push_repository(found, AnonymousUser()))
            return None
        return looked_up(found)

    winner: list[ContainerRepository] = []
    monkeypatch.setattr(repositories, "find_push_repository", lookup_just_before_the_winner_commits)

    response = admin_registry(name).post("/v2/admin/raced/blobs/uploads/")

    assert response.status_code == 202, error_of(response)
    assert winner and BlobUpload.objects.get().repository_id == winner[0].pk
