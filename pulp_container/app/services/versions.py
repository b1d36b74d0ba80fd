"""New repository versions, one at a time per repository across every process.

A registry push ends with one new repository version (Pulp's record of the push), so its cost is
paid by every manifest PUT. pulpcore's generic path (``with repository.new_version() as v:
v.add_content(...)``) spends about 25 statements on it: it saves the version three times, reads
it back, re-derives what was added and removed from the relation table, and recounts every
content type of the version. ``commit_version`` writes the same rows directly, from what it
already knows: it reads the latest version and the tags an added tag would replace (two
queries), then writes, in one statement whatever the size of the repository:

- ``core_repositoryversion``: the next number, complete at once, with its ``content_ids``;
- ``core_repositorycontent``: a row per added unit, ``version_removed`` set on removed ones;
- ``core_repositoryversioncontentdetails``: added, removed and present counts per content type,
  the present ones from the previous version's counts and the change (no recount);
- ``core_repository.next_version``; the pending links of what it commits go.

``tests/registry/test_version_commit.py`` checks it against pulpcore's generic path on random
sequences of changes: the same content, relations, counts and numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Q
from pulpcore.plugin.models import (
    Content,
    CreatedResource,
    Repository,
    RepositoryContent,
    RepositoryVersion,
    Task,
)

from pulp_container.app.compiled_queries import CompiledQuery
from pulp_container.app.models import ContainerRepository, PendingContent, Tag

# pulpcore's RepositoryVersionContentDetails (not exported by pulpcore.plugin).
_COUNTS = RepositoryVersion._meta.get_field("counts").related_model


@contextmanager
def locked_repository(repository_pk) -> Iterator[ContainerRepository]:
    """The repository with its row locked until the transaction ends.

    Registry pushes, registry deletes and REST tasks all take this lock, so two of them never
    build versions from the same base.
    """
    with transaction.atomic():
        repository = _LOCKED_REPOSITORY.first(repository_pk)
        if repository is None:
            raise ContainerRepository.DoesNotExist(f"no repository {repository_pk}")
        yield repository


# Compiled once per process (compiled_queries): every manifest PUT runs these two.
_LOCKED_REPOSITORY = CompiledQuery(
    lambda pk: ContainerRepository.objects.select_for_update().filter(pk=pk)[:1], UUID
)
_LATEST_VERSION = CompiledQuery(
    lambda pk: (
        RepositoryVersion.objects.defer(None)  # its manager defers content_ids
        .filter(repository_id=pk)
        .order_by("-number")
        .only("pk", "complete", "content_ids")[:1]
    ),
    UUID,
)


def commit_version(
    repository: ContainerRepository, add: Iterable = (), remove: Iterable = ()
) -> RepositoryVersion | None:
    """One new version of the latest one, removing then adding these content pks (call under
    the row lock, ``locked_repository``).

    A tag added replaces the tag of the same name (a retag). Content it adds or removes leaves
    the pending set, so a removed blob is not served from a push in progress either. Returns the
    new version, or None when nothing changed (no version is made, as pulpcore does).
    """
    add, remove = set(add), set(remove)
    with transaction.atomic(savepoint=False):  # the caller's, under the row lock
        previous_pk, present = _latest_complete(repository)
        final = (present - remove) | add
        added = final - present
        replaced = _replaced_tags(repository, added, final)
        final -= replaced
        removed = present - final
        version = None
        if added or removed:
            version = _write_version(repository, previous_pk, final, added, removed, add | remove)
        else:
            PendingContent.objects.filter(
                repository=repository, content_id__in=add | remove
            ).delete()
    if version is not None:
        transaction.on_commit(repository.invalidate_cache)
        if repository.retain_repo_versions:
            repository.cleanup_old_versions()
        repository.on_new_version(version)
    return version


def _latest_complete(repository: ContainerRepository) -> tuple:
    """The latest version's pk and content; an incomplete one (a task that died while building
    it) is deleted first, as ``Repository.new_version`` does."""
    while True:
        latest = _LATEST_VERSION.first(repository.pk)
        if latest is None:  # a repository always has its version 0; never reached
            return None, set()
        if latest.complete:
            return latest.pk, set(latest.content_ids)
        RepositoryVersion.objects.get(pk=latest.pk).delete()


def _replaced_tags(repository: ContainerRepository, added: set, final: set) -> set:
    """Tags of the version that an added tag of the same name replaces (one query)."""
    if not added:
        return set()
    committed = RepositoryContent.objects.filter(
        repository_id=repository.pk, version_removed__isnull=True
    ).values("content_id")
    added_names = Tag.objects.filter(pk__in=added).values("name")
    rows = Tag.objects.filter(
        Q(pk__in=added) | Q(name__in=added_names, pk__in=committed)
    ).values_list("pk", "name")
    names_added = [name for pk, name in rows if pk in added]
    if len(set(names_added)) != len(names_added):
        raise ValueError(f"a repository version cannot hold two tags of one name: {names_added}")
    return {pk for pk, name in rows if pk not in added and pk in final and name in names_added}


def _write_version(
    repository: ContainerRepository,
    previous_pk,
    final: set,
    added: set,
    removed: set,
    unpend: set,
) -> RepositoryVersion:
    """Every row of the new version, and the pending links it ends, in one statement."""
    number = int(repository.next_version)
    version = RepositoryVersion(
        pk=RepositoryVersion._meta.pk.get_default(),
        repository_id=repository.pk,
        number=number,
        complete=True,
        content_ids=list(final),
    )
    added = list(added)
    with connection.cursor() as cursor:
        cursor.execute(
            _WRITE_VERSION,
            {
                "version": version.pk,
                "repository": repository.pk,
                "number": number,
                "final": version.content_ids,
                "relation_pks": [RepositoryContent._meta.pk.get_default() for _ in added],
                "added": added,
                "removed": list(removed),
                "unpend": list(unpend),
                "previous": previous_pk,
            },
        )
    repository.next_version = number + 1
    if Task.current() is not None and not repository.user_hidden:
        CreatedResource(content_object=version).save()
    return version


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


_CONTENT = _table(Content)
_COUNTS_TABLE = _table(_COUNTS)
# Data-modifying CTEs run on one snapshot and none reads another's rows: each writes from the
# parameters, and the counts come from the previous version's present counts and the change
# (what pulpcore's ``_compute_counts`` stores, without recounting the version). Foreign keys are
# checked at the end of the statement (or at commit), when every row exists.
_WRITE_VERSION = f"""
    WITH version AS (
        INSERT INTO {_table(RepositoryVersion)} (pulp_id, pulp_created, pulp_last_updated,
            repository_id, number, complete, base_version_id, info, content_ids)
        VALUES (%(version)s, now(), now(), %(repository)s, %(number)s, true, NULL, '{{}}',
            %(final)s::uuid[])
    ), added AS (
        INSERT INTO {_table(RepositoryContent)} (pulp_id, pulp_created, pulp_last_updated,
            content_id, repository_id, version_added_id, version_removed_id)
        SELECT relation, now(), now(), content, %(repository)s, %(version)s, NULL
        FROM unnest(%(relation_pks)s::uuid[], %(added)s::uuid[]) AS rows (relation, content)
    ), removed AS (
        UPDATE {_table(RepositoryContent)}
        SET version_removed_id = %(version)s, pulp_last_updated = now()
        WHERE repository_id = %(repository)s AND content_id = ANY(%(removed)s::uuid[])
            AND version_removed_id IS NULL
    ), numbered AS (
        UPDATE {_table(Repository)} SET next_version = %(number)s + 1, pulp_last_updated = now()
        WHERE pulp_id = %(repository)s
    ), unpended AS (
        DELETE FROM {_table(PendingContent)}
        WHERE repository_id = %(repository)s AND content_id = ANY(%(unpend)s::uuid[])
    )
    INSERT INTO {_COUNTS_TABLE} (count_type, content_type, repository_version_id, count)
    SELECT kind, type, %(version)s, SUM(n) FROM (
        SELECT 'A' AS kind, pulp_type AS type, COUNT(*) AS n FROM {_CONTENT}
            WHERE pulp_id = ANY(%(added)s::uuid[]) GROUP BY pulp_type
        UNION ALL
        SELECT 'R', pulp_type, COUNT(*) FROM {_CONTENT}
            WHERE pulp_id = ANY(%(removed)s::uuid[]) GROUP BY pulp_type
        UNION ALL
        SELECT 'P', content_type, count FROM {_COUNTS_TABLE}
            WHERE repository_version_id = %(previous)s AND count_type = 'P'
        UNION ALL
        SELECT 'P', pulp_type, COUNT(*) FROM {_CONTENT}
            WHERE pulp_id = ANY(%(added)s::uuid[]) GROUP BY pulp_type
        UNION ALL
        SELECT 'P', pulp_type, -COUNT(*) FROM {_CONTENT}
            WHERE pulp_id = ANY(%(removed)s::uuid[]) GROUP BY pulp_type
    ) AS changes
    GROUP BY kind, type HAVING SUM(n) > 0
"""
