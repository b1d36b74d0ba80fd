"""Pulp tasks of the REST API: each takes primary keys and plain values, and calls one service.

The new repository version a task makes shows in the task's ``created_resources`` (pulpcore
records it when the version is created inside a task, and drops it when the change was empty).
"""

from __future__ import annotations

from pulpcore.plugin.models import ProgressReport

from pulp_container.app.oci import Digest
from pulp_container.app.services import expiry, repository_operations


def tag_image(repository_pk: str, tag: str, digest: str) -> None:
    repository_operations.tag_manifest(repository_pk, tag, Digest.parse(digest))


def untag_image(repository_pk: str, tag: str) -> None:
    repository_operations.untag_manifest(repository_pk, tag)


def remove_image(repository_pk: str, digest: str | None = None, tag: str | None = None) -> None:
    parsed = Digest.parse(digest) if digest else None
    repository_operations.remove_image(repository_pk, digest=parsed, tag=tag)


def delete_repository(repository_pk: str) -> None:
    repository_operations.delete_repository(repository_pk)


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
