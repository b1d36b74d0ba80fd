"""Pull-through: a distribution with a remote fetches, at its first pull, what it lacks.

The view has already asked the access decision (pull rights on the name); a reference the
distribution's repository lacks is then fetched from the remote with the machinery of a sync
(checked, each blob stored once, one new repository version), and served. Later pulls are
local. A distribution that serves a fixed repository version never fetches.
"""

from __future__ import annotations

import logging

from django.db import transaction

from pulp_container.app.exceptions import ManifestUnknown
from pulp_container.app.models import ContainerDistribution, ContainerRepository, Manifest
from pulp_container.app.oci import Reference, RepositoryName
from pulp_container.app.services import manifests
from pulp_container.app.services.remote_source import SyncError
from pulp_container.app.services.repositories import PullTarget, pull_target
from pulp_container.app.services.sync import fetch_image

log = logging.getLogger(__name__)


def find_or_fetch_manifest(name: RepositoryName, reference: Reference) -> Manifest:
    """The manifest a pull of ``name`` and ``reference`` gets, fetched from the distribution's
    remote when the repository lacks it; MANIFEST_UNKNOWN (404) when neither has it (NAME_UNKNOWN
    for an unknown name)."""
    target = pull_target(name)
    try:
        return manifests.find_manifest(target, reference)
    except ManifestUnknown:
        distribution = target.distribution
        if distribution is None or distribution.remote_id is None:
            raise
        if distribution.repository_version_id is not None:
            raise
    repository = _repository_of(distribution)
    remote = distribution.remote.cast()
    try:
        fetch_image(repository, remote, str(reference))
    except SyncError as error:
        log.warning("pull-through of %s:%s failed: %s", distribution.base_path, reference, error)
        detail = f"manifest {reference} is unknown here and upstream: {error}"
        raise ManifestUnknown(detail) from None
    return manifests.find_manifest(PullTarget(None, repository.pk), reference)


def _repository_of(distribution: ContainerDistribution) -> ContainerRepository:
    """The repository the distribution serves, created (named after it) at its first fetch."""
    if distribution.repository_id is not None:
        return ContainerRepository.objects.get(pk=distribution.repository_id)
    with transaction.atomic():
        locked = ContainerDistribution.objects.select_for_update().get(pk=distribution.pk)
        if locked.repository_id is None:
            repository, _ = ContainerRepository.objects.get_or_create(name=locked.base_path)
            locked.repository = repository
            locked.save()
        return ContainerRepository.objects.get(pk=locked.repository_id)
