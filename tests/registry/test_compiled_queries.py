"""A compiled hot query answers what its ORM queryset answers, and refuses what it cannot bind."""

from __future__ import annotations

import os
from uuid import UUID

import pytest
from django.db import connection
from django.db.models import Value

from pulp_container.app.authorization import grants_of
from pulp_container.app.compiled_queries import CompiledQuery
from pulp_container.app.models import Blob
from pulp_container.app.oci import Digest
from pulp_container.app.services.content import _located_blob, held, locate_blob
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


@pytest.mark.parametrize("who", ["admin", "alice", "carol", "eve"])
def test_the_compiled_search_of_readable_holders_answers_as_the_orm_does(people, registry, who):
    """A pusher's HEAD miss and a mount search every repository the caller may read; that query
    is compiled once per set of grants, and must answer as its ORM queryset for each of them."""
    admin = registry(people["admin"], *push_scopes("alice/src"), *push_scopes("eve/own"))
    shared = admin.push_blob("alice/src", os.urandom(50))
    private = admin.push_blob("eve/own", os.urandom(60))
    target = repository_named("alice/src")
    grants = grants_of(people[who])
    cases = []
    for digest in (shared, private, "sha256:" + "1" * 64):
        for pull_target in (None, PullTarget.of_repository(target)):
            for prefer in (None, "alice/src", "eve/own"):
                cases.append((Digest.parse(digest), pull_target, prefer))

    for digest, pull_target, prefer in cases:
        for _ in range(2):  # compiled at the first call, bound at the second
            compiled = locate_blob(digest, pull_target, True, readable_by=grants, prefer=prefer)
            orm = _located_blob(digest, pull_target, True, grants, prefer).first()
            answer = [(b.pk, b.in_target, b.holder, b.size) if b else None for b in (compiled, orm)]
            assert answer[0] == answer[1], (who, digest, pull_target, prefer)


def _prepared_statements() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE from_sql = false")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("prepared", [True, False])
def test_a_compiled_query_runs_prepared_on_the_server_unless_turned_off(
    alice, registry, registry_settings, prepared
):
    """PostgreSQL plans a prepared statement once per connection, not at every run (1 ms of the
    1.2 ms of the readable-holder search). Off (an old PgBouncer), the query is sent bound on
    the client, as Django sends its own, and gives the same answer."""
    registry_settings.CONTAINER_PREPARED_QUERIES = prepared
    pusher = registry(alice, *push_scopes(NAME))
    digest = pusher.push_blob(NAME, os.urandom(100))
    marker = f"in_target_{'on' if prepared else 'off'}"
    query = CompiledQuery(
        lambda digest: Blob.objects.filter(digest=digest).annotate(**{marker: Value(True)})[:1],
        str,
    )

    answers = [query.first(digest), query.first(digest)]

    assert [blob.digest for blob in answers] == [digest, digest]
    statements = [sql for sql in _prepared_statements() if marker in sql]
    assert len(statements) == (1 if prepared else 0), statements
    if prepared:
        assert '"container_blob"."digest" = $' in statements[0]  # bound on the server
