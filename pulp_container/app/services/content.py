"""Which blobs and manifests a repository holds: committed in its latest version, or pending."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Exists, F, Model, OuterRef, Q
from pulpcore.plugin.models import Content, RepositoryContent, RepositoryVersion

from pulp_container.app.exceptions import BlobUnknown
from pulp_container.app.models import Blob, ContainerRepository, PendingContent
from pulp_container.app.oci import Digest
from pulp_container.app.services.repositories import PullTarget
from pulp_container.app.services.versions import commit_version, locked_repository


def in_repository(repository: ContainerRepository, content: Content) -> bool:
    """Committed in the latest version or pending in a push in progress."""
    return holds(repository.pk, content)


def holds(repository_pk, content: Content) -> bool:
    """Whether the repository ``repository_pk`` holds ``content``, committed or pending (one
    query)."""
    committed = RepositoryContent.objects.filter(
        repository_id=repository_pk, content_id=content.pk, version_removed__isnull=True
    )
    pending = PendingContent.objects.filter(repository_id=repository_pk, content_id=content.pk)
    return (
        Content.objects.filter(pk=content.pk).filter(Exists(committed) | Exists(pending)).exists()
    )


def holds_committed(repository_pk, content: Content) -> bool:
    return RepositoryContent.objects.filter(
        repository_id=repository_pk, content_id=content.pk, version_removed__isnull=True
    ).exists()


def in_version(version: RepositoryVersion, content: Content) -> bool:
    return RepositoryVersion.objects.filter(
        pk=version.pk, content_ids__contains=[content.pk]
    ).exists()


def find_blob(digest: Digest) -> Blob | None:
    """The blob with this digest, with the size of its bytes (``blob.size``) read alongside."""
    return (
        Blob.objects.filter(digest=str(digest))
        .annotate(size=F("contentartifact__artifact__size"))
        .first()
    )


def held_by(repository: ContainerRepository, model, digests) -> dict[str, Content]:
    """Of the ``model`` units (Blob or Manifest) with these digests, those the repository holds,
    committed or pending, by digest: one query whatever the number of digests."""
    committed = RepositoryContent.objects.filter(
        repository_id=repository.pk, content_id=OuterRef("pk"), version_removed__isnull=True
    )
    pending = PendingContent.objects.filter(repository_id=repository.pk, content_id=OuterRef("pk"))
    held = model.objects.filter(digest__in=[str(d) for d in digests]).filter(
        Exists(committed) | Exists(pending)
    )
    return {unit.digest: unit for unit in held}


def blob_for_pull(target: PullTarget, digest: Digest, with_pending: bool = True) -> Blob | None:
    """A blob the pulled name holds: committed, or (``with_pending``) pending in a push."""
    blob = find_blob(digest)
    if blob is None:
        return None
    if target.repository_pk is not None:
        held = holds if with_pending else holds_committed
        return blob if held(target.repository_pk, blob) else None
    if target.version is not None and in_version(target.version, blob):
        return blob
    return None


def add_pending(repository: ContainerRepository, contents: Iterable[Model]) -> None:
    """Link content to the repository's push in progress, protecting it from orphan cleanup."""
    PendingContent.objects.bulk_create(
        [PendingContent(repository_id=repository.pk, content_id=c.pk) for c in contents],
        update_conflicts=True,
        unique_fields=["repository", "content"],
        update_fields=["added"],
    )


def open_blob(blob: Blob):
    """The blob's stored file, opened for reading, and its size."""
    artifact = blob._artifacts.get()
    return artifact.file.open("rb"), artifact.size


def blob_size(blob: Blob) -> int:
    size = getattr(blob, "size", None)
    return size if size is not None else blob._artifacts.values_list("size", flat=True).get()


def holders_of(content: Content) -> Q:
    """A filter on distributions whose push repository holds ``content`` (committed or pending)."""
    committed = RepositoryContent.objects.filter(
        content_id=content.pk, version_removed__isnull=True
    ).values("repository_id")
    pending = PendingContent.objects.filter(content_id=content.pk).values("repository_id")
    return Q(repository_id__in=committed) | Q(repository_id__in=pending)


def remove_blob(repository: ContainerRepository, digest: Digest) -> None:
    """Remove a blob from the repository, committed and pending (``DELETE .../blobs/<digest>``).

    Its bytes stay while another repository holds them; orphan cleanup frees them after.
    """
    blob = find_blob(digest)
    with locked_repository(repository.pk) as locked:
        if blob is None or not holds(locked.pk, blob):
            raise BlobUnknown(f"blob {digest} is unknown to {repository.name}")
        commit_version(locked, remove=[blob.pk])
