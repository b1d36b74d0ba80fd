"""Pushing and pulling manifests (OCI distribution spec, "Pushing manifests", "Pulling manifests").

A manifest push commits one repository version holding the manifest, every blob it references
and its tag; until then the blobs of the push are pending: visible to HEAD on the repository,
protected from orphan cleanup, and invisible to manifest pulls.
"""

from __future__ import annotations

import json
import os

import pytest
from pulpcore.plugin.models import Content, Task
from pulpcore.plugin.tasking import orphan_cleanup

from harness.oci_images import sha256_digest
from pulp_container.app.models import Blob, Manifest, PendingContent, Tag
from pulp_container.constants import (
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST_V2,
    OCI_INDEX,
    OCI_MANIFEST,
)
from tests.registry.client import (
    RegistryClient,
    error_codes,
    error_of,
    image_manifest,
    index_manifest,
    latest_content,
    latest_version,
    pending_digests,
)

NAME = "admin/manifests"


@pytest.fixture
def pusher(admin_registry) -> RegistryClient:
    return admin_registry(NAME)


def push_blobs(client: RegistryClient, count: int = 2) -> tuple[str, int, list[str], list[bytes]]:
    """A config and ``count - 1`` layers, pushed: (config digest, config size, layers, data)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "r": os.urandom(4).hex()})
    config_digest = client.push_blob(NAME, config.encode())
    layer_data = [os.urandom(300) for _ in range(count - 1)]
    layer_digests = [client.push_blob(NAME, data) for data in layer_data]
    return config_digest, len(config), layer_digests, layer_data


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST_V2])
def test_an_image_manifest_push_commits_one_version_with_manifest_blobs_and_tag(pusher, media_type):
    config_digest, config_size, layers, layer_data = push_blobs(pusher, count=3)
    body = image_manifest(config_digest, config_size, layers, layer_data, media_type)
    digest = sha256_digest(body)
    version_before = latest_version(NAME).number

    response = pusher.push_manifest(NAME, "v1", body, media_type)

    assert response.status_code == 201, error_of(response)
    assert response["Location"] == f"/v2/{NAME}/manifests/{digest}"
    assert response["Docker-Content-Digest"] == digest
    assert response.content == b""
    assert latest_version(NAME).number == version_before + 1
    assert latest_content(NAME) == {
        "blobs": {config_digest, *layers},
        "manifests": {digest},
        "tags": {f"v1={digest}"},
    }
    assert pending_digests(NAME) == set()
    assert Manifest.objects.get(digest=digest).media_type == media_type


@pytest.mark.parametrize(
    "index_type, image_type",
    [(OCI_INDEX, OCI_MANIFEST), (DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2)],
)
def test_an_index_push_commits_the_index_with_its_manifests(pusher, index_type, image_type):
    images = [pusher.push_image(NAME, tag=None, media_type=image_type) for _ in range(2)]
    body = index_manifest(images, index_type)
    digest = sha256_digest(body)

    response = pusher.push_manifest(NAME, "multi", body, index_type)

    assert response.status_code == 201, error_of(response)
    assert response["Docker-Content-Digest"] == digest
    content = latest_content(NAME)
    assert content["manifests"] == {digest, *(image.digest for image in images)}
    assert content["tags"] == {f"multi={digest}"}
    assert {blob for image in images for blob in image.blob_digests} <= content["blobs"]
    pulled = pusher.get(f"/v2/{NAME}/manifests/multi", Accept=index_type)
    assert pulled.status_code == 200
    assert pulled["Content-Type"] == index_type
    assert pulled.content == body


def test_an_index_listing_a_manifest_not_in_the_repository_is_manifest_blob_unknown(
    pusher, admin_registry
):
    elsewhere = admin_registry("admin/elsewhere").push_image("admin/elsewhere", tag=None)
    here = pusher.push_image(NAME, tag=None)
    body = index_manifest([here, elsewhere])

    response = pusher.push_manifest(NAME, "multi", body, OCI_INDEX)

    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert json.loads(response.content)["errors"][0]["detail"] == {"unknown": [elsewhere.digest]}


@pytest.fixture
def pushed(pusher):
    return pusher.push_image(NAME, tag="latest", layers=[os.urandom(100), os.urandom(200)])


@pytest.mark.parametrize("by", ["tag", "digest"])
@pytest.mark.parametrize(
    "accept",
    [
        pytest.param(None, id="no-accept"),
        pytest.param("*/*", id="anything"),
        pytest.param(OCI_MANIFEST, id="oci"),
        pytest.param(f"{DOCKER_MANIFEST_V2}, {OCI_MANIFEST}, {OCI_INDEX}", id="list"),
    ],
)
def test_a_manifest_is_pulled_by_tag_or_digest(pusher, pushed, by, accept):
    reference = pushed.tag if by == "tag" else pushed.digest
    headers = {"Accept": accept} if accept else {}

    get = pusher.get(f"/v2/{NAME}/manifests/{reference}", **headers)
    head = pusher.head(f"/v2/{NAME}/manifests/{reference}", **headers)

    for response in (get, head):
        assert response.status_code == 200, error_of(response)
        assert response["Content-Type"] == OCI_MANIFEST
        assert response["Docker-Content-Digest"] == pushed.digest
        assert response["Content-Length"] == str(len(pushed.body))
    assert get.content == pushed.body
    assert head.content == b""


def test_a_manifest_not_in_accept_is_manifest_unknown(pusher, pushed):
    response = pusher.get(f"/v2/{NAME}/manifests/latest", Accept=DOCKER_MANIFEST_V2)

    assert response.status_code == 404
    assert error_codes(response) == ["MANIFEST_UNKNOWN"]


@pytest.mark.parametrize(
    "body, content_type",
    [
        pytest.param(b"this is not json", OCI_MANIFEST, id="not-json"),
        pytest.param(b"\xff\xfe", OCI_MANIFEST, id="not-utf8"),
        pytest.param(b"[1, 2]", OCI_MANIFEST, id="not-an-object"),
        pytest.param(b"{}", OCI_MANIFEST, id="empty-object"),
        pytest.param(
            json.dumps({"schemaVersion": 1, "mediaType": OCI_MANIFEST}).encode(),
            OCI_MANIFEST,
            id="schema-version-1",
        ),
        pytest.param(
            json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX}).encode(),
            OCI_INDEX,
            id="index-without-manifests",
        ),
        pytest.param(
            json.dumps({"schemaVersion": 2, "mediaType": "text/plain"}).encode(),
            "text/plain",
            id="unknown-media-type",
        ),
        pytest.param(
            json.dumps(
                {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}
            ).encode(),
            OCI_MANIFEST,
            id="descriptor-without-digest",
        ),
        pytest.param(
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"digest": "sha256:abc", "size": 1},
                    "layers": [],
                }
            ).encode(),
            OCI_MANIFEST,
            id="malformed-descriptor-digest",
        ),
    ],
)
def test_an_invalid_manifest_is_manifest_invalid_and_nothing_is_committed(
    pusher, body, content_type
):
    pusher.push_blob(NAME, os.urandom(10))
    version_before = latest_version(NAME).number

    response = pusher.push_manifest(NAME, "latest", body, content_type)

    assert response.status_code == 400, error_of(response)
    assert error_codes(response) == ["MANIFEST_INVALID"]
    assert latest_version(NAME).number == version_before
    assert not Manifest.objects.exists()


@pytest.mark.parametrize(
    "declared, header",
    [(OCI_MANIFEST, DOCKER_MANIFEST_V2), (DOCKER_MANIFEST_V2, OCI_MANIFEST)],
)
def test_a_media_type_that_contradicts_content_type_is_manifest_invalid(pusher, declared, header):
    config_digest, config_size, layers, layer_data = push_blobs(pusher)
    body = image_manifest(config_digest, config_size, layers, layer_data, declared)

    response = pusher.push_manifest(NAME, "latest", body, header)

    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_INVALID"]
    assert not Manifest.objects.exists()


def test_a_manifest_referencing_a_missing_blob_is_manifest_blob_unknown_and_commits_nothing(
    pusher,
):
    config_digest, config_size, layers, layer_data = push_blobs(pusher)
    missing_data = os.urandom(50)
    missing = sha256_digest(missing_data)
    body = image_manifest(
        config_digest, config_size, [*layers, missing], [*layer_data, missing_data]
    )
    version_before = latest_version(NAME).number

    response = pusher.push_manifest(NAME, "latest", body)

    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert json.loads(response.content)["errors"][0]["detail"] == {"unknown": [missing]}
    assert latest_version(NAME).number == version_before
    assert not Manifest.objects.exists()
    assert not Tag.objects.exists()
    # The blobs of the push stay pending: the client may push the missing one and retry.
    assert pending_digests(NAME) == {config_digest, *layers}


def test_a_manifest_whose_blob_lives_only_in_another_repository_is_manifest_blob_unknown(
    pusher, admin_registry
):
    other = admin_registry("admin/other")
    foreign_data = os.urandom(80)
    foreign = other.push_blob("admin/other", foreign_data)
    config_digest, config_size, _, _ = push_blobs(pusher, count=1)
    body = image_manifest(config_digest, config_size, [foreign], [foreign_data])

    response = pusher.push_manifest(NAME, "latest", body)

    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]


def test_a_push_by_a_digest_that_is_not_the_bodys_is_digest_invalid(pusher):
    config_digest, config_size, layers, layer_data = push_blobs(pusher)
    body = image_manifest(config_digest, config_size, layers, layer_data)
    wrong = sha256_digest(body + b" ")

    response = pusher.push_manifest(NAME, wrong, body)

    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]
    assert not Manifest.objects.exists()


def test_a_push_by_digest_commits_the_manifest_without_a_tag(pusher):
    image = pusher.push_image(NAME, tag=None)

    assert latest_content(NAME)["manifests"] == {image.digest}
    assert latest_content(NAME)["tags"] == set()
    assert pusher.get(f"/v2/{NAME}/manifests/{image.digest}").status_code == 200


def test_a_retag_moves_the_tag_and_drops_the_old_tag_from_the_latest_version(pusher):
    first = pusher.push_image(NAME, tag="latest")
    second = pusher.push_image(NAME, tag="latest")

    content = latest_content(NAME)

    assert content["tags"] == {f"latest={second.digest}"}
    assert {first.digest, second.digest} <= content["manifests"]
    pulled = pusher.get(f"/v2/{NAME}/manifests/latest")
    assert pulled["Docker-Content-Digest"] == second.digest
    assert pusher.get(f"/v2/{NAME}/manifests/{first.digest}").status_code == 200


def test_the_same_manifest_under_two_tags_is_one_manifest(pusher):
    image = pusher.push_image(NAME, tag="v1")

    response = pusher.push_manifest(NAME, "v1.0", image.body)

    assert response.status_code == 201
    assert Manifest.objects.filter(digest=image.digest).count() == 1
    assert latest_content(NAME)["tags"] == {f"v1={image.digest}", f"v1.0={image.digest}"}


def test_each_manifest_push_makes_exactly_one_new_version(pusher):
    pusher.push_blob(NAME, os.urandom(10))
    numbers = [latest_version(NAME).number]
    for tag in ("a", "b", "c"):
        pusher.push_image(NAME, tag=tag)
        numbers.append(latest_version(NAME).number)

    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2, numbers[0] + 3]


@pytest.mark.parametrize(
    "path, code",
    [
        pytest.param("/v2/admin/nothing-here/manifests/latest", "NAME_UNKNOWN", id="name"),
        pytest.param(f"/v2/{NAME}/manifests/nosuchtag", "MANIFEST_UNKNOWN", id="tag"),
        pytest.param(f"/v2/{NAME}/manifests/sha256:{'0' * 64}", "MANIFEST_UNKNOWN", id="digest"),
        pytest.param(f"/v2/{NAME}/manifests/.bad", "MANIFEST_UNKNOWN", id="invalid-tag"),
        pytest.param("/v2/admin/nothing-here/tags/list", "NAME_UNKNOWN", id="tags-of-name"),
        # A blob of an unknown name is simply unknown, as in the reference registry.
        pytest.param(f"/v2/admin/nothing-here/blobs/sha256:{'0' * 64}", "BLOB_UNKNOWN", id="blob"),
    ],
)
def test_pulling_what_is_not_there_is_404_with_its_code(admin, registry, pushed, path, code):
    name = path.split("/")[2] + "/" + path.split("/")[3]
    client = registry(admin, f"repository:{name}:pull")

    response = client.get(path)

    assert response.status_code == 404, error_of(response)
    assert error_codes(response) == [code]


def test_pending_blobs_are_visible_to_head_and_leave_pending_once_committed(pusher):
    config_digest, config_size, layers, layer_data = push_blobs(pusher)
    for digest in (config_digest, *layers):
        assert pusher.head(f"/v2/{NAME}/blobs/{digest}").status_code == 200
    assert pending_digests(NAME) == {config_digest, *layers}
    assert latest_content(NAME)["blobs"] == set()

    body = image_manifest(config_digest, config_size, layers, layer_data)
    assert pusher.push_manifest(NAME, "latest", body).status_code == 201

    assert pending_digests(NAME) == set()
    assert latest_content(NAME)["blobs"] == {config_digest, *layers}
    for digest in (config_digest, *layers):
        assert pusher.head(f"/v2/{NAME}/blobs/{digest}").status_code == 200


def test_a_pending_blob_is_not_committed_by_a_manifest_that_does_not_reference_it(pusher):
    stray = pusher.push_blob(NAME, os.urandom(60))

    pusher.push_image(NAME, tag="latest")

    assert pending_digests(NAME) == {stray}
    assert stray not in latest_content(NAME)["blobs"]


@pytest.fixture
def run_orphan_cleanup(db, monkeypatch):
    """Run pulpcore's orphan cleanup as its task does, with no protection time."""

    def run() -> None:
        task = Task.objects.create(name="pulpcore.app.tasks.orphan.orphan_cleanup", state="running")
        with monkeypatch.context() as patch:
            patch.setattr(Task, "current", staticmethod(lambda: task))
            orphan_cleanup(orphan_protection_time=0)

    return run


def test_orphan_cleanup_removes_no_pending_content(pusher, run_orphan_cleanup):
    pending = pusher.push_blob(NAME, os.urandom(70))
    committed = pusher.push_image(NAME, tag="latest")
    orphan = Blob.objects.create(digest=sha256_digest(os.urandom(70)))

    run_orphan_cleanup()

    assert not Content.objects.filter(pk=orphan.pk).exists(), "cleanup did not run"
    assert Blob.objects.filter(digest=pending).exists()
    assert PendingContent.objects.filter(content__pk=Blob.objects.get(digest=pending).pk).exists()
    assert pusher.head(f"/v2/{NAME}/blobs/{pending}").status_code == 200
    assert set(committed.blob_digests) <= latest_content(NAME)["blobs"]
    # The push can still finish with the pending blob.
    config_digest, config_size, _, _ = push_blobs(pusher, count=1)
    body = image_manifest(config_digest, config_size, [pending], [b"x" * 70])
    assert pusher.push_manifest(NAME, "after-cleanup", body).status_code == 201


def test_a_manifest_larger_than_4_mib_is_refused(pusher):
    body = b'{"schemaVersion": 2, "padding": "' + b"x" * (4 * 1024 * 1024) + b'"}'

    response = pusher.push_manifest(NAME, "huge", body)

    assert response.status_code == 413
    assert error_codes(response) == ["SIZE_INVALID"]
