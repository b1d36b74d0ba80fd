"""A compiled hot query answers what its ORM queryset answers, and refuses what it cannot bind."""

from __future__ import annotations

import os
from uuid import UUID

import pytest

from pulp_container.app.compiled_queries import CompiledQuery
from pulp_container.app.models import Blob
from pulp_container.app.oci import Digest
from pulp_container.app.services.content import held, locate_blob
from pulp_container.app.services.repositories import PullTarget
from tests.registry.client import push_scopes, repository_named

NAME = "alice/app"


def test_a_compiled_query_answers_as_the_orm_does(alice, registry):
    pusher = registry(alice, *push_scopes(NAME))
    held_digest = pusher.push_blob(NAME, os.urandom(100))
    repository = repository_named(NAME)
    query = CompiledQuery(
        lambda digest, pk: Blob.objects.filter(digest=digest).annotate(in_target=held(pk))[:1],
        str,
        UUID,
    )

    found = query.first(held_digest, repository.pk)
    missing = query.first("sha256:" + "0" * 64, repository.pk)

    assert (found.digest, found.in_target) == (held_digest, True)
    assert missing is None
    target = PullTarget.of_repository(repository)
    through_service = locate_blob(Digest.parse(held_digest), target, pending=True)
    assert (through_service.pk, through_service.size, through_service.in_target) == (
        found.pk,
        100,
        True,
    )


def test_a_value_the_orm_rewrites_cannot_be_a_placeholder(db):
    query = CompiledQuery(lambda digest: Blob.objects.filter(digest__startswith=digest), str)

    with pytest.raises(ValueError, match="placeholders"):
        query.first("sha256:")


def test_a_remembered_stored_file_serves_only_where_the_name_holds_the_blob(alice, registry):
    """Digest -> stored file is remembered per process; the name's hold on the blob never is."""
    pusher = registry(alice, *push_scopes(NAME))
    data = os.urandom(300)
    digest = pusher.push_blob(NAME, data)
    assert pusher.head(f"/v2/{NAME}/blobs/{digest}").status_code == 200  # remembered now

    assert pusher.delete(f"/v2/{NAME}/blobs/{digest}").status_code == 202
    Blob.objects.filter(digest=digest).delete()  # as orphan cleanup would
    gone = pusher.head(f"/v2/{NAME}/blobs/{digest}")
    assert pusher.push_blob(NAME, data) == digest
    again = pusher.head(f"/v2/{NAME}/blobs/{digest}")

    assert gone.status_code == 404
    assert (again.status_code, again["Content-Length"]) == (200, "300")
