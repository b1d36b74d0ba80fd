"""Expiry of abandoned pushes: idle upload sessions and pending content nothing commits.

A push that never finishes leaves upload sessions (rows and files in the working directory)
and pending blobs (protected from orphan cleanup). A scheduled task removes both once the push
has been idle for ``CONTAINER_PUSH_EXPIRY`` seconds. A push is active while any of its upload
sessions or pending content was touched within that time, and an active push loses nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils.timezone import now
from pulpcore.plugin.models import RepositoryContent

from pulp_container.app.models import (
    Blob,
    BlobUpload,
    ContainerRepository,
    Manifest,
    PendingContent,
)
from pulp_container.app.services.uploads import delete_uploads
from pulp_container.app.upload_stores import store

log = logging.getLogger(__name__)


@dataclass
class Expired:
    """What one run removed: upload session ids, and (repository, content type, digest) of
    pending content."""

    uploads: list[str] = field(default_factory=list)
    pending: list[tuple[str, str, str]] = field(default_factory=list)


def expire_idle_pushes(idle_seconds: int | None = None) -> Expired:
    """Remove upload sessions and pending content of pushes idle for longer than the limit."""
    idle = int(idle_seconds if idle_seconds is not None else settings.CONTAINER_PUSH_EXPIRY)
    cutoff = now() - timedelta(seconds=idle)
    expired = Expired()
    with transaction.atomic():
        idle_repositories = ContainerRepository.objects.exclude(
            Q(uploads__pulp_last_updated__gte=cutoff) | Q(pending__added__gte=cutoff)
        ).values("pk")
        uploads = BlobUpload.objects.select_for_update(skip_locked=True).filter(
            repository__in=idle_repositories, pulp_last_updated__lt=cutoff
        )
        removed = list(uploads.values_list("pk", "storage_state"))
        expired.uploads = [str(pk) for pk, _ in removed]
        delete_uploads([pk for pk, _ in removed])
        pending = PendingContent.objects.filter(
            repository__in=idle_repositories, added__lt=cutoff
        ).exclude(_referenced_by_a_committed_manifest())
        rows = list(
            pending.values_list("pk", "repository__name", "content__pulp_type", "content_id")
        )
        digests = _digests([content_id for *_, content_id in rows])
        expired.pending = [(name, kind, digests.get(cid, "")) for _, name, kind, cid in rows]
        PendingContent.objects.filter(pk__in=[row[0] for row in rows]).delete()
    uploads_store = store()
    for upload_pk, storage_state in removed:
        uploads_store.remove(upload_pk, storage_state)
    log.info("expired upload sessions %s and pending content %s", expired.uploads, expired.pending)
    return expired


def _referenced_by_a_committed_manifest() -> Q:
    """Pending content that a manifest committed in the same repository references."""
    committed = RepositoryContent.objects.filter(
        repository_id=OuterRef(OuterRef("repository_id")), version_removed__isnull=True
    ).values("content_id")
    referencing = Manifest.objects.filter(pk__in=committed).filter(
        Q(blobs=OuterRef("content_id"))
        | Q(config_blob=OuterRef("content_id"))
        | Q(listed_manifests=OuterRef("content_id"))
    )
    return Q(Exists(referencing))


def _digests(content_ids: list) -> dict:
    found = {}
    for model in (Blob, Manifest):
        found.update(model.objects.filter(pk__in=content_ids).values_list("pk", "digest"))
    return found
