"""Faults and bad input (issue 13): never a 500, never stuck, nothing lost.

One table per class of input a hostile client or a bad day sends; each answer is OCI error
JSON with the code the spec (and docs/oci-support.md) gives, and nothing is stored.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import pytest
from django.db import OperationalError
from gunicorn.http.errors import NoMoreData
from pulpcore.plugin.util import remove_role

from harness.oci_images import sha256_digest
from pulp_container.app import upload_files
from pulp_container.app.exceptions import BlobUploadInvalid
from pulp_container.app.models import (
    BlobUpload,
    ContainerDistribution,
    ContainerNamespace,
    ContainerRepository,
    Manifest,
)
from pulp_container.app.request_body import _Guarded
from pulp_container.app.services import manifests as manifest_service
from pulp_container.app.services import uploads
from tests.registry.client import (
    CONFIG_MEDIA_TYPE,
    LAYER_MEDIA_TYPE,
    NAMESPACE_ROLES,
    RegistryClient,
    error_codes,
    error_of,
    make_distribution,
    mint_token,
    push_scopes,
)

NAME = "admin/faults"
NEVER_PUSHED = "admin/never-pushed"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER_SIZE = 15000


@pytest.fixture
def pusher(admin, admin_registry) -> RegistryClient:
    return admin_registry(NAME, NEVER_PUSHED)


@pytest.fixture
def blobs(pusher) -> dict[str, Any]:
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = os.urandom(LAYER_SIZE)
    return {
        "config": (pusher.push_blob(NAME, config), len(config)),
        "layer": (pusher.push_blob(NAME, layer), len(layer)),
    }


def manifest(blobs: dict[str, Any], **changes: Any) -> dict[str, Any]:
    (config, config_size), (layer, layer_size) = blobs["config"], blobs["layer"]
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE[OCI_MANIFEST],
            "digest": config,
            "size": config_size,
        },
        "layers": [
            {"mediaType": LAYER_MEDIA_TYPE[OCI_MANIFEST], "digest": layer, "size": layer_size}
        ],
    }
    for path, value in changes.items():
        target = document
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return document


def assert_oci_error(response, status: int, code: str) -> None:
    assert response.status_code == status, error_of(response)
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert error_codes(response) == [code], error_of(response)


# --- 1 and 2: manifests that must be refused -------------------------------------------------

BAD_MANIFESTS = {
    # NUL and lone surrogates (the database cannot store them: 500s before).
    "nul-in-annotation": {"annotations": {"a": "x\u0000y"}},
    "nul-in-media-type": {"config__mediaType": "application/\u0000json"},
    "nul-in-annotation-key": {"annotations": {"a\u0000": "x"}},
    # Wrong JSON types.
    "layers-not-a-list": {"layers": "sha256:abc"},
    "config-media-type-a-list": {"config__mediaType": ["a"]},
    "size-a-string": {"layers__0__size": "15000"},
    "size-a-float": {"layers__0__size": 15000.0},
    "size-a-bool": {"config__size": True},
    "urls-a-string": {"layers__0__urls": "https://example.com"},
    "schema-version-a-string": {"schemaVersion": "2"},
    "media-type-a-number": {"mediaType": 5},
    # Sizes against the stored blobs.
    "layer-size-not-the-blobs": {"layers__0__size": 1},
    "negative-size": {"layers__0__size": -1},
    "size-beyond-int64": {"layers__0__size": 2**64},
    # subject, annotations, artifactType.
    "subject-digest-a-number": {
        "subject": {"mediaType": OCI_MANIFEST, "digest": 5, "size": 1},
    },
    "subject-not-a-digest": {
        "subject": {"mediaType": OCI_MANIFEST, "digest": "not-a-digest", "size": 1},
    },
    "subject-not-an-object": {"subject": "sha256:" + "a" * 64},
    "annotations-not-strings": {"annotations": {"a": 1}},
    "annotations-a-list": {"annotations": ["a"]},
    "layer-annotations-nested": {"layers__0__annotations": {"a": {"b": "c"}}},
    "artifact-type-a-number": {"artifactType": 7},
}


@pytest.mark.parametrize("changes", BAD_MANIFESTS.values(), ids=BAD_MANIFESTS.keys())
def test_an_invalid_manifest_is_manifest_invalid_and_stores_nothing(pusher, blobs, changes):
    body = json.dumps(manifest(blobs, **changes)).encode()

    response = pusher.push_manifest(NAME, "latest", body)

    assert_oci_error(response, 400, "MANIFEST_INVALID")
    assert not Manifest.objects.filter(digest=sha256_digest(body)).exists()


def _with_lone_surrogate(blobs) -> bytes:
    # json.dumps escapes it as \ud800, which json.loads reads back as a lone surrogate.
    return json.dumps(manifest(blobs, annotations={"a": "\ud800"})).encode()


BAD_BODIES = {
    "lone-surrogate": _with_lone_surrogate,
    "utf-16": lambda blobs: json.dumps(manifest(blobs)).encode("utf-16"),
    "utf-8-bom": lambda blobs: b"\xef\xbb\xbf" + json.dumps(manifest(blobs)).encode(),
    "latin-1": lambda blobs: json.dumps(
        manifest(blobs, annotations={"a": "\xe9"}), ensure_ascii=False
    ).encode("latin-1"),
    "nan": lambda blobs: json.dumps(manifest(blobs, layers__0__size=float("nan"))).encode(),
    "deep-nesting": lambda blobs: b'{"annotations":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


@pytest.mark.parametrize("make_body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_manifest_body_not_in_utf8_json_is_manifest_invalid(pusher, blobs, make_body):
    response = pusher.push_manifest(NAME, "latest", make_body(blobs))

    assert_oci_error(response, 400, "MANIFEST_INVALID")


def test_a_valid_manifest_with_subject_annotations_and_artifact_type_is_accepted(pusher, blobs):
    subject = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "b" * 64, "size": 10}
    body = json.dumps(
        manifest(blobs, subject=subject, annotations={"a": "b"}, artifactType="x/y")
    ).encode()

    response = pusher.push_manifest(NAME, "latest", body)

    assert response.status_code == 201, error_of(response)


def test_a_tag_with_a_colon_is_manifest_invalid_as_the_docs_say(pusher, blobs):
    body = json.dumps(manifest(blobs)).encode()

    assert_oci_error(pusher.push_manifest(NAME, "latest:foo", body), 400, "MANIFEST_INVALID")
    assert_oci_error(pusher.get(f"/v2/{NAME}/manifests/latest:foo"), 404, "MANIFEST_UNKNOWN")
    assert_oci_error(pusher.get(f"/v2/{NAME}/manifests/sha256:abc"), 400, "DIGEST_INVALID")


# --- query parameters and methods ------------------------------------------------------------


@pytest.fixture
def lister(admin, registry, pusher, blobs) -> RegistryClient:
    return registry(admin, *push_scopes(NAME), "registry:catalog:*")


@pytest.mark.parametrize(
    "path, status, code",
    [
        (f"/v2/{NAME}/tags/list?last=%00", 400, "UNSUPPORTED"),
        ("/v2/_catalog?last=%00", 400, "UNSUPPORTED"),
        ("/v2/_catalog?last=a%00b&n=1", 400, "UNSUPPORTED"),
        (f"/v2/{NAME}/tags/list?n=1&x%00=1", 400, "UNSUPPORTED"),
        (f"/v2/{NAME}/referrers/sha256:{'a' * 64}?artifactType=%00", 400, "UNSUPPORTED"),
        (f"/v2/{NAME}/referrers/sha256:{'a' * 64}?last=%ed%a0%80", 200, None),
        (f"/v2/{NAME}/blobs/uploads/?mount=sha256:{'a' * 64}&from=a%00b", 400, "UNSUPPORTED"),
        (f"/v2/{NAME}/tags/list?n=99999999999999999999999999", 200, None),
        ("/v2/_catalog?n=99999999999999999999999999", 200, None),
        (f"/v2/{NAME}/tags/list?n=18446744073709551616", 200, None),
        (f"/v2/{NAME}/tags/list?n=-5", 200, None),
        (f"/v2/{NAME}/tags/list?n=1e3", 200, None),
    ],
)
def test_odd_query_parameters_are_answered_not_500(lister, path, status, code):
    method = "POST" if "/blobs/uploads/" in path else "GET"

    response = lister.request(method, path)

    if code is None:
        assert response.status_code == status, error_of(response)
    else:
        assert_oci_error(response, status, code)


@pytest.mark.parametrize(
    "path",
    ["/v2/", f"/v2/{NAME}/manifests/latest", f"/v2/{NAME}/blobs/uploads/", "/v2/_catalog"],
)
@pytest.mark.parametrize("authorized", [True, False])
def test_options_is_405_unsupported_json_and_reveals_nothing(lister, path, authorized):
    client = lister if authorized else RegistryClient()

    response = client.request("OPTIONS", path)

    assert_oci_error(response, 405, "UNSUPPORTED")
    assert b"docstring" not in response.content and b"renders" not in response.content


def test_a_basic_username_with_nul_is_unauthorized_not_500(db):
    client = RegistryClient("Basic " + base64.b64encode(b"ad\x00min:x").decode())

    assert_oci_error(client.get("/v2/"), 401, "UNAUTHORIZED")


# --- the database away -----------------------------------------------------------------------


def test_a_database_error_below_a_view_is_503_unavailable(pusher, blobs, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed")

    monkeypatch.setattr(manifest_service, "find_manifest", unreachable)

    assert_oci_error(pusher.get(f"/v2/{NAME}/manifests/latest"), 503, "UNAVAILABLE")


# --- reads never write -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_an_upload_session_read_on_a_never_pushed_name_creates_nothing(pusher, method):
    upload_id = "00000000-0000-0000-0000-000000000001"

    response = pusher.request(method, f"/v2/{NEVER_PUSHED}/blobs/uploads/{upload_id}")

    assert response.status_code == 404
    assert not ContainerRepository.objects.filter(name=NEVER_PUSHED).exists()
    assert not ContainerDistribution.objects.filter(base_path=NEVER_PUSHED).exists()


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_blob_miss_on_a_never_pushed_name_creates_nothing_even_for_a_pusher(pusher, method):
    response = pusher.request(method, f"/v2/{NEVER_PUSHED}/blobs/{sha256_digest(b'nowhere')}")

    assert response.status_code == 404
    assert not ContainerRepository.objects.filter(name=NEVER_PUSHED).exists()


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_blob_read_on_a_never_pushed_name_by_someone_who_may_not_push_creates_nothing(
    blobs, registry, eve, method
):
    digest, _ = blobs["layer"]
    reader = registry(eve, f"repository:{NEVER_PUSHED}:pull")

    response = reader.request(method, f"/v2/{NEVER_PUSHED}/blobs/{digest}")

    assert response.status_code in (401, 404)
    assert not ContainerRepository.objects.filter(name=NEVER_PUSHED).exists()


def test_a_pushers_head_link_is_the_first_write_of_their_push(pusher, blobs):
    """Link-on-HEAD (CONTAINER_LINK_BLOBS_ON_HEAD) writes, by design, for pushers only: a fresh
    runner's first request to a new child name is this HEAD, and the link replaces an upload."""
    digest, size = blobs["layer"]

    response = pusher.head(f"/v2/{NEVER_PUSHED}/blobs/{digest}")

    assert response.status_code == 200
    assert response["Content-Length"] == str(size)
    assert ContainerRepository.objects.filter(name=NEVER_PUSHED).exists()


# --- commits you can retry -------------------------------------------------------------------


def _patched_upload(client: RegistryClient, data: bytes) -> str:
    location = client.start_upload(NAME)["Location"]
    response = client.patch(location, data, Content_Range=f"0-{len(data) - 1}")
    assert response.status_code == 202, error_of(response)
    return response["Location"]


def test_a_final_put_whose_upload_file_is_gone_but_whose_blob_exists_is_201(pusher):
    data = os.urandom(4000)
    digest = sha256_digest(data)
    location = _patched_upload(pusher, data)
    upload = BlobUpload.objects.get()
    pusher.push_blob(NAME, data)  # the crashed commit had stored the blob
    upload_files.remove(upload.pk)  # ... and moved the file

    response = pusher.put(f"{location}?digest={digest}")

    assert response.status_code == 201, error_of(response)
    assert response["Docker-Content-Digest"] == digest
    assert not BlobUpload.objects.exists()


def test_a_final_put_for_another_digest_after_the_file_is_gone_is_refused(pusher):
    data = os.urandom(4000)
    other = os.urandom(4000)
    location = _patched_upload(pusher, data)
    pusher.push_blob(NAME, other)
    upload_files.remove(BlobUpload.objects.get().pk)

    response = pusher.put(f"{location}?digest={sha256_digest(other)}")

    assert_oci_error(response, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("crash_in", ["store_linked_blob", "link_pending"])
def test_a_final_put_that_crashed_after_storing_the_bytes_succeeds_when_retried(
    pusher, monkeypatch, crash_in
):
    data = os.urandom(6000)
    digest = sha256_digest(data)
    location = _patched_upload(pusher, data)
    real = getattr(uploads, crash_in)

    def crash(*args, **kwargs):
        raise RuntimeError("the worker died here")

    monkeypatch.setattr(uploads, crash_in, crash)
    assert pusher.put(f"{location}?digest={digest}").status_code == 500
    monkeypatch.setattr(uploads, crash_in, real)

    response = pusher.put(f"{location}?digest={digest}")

    assert response.status_code == 201, error_of(response)
    get = pusher.get(f"/v2/{NAME}/blobs/{digest}")
    assert b"".join(get.streaming_content) == data


def test_a_final_put_whose_bytes_are_lost_asks_the_client_to_start_again(pusher):
    data = os.urandom(4000)
    location = _patched_upload(pusher, data)
    upload_files.remove(BlobUpload.objects.get().pk)

    response = pusher.put(f"{location}?digest={sha256_digest(data)}")

    assert_oci_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    assert not BlobUpload.objects.exists()


# --- uploads that outlast their token --------------------------------------------------------


@pytest.fixture
def short_tokens(registry_settings):
    registry_settings.TOKEN_EXPIRATION_TIME = 1
    registry_settings.TOKEN_LEEWAY = 0
    return registry_settings


def test_an_upload_started_under_a_valid_token_continues_after_it_expired(admin, short_tokens):
    short_tokens.TOKEN_EXPIRATION_TIME = 3  # 1 s: a busy machine may take that to start it
    client = RegistryClient(f"Bearer {mint_token(admin, *push_scopes(NAME))}")
    location = client.start_upload(NAME)["Location"]
    data = os.urandom(3000)
    time.sleep(3.2)
    short_tokens.TOKEN_EXPIRATION_TIME = 60  # the session stays active within one lifetime

    patched = client.patch(location, data, Content_Range=f"0-{len(data) - 1}")
    assert patched.status_code == 202, error_of(patched)
    put = client.put(f"{patched['Location']}?digest={sha256_digest(data)}")

    assert put.status_code == 201, error_of(put)


def test_an_expired_token_starts_nothing_and_continues_no_one_elses_session(
    admin, alice, short_tokens, registry_settings
):
    registry_settings.TOKEN_EXPIRATION_TIME = 60
    theirs = RegistryClient(f"Bearer {mint_token(admin, *push_scopes('alice/app'))}")
    location = theirs.start_upload("alice/app")["Location"]
    registry_settings.TOKEN_EXPIRATION_TIME = 1
    mine = RegistryClient(f"Bearer {mint_token(alice, *push_scopes('alice/app'))}")
    time.sleep(1.2)
    registry_settings.TOKEN_EXPIRATION_TIME = 60

    assert_oci_error(mine.get(location), 401, "UNAUTHORIZED")
    assert_oci_error(mine.post("/v2/alice/app/blobs/uploads/"), 401, "UNAUTHORIZED")
    assert_oci_error(mine.get("/v2/alice/app/tags/list"), 401, "UNAUTHORIZED")


def test_past_its_token_a_session_goes_on_only_while_the_user_may_still_push(carol, short_tokens):
    """carol collaborates on alice's namespace, starts an upload, then loses her role: her
    expired token's old scopes do not carry the session on."""
    make_distribution("alice/app", private=True)
    client = RegistryClient(f"Bearer {mint_token(carol, *push_scopes('alice/app'))}")
    location = client.start_upload("alice/app")["Location"]
    time.sleep(1.2)
    short_tokens.TOKEN_EXPIRATION_TIME = 60
    namespace = ContainerNamespace.objects.get(name="alice")
    remove_role(NAMESPACE_ROLES["collaborator"], carol, namespace)

    assert_oci_error(client.get(location), 401, "UNAUTHORIZED")


def test_an_expired_token_cannot_revive_an_idle_session(admin, short_tokens):
    client = RegistryClient(f"Bearer {mint_token(admin, *push_scopes(NAME))}")
    location = client.start_upload(NAME)["Location"]
    time.sleep(1.2)

    # Idle for longer than a token lifetime (1 s): the session needs a fresh token.
    assert_oci_error(client.get(location), 401, "UNAUTHORIZED")


# --- a client that drops a chunked PATCH -----------------------------------------------------


@pytest.mark.parametrize("error", [NoMoreData(b""), ConnectionResetError(), TimeoutError()])
def test_a_client_that_stops_sending_is_a_broken_upload_not_a_server_error(error):
    class Dropped:
        def read(self, size: int = -1) -> bytes:
            raise error

    with pytest.raises(BlobUploadInvalid):
        _Guarded(Dropped()).read(10)
