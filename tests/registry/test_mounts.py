"""Cross-repository blob mount (OCI distribution spec, "Mounting a blob from another repository").

``POST /v2/<target>/blobs/uploads/?mount=<digest>[&from=<source>]`` links a blob the caller may
read elsewhere into the target: 201 with Location and Docker-Content-Digest, no byte sent. When
it cannot (unknown blob, unreadable source, a token without pull on the source), the answer is
exactly a plain POST's: 202 and a new upload session, telling nothing about where the blob is.

The world of these stories: three repositories, each holding one blob no other has.

- ``alice/private``: private, in alice's namespace (alice owns it, dave consumes it);
- ``alice/public``: public;
- ``eve/private``: private, eve's.

Each holds its blob twice over: one uploaded by a push not yet committed (readable, and so
mountable, only by those who may push to the holder), one a layer of a committed, tagged image.

Each caller pushes to a target of their own namespace; anonymous callers may push nowhere.
"""

from __future__ import annotations

import os
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from harness.oci_images import sha256_digest
from pulp_container.app.models import BlobTransfer, BlobUpload, ContainerRepository
from pulp_container.constants import TransferOutcome
from tests.registry.client import (
    RegistryClient,
    error_codes,
    error_of,
    make_distribution,
    mint_token,
    pending_digests,
)

HOLDERS = ["alice/private", "alice/public", "eve/private"]
NONEXISTENT = "nobody/nothing"
TARGET = {
    "admin": "admin/target",
    "alice": "alice/target",
    "dave": "dave/target",
    "eve": "eve/target",
}
# state -> caller -> the holders whose blob they may read: committed content by those who may
# pull the holder, pending content (a push in progress) only by those who may push there.
READABLE = {
    "committed": {
        "admin": set(HOLDERS),
        "alice": {"alice/private", "alice/public"},
        "dave": {"alice/private", "alice/public"},
        "eve": {"alice/public", "eve/private"},
    },
    "pending": {
        "admin": set(HOLDERS),
        "alice": {"alice/private", "alice/public"},
        "dave": set(),
        "eve": {"eve/private"},
    },
}
ABSENT = sha256_digest(b"a blob nobody ever pushed")
MALFORMED = "sha256:not-a-digest"
UPLOAD_LOCATION = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[0-9a-f-]{36})$")


@pytest.fixture(scope="module")
def world(shared_people) -> dict[str, dict[str, str]]:
    """state -> holder -> the digest of the blob only that holder has, made once per module.

    ``pending``: uploaded by a push not yet committed; ``committed``: a layer of a tagged image.
    """
    scopes = [f"repository:{name}:pull,push" for name in HOLDERS]
    client = RegistryClient(f"Bearer {mint_token(shared_people['admin'], *scopes)}")
    world: dict[str, dict[str, str]] = {"pending": {}, "committed": {}}
    for name in HOLDERS:
        make_distribution(name, private=name.endswith("private"))
        world["pending"][name] = client.push_blob(name, os.urandom(256))
        image = client.push_image(name, layers=[os.urandom(256)])
        world["committed"][name] = image.layer_digests[0]
    return world


@pytest.fixture
def blobs(world, db) -> dict[str, dict[str, str]]:
    return world


def mount_client(people, registry, who: str, source: str | None) -> RegistryClient:
    """The caller's client, with the token a client asks for when it plans this mount."""
    target = TARGET.get(who, f"{who}/target")
    scopes = [f"repository:{target}:pull,push"]
    if source:
        scopes.append(f"repository:{source}:pull")
    return registry(people[who], *scopes)


def mount(client: RegistryClient, target: str, digest: str, source: str | None):
    query = f"mount={digest}" + (f"&from={source}" if source else "")
    return client.post(f"/v2/{target}/blobs/uploads/?{query}")


def assert_mounted(response, target: str, digest: str) -> None:
    assert response.status_code == 201, error_of(response)
    assert response["Location"] == f"/v2/{target}/blobs/{digest}"
    assert response["Docker-Content-Digest"] == digest
    assert response.content == b""
    assert digest in pending_digests(target)
    assert not BlobUpload.objects.filter(repository__name=target).exists()


def assert_upload_instead(response, target: str, digest: str) -> None:
    assert response.status_code == 202, error_of(response)
    location = UPLOAD_LOCATION.match(response["Location"])
    assert location and location["name"] == target, response["Location"]
    assert response["Docker-Upload-UUID"] == location["id"]
    assert response["Range"] == "0-0"
    assert response.content == b""
    assert "Docker-Content-Digest" not in response
    assert digest not in pending_digests(target)
    assert BlobUpload.objects.filter(pk=location["id"], repository__name=target).exists()


def source_of(kind: str, holder: str) -> str | None:
    return {"holder": holder, "nonexistent": NONEXISTENT, "none": None}[kind]


# who, holder of the mounted blob, what `from` names.
PRESENT = [
    (state, who, holder, source)
    for state in ("pending", "committed")
    for who in TARGET
    for holder in HOLDERS
    for source in ("holder", "nonexistent", "none")
]


@pytest.mark.parametrize("state, who, holder, source", PRESENT)
def test_a_blob_the_caller_may_read_is_mounted_and_any_other_is_uploaded(
    everyone, registry, blobs, state, who, holder, source
):
    """Found where the caller may pull (the source, or automatically elsewhere): 201."""
    target, digest = TARGET[who], blobs[state][holder]
    client = mount_client(everyone, registry, who, source_of(source, holder))

    response = mount(client, target, digest, source_of(source, holder))

    if holder in READABLE[state][who]:
        assert_mounted(response, target, digest)
        assert BlobTransfer.objects.filter(
            repository_name=target, digest=digest, outcome=TransferOutcome.MOUNTED
        ).exists()
    else:
        assert_upload_instead(response, target, digest)


@pytest.mark.parametrize("who", list(TARGET))
@pytest.mark.parametrize("source", [*HOLDERS, NONEXISTENT, None])
def test_a_blob_unknown_to_the_registry_is_uploaded(everyone, registry, blobs, who, source):
    target = TARGET[who]

    response = mount(mount_client(everyone, registry, who, source), target, ABSENT, source)

    assert_upload_instead(response, target, ABSENT)


@pytest.mark.parametrize(
    "who, source, digest",
    [
        *((who, "alice/public", MALFORMED) for who in TARGET),
        *((who, None, MALFORMED) for who in TARGET),
        ("alice", None, "sha256:" + "A" * 64),
        ("alice", "alice/public", "md5:" + "0" * 32),
    ],
)
def test_a_malformed_mount_digest_is_digest_invalid(everyone, registry, who, source, digest):
    target = TARGET[who]

    response = mount(mount_client(everyone, registry, who, source), target, digest, source)

    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]
    assert not BlobUpload.objects.exists()
    assert pending_digests(target) == set()


@pytest.mark.parametrize("source", ["alice/public", "alice/private", None])
def test_a_caller_who_may_not_push_mounts_nothing(registry, blobs, source):
    client = registry(None, "repository:anonymous/target:pull,push", "repository:alice/public:pull")

    response = mount(client, "anonymous/target", blobs["committed"]["alice/public"], source)

    assert response.status_code == 401
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert not ContainerRepository.objects.filter(name="anonymous/target").exists()
    assert not BlobUpload.objects.exists()


@pytest.mark.parametrize("who", list(TARGET))
def test_a_fallback_is_shaped_exactly_like_a_plain_post(everyone, registry, blobs, who):
    target = TARGET[who]
    client = mount_client(everyone, registry, who, "eve/private")
    plain = client.post(f"/v2/{target}/blobs/uploads/")

    fallback = mount(client, target, ABSENT, "eve/private")

    assert_upload_instead(fallback, target, ABSENT)
    assert fallback.status_code == plain.status_code
    assert sorted(fallback.headers) == sorted(plain.headers)
    for header in ("Range", "Content-Length", "Docker-Distribution-Api-Version"):
        assert fallback[header] == plain[header]


@pytest.mark.parametrize("who", list(TARGET))
@pytest.mark.parametrize("holder", HOLDERS)
@pytest.mark.parametrize("state", ["pending", "committed"])
def test_head_and_mount_agree(everyone, registry, blobs, state, who, holder):
    """A caller told by HEAD that the source has the blob can mount it from there, and only then."""
    digest = blobs[state][holder]
    client = mount_client(everyone, registry, who, holder)

    head = client.head(f"/v2/{holder}/blobs/{digest}")
    response = mount(client, TARGET[who], digest, holder)

    assert (head.status_code == 200) is (holder in READABLE[state][who])
    if head.status_code == 200:
        assert_mounted(response, TARGET[who], digest)
    else:
        assert_upload_instead(response, TARGET[who], digest)


def test_a_token_without_pull_on_the_source_mounts_by_the_callers_permission_never_401(
    everyone, registry, blobs
):
    """Clients that ask only for the challenged scopes (the target's) mount like the others:
    the caller's permission decides, the same with ``from``, without it, or with its scope."""
    client = registry(everyone["alice"], "repository:alice/target:pull,push")
    digest = blobs["committed"]["alice/private"]

    assert_mounted(mount(client, "alice/target", digest, "alice/private"), "alice/target", digest)


def test_a_blob_uploaded_by_a_push_not_yet_committed_is_mountable_by_the_same_user(
    everyone, registry
):
    make_distribution("alice/first", private=True)
    client = registry(
        everyone["alice"], "repository:alice/first:pull,push", "repository:alice/second:pull,push"
    )
    digest = client.push_blob("alice/first", os.urandom(400))
    assert digest in pending_digests("alice/first")

    response = mount(client, "alice/second", digest, "alice/first")

    assert_mounted(response, "alice/second", digest)
    assert digest in pending_digests("alice/first")


def test_a_mounted_blob_is_committed_by_the_targets_manifest(everyone, registry, blobs):
    client = registry(
        everyone["alice"], "repository:alice/target:pull,push", "repository:alice/public:pull"
    )
    source = client.get("/v2/alice/public/manifests/latest")
    assert source.status_code == 200
    assert_mounted(
        mount(client, "alice/target", blobs["committed"]["alice/public"], "alice/public"),
        "alice/target",
        blobs["committed"]["alice/public"],
    )
    config = source.json()["config"]["digest"]
    assert_mounted(mount(client, "alice/target", config, "alice/public"), "alice/target", config)

    response = client.push_manifest("alice/target", "latest", source.content)

    assert response.status_code == 201, error_of(response)
    assert pending_digests("alice/target") == set()
    pulled = client.get(f"/v2/alice/target/blobs/{blobs['committed']['alice/public']}")
    assert pulled.status_code == 200


def test_mounting_a_blob_the_target_already_has_is_201_and_changes_nothing(
    everyone, registry, blobs
):
    client = registry(everyone["alice"], "repository:alice/private:pull,push")

    response = mount(client, "alice/private", blobs["committed"]["alice/private"], None)

    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == blobs["committed"]["alice/private"]


# --- a HEAD miss by a pusher links the blob (CONTAINER_LINK_BLOBS_ON_HEAD) ----------------------


@pytest.mark.parametrize("who", list(TARGET))
@pytest.mark.parametrize("holder", HOLDERS)
def test_a_pushers_head_miss_links_a_blob_they_may_read_elsewhere(
    everyone, registry, blobs, who, holder
):
    """Fresh CI runners ask the target, not for a mount: the answer is the mount's answer.

    The target exists (a push to it has started): a HEAD links only into an existing repository.
    """
    target, digest = TARGET[who], blobs["committed"][holder]
    client = registry(everyone[who], f"repository:{target}:pull,push")
    client.start_upload(target)

    response = client.head(f"/v2/{target}/blobs/{digest}")

    if holder in READABLE["committed"][who]:
        assert response.status_code == 200, error_of(response)
        assert response["Docker-Content-Digest"] == digest
        assert digest in pending_digests(target)
        assert BlobTransfer.objects.filter(
            repository_name=target, digest=digest, outcome=TransferOutcome.LINKED_ON_HEAD
        ).exists()
    else:
        assert response.status_code == 404
        assert digest not in pending_digests(target)


@pytest.mark.parametrize(
    "who, scopes",
    [
        pytest.param("dave", ["repository:alice/target:pull"], id="puller-only"),
        pytest.param("alice", ["repository:alice/target:pull"], id="token-without-push"),
        pytest.param("anonymous", ["repository:alice/target:pull"], id="anonymous"),
    ],
)
def test_a_head_miss_by_someone_who_may_not_push_links_nothing(
    everyone, registry, blobs, who, scopes
):
    make_distribution("alice/target", private=False)
    digest = blobs["committed"]["alice/public"]

    response = registry(everyone[who], *scopes).head(f"/v2/alice/target/blobs/{digest}")

    assert response.status_code == 404
    assert pending_digests("alice/target") == set()


def test_with_linking_on_head_turned_off_a_head_miss_is_a_plain_404(
    settings, everyone, registry, blobs
):
    settings.CONTAINER_LINK_BLOBS_ON_HEAD = False
    digest = blobs["committed"]["alice/public"]
    client = registry(everyone["alice"], "repository:alice/target:pull,push")

    response = client.head(f"/v2/alice/target/blobs/{digest}")

    assert response.status_code == 404
    assert not ContainerRepository.objects.filter(name="alice/target").exists()


# --- a refusal costs what an unknown digest costs -------------------------------------------

_VARYING = re.compile(
    r"sha256:[0-9a-f]{64}|[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"
    r"|'\d{4}-\d\d-\d\d[ T][0-9:.+-]+'|\"s\d+_x\d+\""
)


def _work(client: RegistryClient, kind: str, digest: str) -> list[str]:
    """The SQL a request runs, with digests, ids and times masked."""
    with CaptureQueriesContext(connection) as queries:
        if kind == "mount":
            mount(client, "eve/target", digest, "alice/private")
        else:
            client.request(kind.upper(), f"/v2/eve/target/blobs/{digest}")
    return [_VARYING.sub("?", query["sql"]) for query in queries.captured_queries]


@pytest.mark.parametrize("kind", ["mount", "head", "get"])
def test_a_blob_held_only_where_the_caller_cannot_read_costs_what_an_unknown_one_does(
    everyone, registry, blobs, kind
):
    """The same queries, in the same order, with the same plans: the time of the answer cannot
    tell them apart (benchmarks/existence_timing.py measures the time itself)."""
    client = registry(everyone["eve"], "repository:eve/target:pull,push")
    client.push_blob("eve/target", os.urandom(64))  # the target exists, as in a real push
    hidden = blobs["committed"]["alice/private"]

    assert _work(client, kind, hidden) == _work(client, kind, ABSENT)
