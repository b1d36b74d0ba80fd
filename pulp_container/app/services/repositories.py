"""Find the repository behind a registry name, for a pull or for a push."""

from __future__ import annotations

from functools import cached_property

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, connection
from pulpcore.plugin.models import Domain, RepositoryVersion
from pulpcore.plugin.util import assign_role

from pulp_container.app.compiled_queries import CompiledQuery
from pulp_container.app.exceptions import NameInvalid, NameUnknown, Unsupported
from pulp_container.app.models import (
    ContainerDistribution,
    ContainerNamespace,
    ContainerRepository,
)
from pulp_container.app.oci import RepositoryName
from pulp_container.app.row_writes import Part, new_rows, quoted, recoverable, write_together

NAMESPACE_OWNER_ROLE = "container.containernamespace_owner"


class PullTarget:
    """What a pull of a name reads: a push repository (latest version and pending content), or
    a fixed repository version. The version is read only when a caller needs it."""

    def __init__(self, distribution: ContainerDistribution | None, repository_pk=None) -> None:
        self.distribution = distribution
        self.repository_pk = distribution.repository_id if distribution else repository_pk

    @classmethod
    def of_repository(cls, repository: ContainerRepository) -> PullTarget:
        """What a pull of a push repository sees, whatever name it is reached by."""
        return cls(None, repository.pk)

    @cached_property
    def version(self) -> RepositoryVersion | None:
        if self.distribution is not None and self.distribution.repository_version_id:
            return RepositoryVersion.objects.get(pk=self.distribution.repository_version_id)
        if self.repository_pk:
            return (
                RepositoryVersion.objects.filter(repository_id=self.repository_pk, complete=True)
                .order_by("-number")
                .first()
            )
        return None


# Every request on a name reads its distribution (compiled once: compiled_queries).
_DISTRIBUTION_AT = CompiledQuery(
    lambda name: ContainerDistribution.objects.filter(base_path=name)[:1], str
)


def find_distribution(name: RepositoryName) -> ContainerDistribution | None:
    return _DISTRIBUTION_AT.first(str(name))


def pull_target(name: RepositoryName) -> PullTarget:
    """The content a pull of ``name`` sees, or NameUnknown (404)."""
    distribution = find_distribution(name)
    if distribution is None:
        raise NameUnknown(f"repository {name} is unknown")
    return PullTarget(distribution)


def existing_repository(name: RepositoryName) -> ContainerRepository:
    """The push repository behind ``name``, or NameUnknown (404); nothing is created."""
    distribution = find_distribution(name)
    if distribution is None or distribution.repository_id is None:
        raise NameUnknown(f"repository {name} is unknown")
    return ContainerRepository.objects.get(pk=distribution.repository_id)


# Every write (upload, mount, manifest PUT) starts here: compiled once (compiled_queries).
_PUSH_REPOSITORY_AT = CompiledQuery(
    lambda name: ContainerRepository.objects.filter(distributions__base_path=name)[:1], str
)


def find_push_repository(name: RepositoryName) -> ContainerRepository | None:
    """The repository a push to ``name`` writes into if it exists; never creates one (reads
    never write)."""
    return _PUSH_REPOSITORY_AT.first(str(name))


def repository_for_push(
    name: RepositoryName, user: AbstractBaseUser | AnonymousUser
) -> ContainerRepository:
    """The repository a push to ``name`` writes into, created on the first push.

    A first push creates the namespace (owned by the pusher when it is named after them), the
    repository and a public distribution at ``name``. Concurrent first pushes (clients upload
    layers in parallel) race on the unique names; the loser reads what the winner created.
    """
    # The usual case, a repository that exists, in one query.
    repository = find_push_repository(name)
    if repository is not None:
        return repository
    # A concurrent first push may have created it since: what the distribution serves decides.
    existing = _pushed_repository(name)
    if existing is not None:
        return existing
    try:
        return _create_push_repository(name, user)
    except IntegrityError:
        repository = _pushed_repository(name)
        if repository is None:
            raise NameInvalid(_nesting_conflict(name)) from None
        return repository


def _pushed_repository(name: RepositoryName) -> ContainerRepository | None:
    """The repository the distribution at ``name`` serves, None without a distribution, or
    Unsupported (405) when it serves a fixed repository version."""
    distribution = find_distribution(name)
    if distribution is None:
        return None
    if distribution.repository_id is None:
        raise Unsupported(f"{name} serves a fixed repository version and takes no pushes")
    return ContainerRepository.objects.get(pk=distribution.repository_id)


def _nesting_conflict(name: RepositoryName) -> str:
    """Pulp keeps distribution base paths prefix-free: ``a/b`` and ``a/b/c`` cannot both exist."""
    prefixes = ["/".join(name.value.split("/")[:i]) for i in range(1, name.value.count("/") + 1)]
    clash = (
        ContainerDistribution.objects.filter(base_path__in=prefixes).first()
        or ContainerDistribution.objects.filter(base_path__startswith=f"{name}/").first()
    )
    other = clash.base_path if clash is not None else "another repository"
    return f"{name} cannot nest with the existing repository {other}"


def _create_push_repository(
    name: RepositoryName, user: AbstractBaseUser | AnonymousUser
) -> ContainerRepository:
    """The namespace (rarely new), then the repository with its version 0 and the distribution
    at ``name``: one statement (row_writes), instead of pulpcore's saves, 30 statements with
    their savepoints. What those saves would add is written here: version 0 and
    ``next_version`` 1 (``Repository.save``), a hidden distribution
    (``ContainerDistribution.save``) guarded by its domain's default content guard (a hook of
    pulpcore's ``Distribution``), and the roles the access policies' creation hooks give
    (``add_perms``). Registry requests call this, never a task: pulpcore's ``save`` would also
    lock the new repository to the running task."""
    namespace, created = ContainerNamespace.objects.get_or_create(name=name.namespace)
    if created and user.is_authenticated and user.get_username() == name.namespace:
        assign_role(NAMESPACE_OWNER_ROLE, user, namespace)
    repository = ContainerRepository.objects.filter(name=str(name)).first()
    rows, new = [], []
    if repository is None:
        repository = ContainerRepository(name=str(name), next_version=1)
        rows += new_rows(repository)
        rows += new_rows(RepositoryVersion(repository=repository, number=0, complete=True))
        new.append(repository)
    distribution = ContainerDistribution(
        name=str(name), base_path=str(name), repository=repository, namespace=namespace
    )
    distribution.hidden = True
    guard = Part(_DEFAULT_GUARD, (distribution.pulp_domain_id,))
    rows += new_rows(distribution, computed={"content_guard_id": guard})
    new.append(distribution)
    with recoverable():
        write_together(rows)
        if connection.in_atomic_block:
            # pulpcore checks that base paths nest in no other at commit (a deferred trigger);
            # check now, so a clash is an answer to this request whatever encloses it. Alone,
            # the statement is its own transaction, checked as it ends.
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    for instance in new:
        instance.add_perms()
    return repository


_DEFAULT_GUARD = (
    f"SELECT default_content_guard_id FROM {quoted(Domain._meta.db_table)} WHERE pulp_id = %s"
)
