"""New repository versions, one at a time per repository across every process."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import transaction
from pulpcore.plugin.models import Content, RepositoryVersion

from pulp_container.app.models import ContainerRepository, PendingContent


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
    """One new version adding and removing these content pks (call under the row lock).

    Content it adds leaves the pending set; content it removes leaves it too, so a removed blob
    is not served from a push in progress either. Returns the new version, or None when nothing
    changed (pulpcore then drops the empty version).
    """
    add, remove = list(add), list(remove)
    with repository.new_version() as version:
        if remove:
            version.remove_content(Content.objects.filter(pk__in=remove))
        if add:
            version.add_content(Content.objects.filter(pk__in=add))
    PendingContent.objects.filter(repository=repository, content_id__in=add + remove).delete()
    # pulpcore deletes a version that changed nothing (and Django then clears its pk).
    return version if version.pk is not None and version.complete else None
