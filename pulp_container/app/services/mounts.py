"""Cross-repository blob mount (OCI distribution spec, "Mounting a blob from another repository").

A mount links a blob the caller may read elsewhere into the target's pending content: one short
transaction, no task, no byte copied. When it cannot, the caller gets a plain upload session
(202), and nothing in the answer, nor its time, tells whether the blob exists where the caller
cannot read. Link-on-HEAD is the same link, made when a pusher asks whether the target has it.
"""

from __future__ import annotations

from django.conf import settings

from pulp_container.app.authorization import Caller
from pulp_container.app.exceptions import RegistryError
from pulp_container.app.models import Blob, ContainerRepository
from pulp_container.app.oci import Digest, RepositoryName
from pulp_container.app.scopes import PULL, PUSH
from pulp_container.app.services.content import (
    locate_blob,
    locate_blob_at_name,
    locate_blob_in_source,
)
from pulp_container.app.services.repositories import (
    PullTarget,
    repository_for_push,
)
from pulp_container.app.services.transfers import Transfer, link_pending, record_transfer
from pulp_container.constants import TransferOutcome


def mount_blob(
    caller: Caller, target: ContainerRepository, digest: Digest, source: str | None
) -> bool:
    """Link ``digest`` into ``target`` if the caller may read it somewhere; return whether it was.

    Any repository the caller may pull by Pulp's permissions is a source (automatic mount, which
    the spec permits); ``source`` (the ``from`` parameter) is only tried first, so a token that
    lacks its scope changes nothing. A source the caller may pull (the usual mount: clients ask
    for its pull scope) is looked at alone first, one query on what the caller may read. Else, or
    when it lacks the blob, the search is one query whatever the answer: a blob held only where
    the caller cannot read costs what an unknown digest costs.
    """
    source_name = _parse_name(source)
    if source_name is not None and caller.may(source_name, PULL):
        # The usual mount: the client names a source its token lets it pull. One query, on what
        # the caller may read only; the search below runs when the source lacks the blob.
        blob = locate_blob_in_source(
            digest, target, str(source_name), caller.may(source_name, PUSH)
        )
        if blob is not None and blob.in_target:
            return _linked(
                target, digest, blob, TransferOutcome.MOUNTED, "already in target", saved=False
            )
        if blob is not None and blob.in_source:
            return _linked(target, digest, blob, TransferOutcome.MOUNTED, f"from {source_name}")
    blob = locate_blob(
        digest,
        PullTarget.of_repository(target),
        pending=True,
        readable_by=caller.grants,
        prefer=str(source_name) if source_name is not None else None,
    )
    if blob is not None and blob.in_target:
        return _linked(
            target, digest, blob, TransferOutcome.MOUNTED, "already in target", saved=False
        )
    if blob is not None and blob.holder is not None:
        how = "from" if blob.holder == str(source_name) else "automatic from"
        return _linked(target, digest, blob, TransferOutcome.MOUNTED, f"{how} {blob.holder}")
    reason = "source not readable or lacks the blob" if source_name else "no readable source"
    record_transfer(target.name, Transfer(str(digest), TransferOutcome.FALLBACK, reason=reason))
    return False


def find_blob_for(caller: Caller, name: RepositoryName, digest: Digest) -> Blob | None:
    """The blob a ``HEAD`` or ``GET`` of ``/v2/<name>/blobs/<digest>`` answers with, or None.

    Pending content is seen by those who may push to ``name``, and by nobody else, whatever the
    method. On a miss by a pusher, a blob they may read elsewhere is linked into ``name``
    (link-on-HEAD): fresh CI runners have no record of where a layer was pushed before, so they
    never ask for a mount; they ask whether the target has the blob. Everyone else gets the same
    404 as for a blob that does not exist, at the same cost.

    A hit costs one query (the name and the blob together). Only a pusher's miss asks the
    second, dearer one (is it readable elsewhere?), and asks it whether or not the digest exists
    anywhere: a blob held only where the caller cannot read costs what an unknown digest costs,
    the same two queries.
    """
    may_push = caller.may(name, PUSH)
    links = may_push and settings.CONTAINER_LINK_BLOBS_ON_HEAD and caller.user.is_authenticated
    # Pending content is the pushers' by their permission, whatever the token of this request
    # asked for: HEAD and GET, a pull-only token or not, give one answer to one user.
    sees_pending = may_push or (caller.user.is_authenticated and PUSH in caller.actions_on(name))
    distribution, blob = locate_blob_at_name(name, digest, pending=sees_pending)
    if blob is not None:
        return blob
    target = PullTarget(distribution) if distribution is not None else None
    if distribution is not None and distribution.repository_version_id is not None:
        blob = locate_blob(digest, target, pending=sees_pending)  # a fixed version's content
        if blob is not None and blob.in_target:
            return blob
    if not links:
        return None
    blob = locate_blob(digest, target, pending=sees_pending, readable_by=caller.grants)
    if blob is not None and blob.in_target:  # pushed meanwhile
        return blob
    if blob is not None and blob.holder is not None:
        # The link is the first write of this pusher's push, so it may create the repository,
        # as the upload it replaces would: a fresh runner's first request to a new child name
        # is this HEAD. A miss, or a caller who may not push, writes nothing.
        repository = repository_for_push(name, caller.user)
        _linked(repository, digest, blob, TransferOutcome.LINKED_ON_HEAD, f"from {blob.holder}")
        return blob
    return None


def _parse_name(source: str | None) -> RepositoryName | None:
    if not source:
        return None
    try:
        return RepositoryName.parse(source)
    except RegistryError:
        return None


def _linked(
    target: ContainerRepository,
    digest: Digest,
    blob: Blob,
    outcome: TransferOutcome,
    how: str,
    saved: bool = True,
) -> bool:
    size = blob.size if saved and blob.size is not None else 0
    link_pending(target, blob.pk, Transfer(str(digest), outcome, reason=how, bytes_saved=size))
    return True
