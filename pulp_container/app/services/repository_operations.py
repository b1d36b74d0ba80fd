"""Operations on a whole repository from Pulp's REST API: tag, untag, remove an image, delete.

Each one takes the repository row lock that a registry push takes (``store_manifest``), so a
REST task and a concurrent push never build two versions from the same base; each change is
one new repository version.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q
from pulpcore.plugin.models import RepositoryVersion

from pulp_container.app.exceptions import ManifestUnknown
from pulp_container.app.models import (
    BlobUpload,
    ContainerDistribution,
    Manifest,
    Tag,
)
from pulp_container.app.oci import Digest, Reference, RepositoryName
from pulp_container.app.services.manifests import get_or_create_tag
from pulp_container.app.services.repositories import existing_repository
from pulp_container.app.services.versions import commit_version, locked_repository
from pulp_container.app.upload_stores import store

# --- what a repository version holds ----------------------------------------------------------


def manifest_in_version(version: RepositoryVersion | None, digest: Digest) -> Manifest | None:
    if version is None:
        return None
    return Manifest.objects.filter(
        pk__in=version.content_ids_subquery(), digest=str(digest)
    ).first()


def tag_in_version(version: RepositoryVersion | None, name: str) -> Tag | None:
    if version is None:
        return None
    return (
        Tag.objects.select_related("tagged_manifest")
        .filter(pk__in=version.content_ids_subquery(), name=name)
        .first()
    )


# --- the operations ---------------------------------------------------------------------------


def tag_manifest(repository_pk, tag: str, digest: Digest) -> RepositoryVersion | None:
    """Point ``tag`` at the manifest ``digest`` of the latest version (a retag moves the tag)."""
    with locked_repository(repository_pk) as repository:
        manifest = manifest_in_version(repository.latest_version(), digest)
        if manifest is None:
            raise ManifestUnknown(f"manifest {digest} is not in repository {repository.name}")
        tag_unit = get_or_create_tag(tag, manifest)
        return commit_version(repository, add=[tag_unit.pk])


def delete_manifest(name: RepositoryName, reference: Reference) -> None:
    """``DELETE /v2/<name>/manifests/<reference>``: by tag, the tag goes and the manifest stays;
    by digest, the manifest and its tags go. NAME_UNKNOWN for a name without a push repository."""
    repository = existing_repository(name)
    if reference.tag is not None:
        untag_manifest(repository.pk, reference.tag)
    else:
        remove_image(repository.pk, digest=reference.digest)


def untag_manifest(repository_pk, tag: str) -> RepositoryVersion | None:
    """Remove ``tag``; the manifest it pointed at stays, reachable by digest."""
    with locked_repository(repository_pk) as repository:
        tag_unit = tag_in_version(repository.latest_version(), tag)
        if tag_unit is None:
            raise ManifestUnknown(f"tag {tag} is not in repository {repository.name}")
        return commit_version(repository, remove=[tag_unit.pk])


def remove_image(
    repository_pk, digest: Digest | None = None, tag: str | None = None
) -> RepositoryVersion | None:
    """Remove an image and what only it references, in one new version.

    By ``digest``: the manifest, every tag pointing at it, and (recursively) the manifests it
    lists and the blobs it references that nothing left in the version references. By ``tag``:
    the tag, then its manifest as above if no other tag points at it and no index left lists it
    (as ``docker rmi name:tag`` does).
    """
    with locked_repository(repository_pk) as repository:
        latest = repository.latest_version()
        if tag is not None:
            tag_unit = tag_in_version(latest, tag)
            if tag_unit is None:
                raise ManifestUnknown(f"tag {tag} is not in repository {repository.name}")
            removed_tags = {tag_unit.pk}
            seeds = [tag_unit.tagged_manifest_id]
        else:
            manifest = manifest_in_version(latest, digest)
            if manifest is None:
                raise ManifestUnknown(f"manifest {digest} is not in repository {repository.name}")
            removed_tags = set()
            seeds = [manifest.pk]
        to_remove = _unreferenced_closure(latest, seeds, removed_tags, forced=tag is None)
        return commit_version(repository, remove=to_remove)


def _unreferenced_closure(
    version: RepositoryVersion, seeds: Iterable, removed_tags: set, forced: bool
) -> set:
    """Content pks to remove: tags, then manifests no tag or index left refers to, then blobs."""
    in_version = version.content_ids_subquery()
    tags = dict(Tag.objects.filter(pk__in=in_version).values_list("pk", "tagged_manifest_id"))
    manifests = set(Manifest.objects.filter(pk__in=in_version).values_list("pk", flat=True))
    listed = {
        (row.from_manifest_id, row.to_manifest_id)
        for row in Manifest.listed_manifests.through.objects.filter(from_manifest_id__in=manifests)
    }
    removed_manifests: set = set()
    pending = list(seeds)
    first = forced
    while pending:
        candidate = pending.pop()
        if candidate in removed_manifests or candidate not in manifests:
            continue
        if not first and _still_referenced(
            candidate, tags, removed_tags, listed, removed_manifests
        ):
            continue
        first = False
        removed_manifests.add(candidate)
        removed_tags |= {pk for pk, target in tags.items() if target == candidate}
        pending.extend(child for parent, child in listed if parent == candidate)
    kept_manifests = manifests - removed_manifests
    kept_blobs = _blobs_of(kept_manifests)
    orphaned_blobs = _blobs_of(removed_manifests) - kept_blobs
    return removed_tags | removed_manifests | orphaned_blobs


def _still_referenced(manifest_pk, tags, removed_tags, listed, removed_manifests) -> bool:
    if any(target == manifest_pk and pk not in removed_tags for pk, target in tags.items()):
        return True
    return any(child == manifest_pk and parent not in removed_manifests for parent, child in listed)


def _blobs_of(manifest_pks: set) -> set:
    if not manifest_pks:
        return set()
    layers = Manifest.blobs.through.objects.filter(manifest_id__in=manifest_pks).values_list(
        "blob_id", flat=True
    )
    configs = Manifest.objects.filter(pk__in=manifest_pks, config_blob__isnull=False).values_list(
        "config_blob_id", flat=True
    )
    return set(layers) | set(configs)


def delete_repository(repository_pk) -> None:
    """Delete the repository, the distributions serving it, and its uploads in progress."""
    with locked_repository(repository_pk) as repository:
        ContainerDistribution.objects.filter(
            Q(repository_id=repository.pk) | Q(repository_version__repository_id=repository.pk)
        ).delete()
        uploads = list(
            BlobUpload.objects.filter(repository=repository).values_list("pk", "storage_state")
        )
        repository.delete()
    uploads_store = store()
    for upload_pk, storage_state in uploads:
        uploads_store.remove(upload_pk, storage_state)
