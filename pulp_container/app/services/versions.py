"""New repository versions, one at a time per repository across every process.

A registry push ends with one new repository version (Pulp's record of the push), so its cost is
paid by every manifest PUT. pulpcore's generic path (``with repository.new_version() as v:
v.add_content(...)``) spends about 25 statements on it: it saves the version three times, reads
it back, re-derives what was added and removed from the relation table, and recounts every
content type of the version. ``commit_version`` writes the same rows directly, from what it
already knows, in six to eight statements whatever the size of the repository:

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

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from pulpcore.plugin.models import (
    Content,
    CreatedResource,
    Repository,
    RepositoryContent,
    RepositoryVersion,
    Task,
)

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
        yield ContainerRepository.objects.select_for_update().get(pk=repository_pk)


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
            version = _write_version(repository, previous_pk, final, added, removed)
        PendingContent.objects.filter(repository=repository, content_id__in=add | remove).delete()
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
        latest = (
            RepositoryVersion.objects.filter(repository_id=repository.pk)
            .order_by("-number")
            .values_list("pk", "complete", "content_ids")
            .first()
        )
        if latest is None:  # a repository always has its version 0; never reached
            return None, set()
        pk, complete, content_ids = latest
        if complete:
            return pk, set(content_ids)
        RepositoryVersion.objects.get(pk=pk).delete()


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
    repository: ContainerRepository, previous_pk, final: set, added: set, removed: set
) -> RepositoryVersion:
    now = timezone.now()
    number = int(repository.next_version)
    (version,) = RepositoryVersion.objects.bulk_create(
        [
            RepositoryVersion(
                repository_id=repository.pk,
                number=number,
                complete=True,
                content_ids=list(final),
            )
        ]
    )
    if added:
        RepositoryContent.objects.bulk_create(
            [
                RepositoryContent(
                    repository_id=repository.pk,
                    content_id=pk,
                    version_added_id=version.pk,
                )
                for pk in added
            ]
        )
    if removed:
        RepositoryContent.objects.filter(
            repository_id=repository.pk, content_id__in=removed, version_removed__isnull=True
        ).update(version_removed_id=version.pk, pulp_last_updated=now)
    Repository.objects.filter(pk=repository.pk).update(
        next_version=number + 1, pulp_last_updated=now
    )
    repository.next_version = number + 1
    _write_counts(version.pk, previous_pk, added, removed)
    if Task.current() is not None and not repository.user_hidden:
        CreatedResource(content_object=version).save()
    return version


def _write_counts(version_pk, previous_pk, added: set, removed: set) -> None:
    """Added, removed and present counts per content type, as pulpcore's ``_compute_counts``
    stores them, from the previous version's present counts and the change."""
    content = Content._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_COUNTS._meta.db_table}
                (count_type, content_type, repository_version_id, count)
            SELECT kind, type, %(version)s, SUM(n) FROM (
                SELECT 'A' AS kind, pulp_type AS type, COUNT(*) AS n FROM {content}
                    WHERE pulp_id = ANY(%(added)s::uuid[]) GROUP BY pulp_type
                UNION ALL
                SELECT 'R', pulp_type, COUNT(*) FROM {content}
                    WHERE pulp_id = ANY(%(removed)s::uuid[]) GROUP BY pulp_type
                UNION ALL
                SELECT 'P', content_type, count FROM {_COUNTS._meta.db_table}
                    WHERE repository_version_id = %(previous)s AND count_type = 'P'
                UNION ALL
                SELECT 'P', pulp_type, COUNT(*) FROM {content}
                    WHERE pulp_id = ANY(%(added)s::uuid[]) GROUP BY pulp_type
                UNION ALL
                SELECT 'P', pulp_type, -COUNT(*) FROM {content}
                    WHERE pulp_id = ANY(%(removed)s::uuid[]) GROUP BY pulp_type
            ) AS changes
            GROUP BY kind, type HAVING SUM(n) > 0
            """,
            {
                "version": version_pk,
                "previous": previous_pk,
                "added": list(added),
                "removed": list(removed),
            },
        )
