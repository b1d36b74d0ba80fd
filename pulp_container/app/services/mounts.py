"""Cross-repository blob mount (OCI distribution spec, "Mounting a blob from another repository").

A mount links a blob the caller may read elsewhere into the target's pending content: one short
transaction, no task, no byte copied. When it cannot, the caller gets a plain upload session
(202), and nothing in the answer tells whether the blob exists where the caller cannot read.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from pulp_container.app.authorization import allowed_actions
from pulp_container.app.exceptions import RegistryError
from pulp_container.app.models import (
    Blob,
    ContainerDistribution,
    ContainerRepository,
)
from pulp_container.app.oci import Digest, RepositoryName
from pulp_container.app.scopes import PULL, PUSH, Scope
from pulp_container.app.services.content import (
    add_pending,
    blob_size,
    find_blob,
    holders_of,
    holds,
    in_repository,
    in_version,
)
from pulp_container.app.services.repositories import repository_for_push
from pulp_container.app.services.transfers import record_transfer
from pulp_container.app.token_verification import Caller, may

# How many repositories holding the blob an automatic mount looks at: the cost of a mount must
# not grow with the number of repositories in the system.
AUTOMATIC_MOUNT_CANDIDATES = 20


def mount_blob(
    caller: Caller, target: ContainerRepository, digest: Digest, source: str | None
) -> bool:
    """Link ``digest`` into ``target`` if the caller may read it somewhere; return whether it was.

    ``source`` (the ``from`` parameter) is tried first and needs pull both in the caller's token
    (when they present one) and in Pulp's permissions; then any other repository the caller may
    pull (automatic mount, which the spec permits).
    """
    blob = find_blob(digest)
    if blob is None:
        return _fallback(target, digest, "blob unknown to the registry")
    source_name = _parse_name(source)
    if source_name is not None and _readable_source_has(caller, source_name, blob):
        return _linked(target, digest, blob, "mounted", f"from {source_name}")
    if in_repository(target, blob):
        return _linked(target, digest, blob, "mounted", "already in target", saved=False)
    holder = _readable_holder(caller, blob, exclude={target.name, str(source_name)})
    if holder is not None:
        return _linked(target, digest, blob, "mounted", f"automatic from {holder}")
    reason = "source not readable or lacks the blob" if source_name else "no readable source"
    return _fallback(target, digest, reason)


def link_on_head(caller: Caller, name: RepositoryName, digest: Digest) -> Blob | None:
    """On a HEAD (or GET) miss by a pusher, link a blob they may read elsewhere into ``name``.

    Fresh CI runners have no local record of where a layer was pushed before, so they never ask
    for a mount; they ask whether the target has the blob. Answering yes, after linking it as a
    mount would, saves the upload. Only for callers who may push to ``name``, and only when the
    blob is in a repository they may pull: everyone else gets the same 404 as for a blob that
    does not exist.
    """
    if not settings.CONTAINER_LINK_BLOBS_ON_HEAD or not caller.user.is_authenticated:
        return None
    if not may(caller, name, PUSH):
        return None
    blob = find_blob(digest)
    if blob is None:
        return None
    holder = _readable_holder(caller, blob, exclude={name.value})
    if holder is None:
        return None
    target = repository_for_push(name, caller.user)
    _linked(target, digest, blob, "linked-on-head", f"from {holder}")
    return blob


def _readable_holder(caller: Caller, blob: Blob, exclude: set[str]) -> RepositoryName | None:
    """A repository the caller may pull that holds ``blob``.

    Public distributions come first, since anyone may read them; at most a bounded number of
    candidates is looked at, so the cost does not grow with the number of repositories.
    """
    candidates = (
        ContainerDistribution.objects.filter(holders_of(blob))
        .exclude(base_path__in=exclude)
        .order_by("private", "base_path")[:AUTOMATIC_MOUNT_CANDIDATES]
    )
    for distribution in candidates:
        name = RepositoryName(distribution.base_path)
        if PULL in allowed_actions(caller.user, name, distribution=distribution):
            return name
    return None


def _parse_name(source: str | None) -> RepositoryName | None:
    if not source:
        return None
    try:
        return RepositoryName.parse(source)
    except RegistryError:
        return None


def _readable_source_has(caller: Caller, name: RepositoryName, blob: Blob) -> bool:
    if caller.token is not None and not caller.token.grants(
        Scope("repository", name.value, frozenset({PULL}))
    ):
        return False
    distribution = ContainerDistribution.objects.filter(base_path=name.value).first()
    if distribution is None or PULL not in allowed_actions(
        caller.user, name, distribution=distribution
    ):
        return False
    if distribution.repository_id is not None:
        return holds(distribution.repository_id, blob)
    if distribution.repository_version is not None:
        return in_version(distribution.repository_version, blob)
    return False


def _linked(
    target: ContainerRepository, digest: Digest, blob: Blob, outcome: str, how: str, saved=True
) -> bool:
    size = blob_size(blob) if saved else 0
    with transaction.atomic():
        add_pending(target, [blob])
        record_transfer(target.name, str(digest), outcome, reason=how, bytes_saved=size)
    return True


def _fallback(target: ContainerRepository, digest: Digest, reason: str) -> bool:
    record_transfer(target.name, str(digest), "fallback", reason=reason)
    return False
