"""Rows written in one statement (row_writes) are the rows Django's and pulpcore's saves write.

Each case makes the same objects twice: once through the ORM (``create()``, ``save()``, with
every override and hook of pulpcore's models), once the way the registry's hot path now does.
The rows must agree on every column but keys, names and timestamps.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from pulpcore.plugin.models import Artifact, ContentArtifact, Domain, RepositoryVersion

from pulp_container.app.models import (
    Blob,
    BlobUpload,
    ContainerDistribution,
    ContainerNamespace,
    ContainerRepository,
    Manifest,
    Tag,
)
from pulp_container.app.oci import Digest, RepositoryName
from pulp_container.app.row_writes import new_rows, recoverable, write_together
from pulp_container.app.services.repositories import repository_for_push
from pulp_container.app.services.uploads import blob_of_artifact
from tests.registry.client import error_of, image_manifest, push_scopes

# Differ between any two rows by design: keys, creation times, the names the cases choose.
_VOLATILE = {
    "pulp_id",
    "pulp_created",
    "pulp_last_updated",
    "timestamp_of_interest",
    "content_ptr_id",
    "repository_ptr_id",
    "distribution_ptr_id",
    "name",
    "base_path",
    "digest",
    "repository_id",
    "id",
}


def _row(model, pk, *volatile: str) -> dict:
    values = model.objects.filter(pk=pk).values()[0]
    return {k: v for k, v in values.items() if k not in _VOLATILE | set(volatile)}


def _rows_of(instance) -> dict:
    """Every concrete table's row of ``instance`` (its parents' too), by model name."""
    models = [*instance._meta.get_parent_list(), instance._meta.concrete_model]
    return {model.__name__: _row(model, instance.pk) for model in models}


def test_new_rows_writes_what_save_writes_for_a_blob_and_its_content_artifact(db, tmp_path):
    artifact = _artifact(b"blob bytes")
    saved = Blob.objects.create(digest=f"sha256:{'1' * 64}")
    ContentArtifact.objects.create(artifact=artifact, content=saved, relative_path="x")

    written = blob_of_artifact(Digest.parse(f"sha256:{'2' * 64}"), artifact)

    assert _rows_of(written) == _rows_of(saved)
    link = ContentArtifact.objects.get(content_id=written.pk)
    assert (link.artifact_id, link.relative_path) == (artifact.pk, f"sha256:{'2' * 64}")


def test_a_blob_stored_first_by_another_push_is_the_one_returned(db):
    artifact = _artifact(b"same bytes")
    digest = Digest.parse(f"sha256:{'3' * 64}")
    first = blob_of_artifact(digest, artifact)

    second = blob_of_artifact(digest, artifact)

    assert second.pk == first.pk
    assert Blob.objects.filter(digest=str(digest)).count() == 1
    assert ContentArtifact.objects.filter(content_id=first.pk).count() == 1


def test_new_rows_writes_what_save_writes_for_a_manifest_with_links_and_a_tag(db):
    layers = [Blob.objects.create(digest=f"sha256:{os.urandom(32).hex()}") for _ in range(2)]
    fields = dict(media_type="application/vnd.oci.image.manifest.v1+json", data="{}")
    saved = Manifest.objects.create(digest=f"sha256:{'4' * 64}", **fields)
    saved.blobs.set(layers)
    saved_tag = Tag.objects.create(name="v1", tagged_manifest=saved)

    written = Manifest(digest=f"sha256:{'5' * 64}", **fields)
    rows = new_rows(written)
    for layer in layers:
        rows += new_rows(Manifest.blobs.through(manifest=written, blob=layer))
    written_tag = Tag(name="v1", tagged_manifest=written)
    rows += new_rows(written_tag)
    write_together(rows)

    assert _rows_of(written) == _rows_of(saved)
    assert _row(Tag, written_tag.pk, "tagged_manifest_id") == _row(
        Tag, saved_tag.pk, "tagged_manifest_id"
    )
    assert Tag.objects.get(pk=written_tag.pk).tagged_manifest_id == written.pk
    assert set(Manifest.objects.get(pk=written.pk).blobs.all()) == set(layers)


def test_a_failed_statement_writes_none_of_its_parts(db):
    taken = Blob.objects.create(digest=f"sha256:{'6' * 64}")
    fresh = Blob(digest=f"sha256:{'7' * 64}")
    clash = Blob(digest=taken.digest)

    with pytest.raises(IntegrityError), recoverable():
        write_together([*new_rows(fresh), *new_rows(clash)])

    assert not Blob.objects.filter(digest=fresh.digest).exists()
    assert Blob.objects.count() == 1


def test_an_upload_session_row_is_what_save_writes(db):
    repository = ContainerRepository.objects.create(name="sessions")
    saved = BlobUpload(repository=repository, started_by="alice")
    saved.save()
    written = BlobUpload(repository=repository, started_by="alice")

    write_together(new_rows(written))

    assert _row(BlobUpload, written.pk) == _row(BlobUpload, saved.pk)


# --- a first push creates what pulpcore's saves would --------------------------------------


def _created_by_orm(name: str, namespace: ContainerNamespace) -> ContainerRepository:
    repository = ContainerRepository.objects.create(name=name)
    ContainerDistribution.objects.create(
        name=name, base_path=name, repository=repository, namespace=namespace
    )
    return repository


@pytest.mark.parametrize("default_guard", [False, True])
def test_a_first_push_creates_the_rows_pulpcore_would(alice, default_guard):
    if default_guard:
        # pulpcore gives a new distribution its domain's default content guard (a hook).
        from pulpcore.plugin.models import ContentRedirectContentGuard

        guard = ContentRedirectContentGuard.objects.create(name="default guard")
        Domain.objects.filter(name="default").update(default_content_guard=guard)
    namespace = ContainerNamespace.objects.get(name="alice")
    orm = _created_by_orm("alice/by-orm", namespace)

    pushed = repository_for_push(RepositoryName.parse("alice/by-push"), alice)

    assert _rows_of(pushed) == _rows_of(orm)
    versions = [RepositoryVersion.objects.get(repository_id=r.pk) for r in (pushed, orm)]
    assert [v.number for v in versions] == [0, 0]
    assert _row(RepositoryVersion, versions[0].pk) == _row(RepositoryVersion, versions[1].pk)
    distributions = [ContainerDistribution.objects.get(repository_id=r.pk) for r in (pushed, orm)]
    assert _rows_of(distributions[0]) == _rows_of(distributions[1])
    assert distributions[0].hidden and distributions[0].namespace_id == namespace.pk
    assert (distributions[0].content_guard_id is not None) == default_guard


def test_a_first_push_under_a_new_namespace_makes_the_pusher_its_owner(make_user):
    bob = make_user("bob")

    repository_for_push(RepositoryName.parse("bob/app"), bob)

    namespace = ContainerNamespace.objects.get(name="bob")
    assert bob.has_perm("container.namespace_push_images", namespace)
    assert ContainerDistribution.objects.get(base_path="bob/app").namespace_id == namespace.pk


def test_a_first_push_to_a_name_nested_in_another_is_refused_and_writes_nothing(alice):
    repository_for_push(RepositoryName.parse("alice/app"), alice)
    before = ContainerRepository.objects.count()

    from pulp_container.app.exceptions import NameInvalid

    with pytest.raises(NameInvalid):
        repository_for_push(RepositoryName.parse("alice/app/nested"), alice)

    assert ContainerRepository.objects.count() == before
    assert not ContainerDistribution.objects.filter(base_path="alice/app/nested").exists()


# --- the statements a push's requests cost -------------------------------------------------


def _assert_at_most(captured, statements: int, savepoints: int) -> None:
    sql = [query["sql"] for query in captured.captured_queries]
    counted = sum(s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")) for s in sql)
    assert len(sql) - counted <= statements, "\n".join(s[:120] for s in sql)
    assert counted <= savepoints


def test_a_first_push_s_first_request_creates_the_repository_in_few_statements(alice, registry):
    """A fresh runner's first request to a new child repository is a HEAD that links a base
    layer (link-on-HEAD) and creates the repository: 37 statements before, with savepoints."""
    pusher = registry(alice, *push_scopes("alice/child"), *push_scopes("alice/base"))
    layer = pusher.push_image("alice/base").layer_digests[0]

    with CaptureQueriesContext(connection) as captured:
        response = pusher.head(f"/v2/alice/child/blobs/{layer}")

    assert response.status_code == 200, error_of(response)
    # The request's 7 reads, the namespace and the repository by name, one write, the two
    # access policies' creation hooks, the nesting check (here only: a test is a transaction).
    _assert_at_most(captured, statements=15, savepoints=4)


def test_an_upload_commit_writes_its_rows_in_one_statement(alice, registry):
    """Before: 22 statements with savepoints; the artifact, the blob, its bytes' link, the
    pending link with its record and the end of the session each a statement or more."""
    pusher = registry(alice, *push_scopes("alice/app"))
    data = os.urandom(1000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = pusher.start_upload("alice/app")["Location"]
    location = pusher.patch(location, data)["Location"]

    with CaptureQueriesContext(connection) as captured:
        response = pusher.put(f"{location}?digest={digest}")

    assert response.status_code == 201, error_of(response)
    # The user, the session, the blob and the artifact looked for; the artifact; the rest.
    _assert_at_most(captured, statements=6, savepoints=4)
    assert not BlobUpload.objects.exists()
    content = pusher.get(f"/v2/alice/app/blobs/{digest}")
    assert b"".join(content.streaming_content) == data


def test_a_manifest_put_stores_its_manifest_and_tag_in_one_statement(alice, registry):
    pusher = registry(alice, *push_scopes("alice/app"))
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layers = [os.urandom(64), os.urandom(64)]
    config_digest = pusher.push_blob("alice/app", config)
    layer_digests = [pusher.push_blob("alice/app", layer) for layer in layers]
    layer_digests.append(layer_digests[0])  # a layer listed twice is linked once
    layers.append(layers[0])
    body = image_manifest(config_digest, len(config), layer_digests, layers)

    response = pusher.push_manifest("alice/app", "v1", body)

    assert response.status_code == 201, error_of(response)
    manifest = Manifest.objects.get(digest=response["Docker-Content-Digest"])
    assert {blob.digest for blob in manifest.blobs.all()} == set(layer_digests)
    assert manifest.config_blob.digest == config_digest
    assert Tag.objects.get(name="v1").tagged_manifest_id == manifest.pk
    got = pusher.get("/v2/alice/app/manifests/v1")
    assert got.content == body


def _artifact(data: bytes) -> Artifact:
    from django.core.files.base import ContentFile

    digests = {name: hashlib.new(name, data).hexdigest() for name in Artifact.DIGEST_FIELDS}
    artifact = Artifact(file=ContentFile(data, name="bytes"), size=len(data), **digests)
    artifact.save()
    return artifact


# --- without a test transaction: each statement is its own transaction, as on a server -------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_nesting_first_push_committed_for_real_is_name_invalid_and_writes_nothing(
    admin_registry,
):
    pusher = admin_registry("admin/app", "admin/app/nested")
    pusher.push_blob("admin/app", os.urandom(10))

    response = pusher.post("/v2/admin/app/nested/blobs/uploads/")

    assert response.status_code == 400, error_of(response)
    assert "admin/app" in json.loads(response.content)["errors"][0]["detail"]
    assert not ContainerRepository.objects.filter(name="admin/app/nested").exists()
    assert not ContainerDistribution.objects.filter(base_path="admin/app/nested").exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_upload_commit_that_loses_the_race_for_its_blob_links_the_winners(
    admin_registry, monkeypatch
):
    """Two repositories upload the same new layer at once: both commits look for the blob
    before either stored it. The second one's statement fails on the blob's unique digest and
    writes nothing; its upload links the first one's blob."""
    from pulp_container.app.services import uploads

    pusher = admin_registry("admin/one", "admin/two")
    data = os.urandom(5000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    pusher.push_blob("admin/one", data)
    monkeypatch.setattr(uploads, "find_blob", lambda digest: None)  # "not stored yet"

    location = pusher.start_upload("admin/two")["Location"]
    location = pusher.patch(location, data)["Location"]
    response = pusher.put(f"{location}?digest={digest}")

    assert response.status_code == 201, error_of(response)
    assert Blob.objects.filter(digest=digest).count() == 1
    assert not BlobUpload.objects.exists()
    content = pusher.get(f"/v2/admin/two/blobs/{digest}")
    assert b"".join(content.streaming_content) == data
