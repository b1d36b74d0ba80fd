"""Pulp tasks of the REST API: each takes primary keys and plain values, and calls one service.

The new repository version a task makes shows in the task's ``created_resources`` (pulpcore
records it when the version is created inside a task, and drops it when the change was empty).
"""

from __future__ import annotations

from pulpcore.plugin.models import ProgressReport

from pulp_container.app.models import ContainerRemote, ContainerRepository
from pulp_container.app.oci import Digest
from pulp_container.app.services import expiry, repository_operations
from pulp_container.app.services.sync import sync_repository


def tag_image(repository_pk: str, tag: str, digest: str) -> None:
    repository_operations.tag_manifest(repository_pk, tag, Digest.parse(digest))


def untag_image(repository_pk: str, tag: str) -> None:
    repository_operations.untag_manifest(repository_pk, tag)


def remove_image(repository_pk: str, digest: str | None = None, tag: str | None = None) -> None:
    parsed = Digest.parse(digest) if digest else None
    repository_operations.remove_image(repository_pk, digest=parsed, tag=tag)


def delete_repository(repository_pk: str) -> None:
    repository_operations.delete_repository(repository_pk)


def sync(repository_pk: str, remote_pk: str, mirror: bool = False) -> None:
    """Sync from a remote; progress reports count the blobs and the bytes downloaded (a
    re-sync with nothing new shows 0 of 0)."""
    repository = ContainerRepository.objects.get(pk=repository_pk)
    remote = ContainerRemote.objects.get(pk=remote_pk)
    blobs = ProgressReport(message="Downloading blobs", code="sync.downloading.blobs")
    size = ProgressReport(message="Downloading bytes", code="sync.downloading.bytes")
    for report in (blobs, size):
        report.state = "running"
        report.save()

    def on_plan(missing: dict) -> None:
        blobs.total, size.total = len(missing), sum(missing.values())
        blobs.save()
        size.save()

    async def progress(received: int) -> None:
        blobs.done += 1
        size.done += received
        await blobs.asave()
        await size.asave()

    state = "failed"
    try:
        sync_repository(repository, remote, mirror, progress=progress, on_plan=on_plan)
        state = "completed"
    finally:
        for report in (blobs, size):
            report.state = state
            report.save()


def expire_idle_pushes() -> None:
    """Scheduled (TaskSchedule, see app/__init__.py): idle upload sessions and pending content
    of abandoned pushes go; the task's progress reports say how many, its log says which."""
    expired = expiry.expire_idle_pushes()
    for code, message, removed in [
        ("container.expire.uploads", "Expired upload sessions", expired.uploads),
        ("container.expire.pending", "Expired pending content", expired.pending),
    ]:
        ProgressReport(
            message=message, code=code, total=len(removed), done=len(removed), state="completed"
        ).save()
