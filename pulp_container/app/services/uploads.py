"""Blob uploads: start, append a chunk, commit, cancel (OCI distribution spec, "Pushing blobs")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, NoReturn
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection
from django.utils.timezone import now
from pulpcore.plugin.models import Artifact, ContentArtifact

from pulp_container.app import hash_state
from pulp_container.app.authorization import Caller
from pulp_container.app.compiled_queries import CompiledQuery
from pulp_container.app.exceptions import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    RangeInvalid,
)
from pulp_container.app.models import Blob, BlobUpload, ContainerRepository
from pulp_container.app.oci import ContentRange, Digest, RepositoryName
from pulp_container.app.row_writes import Part, new_rows, quoted, recoverable, write_together
from pulp_container.app.services.content import find_blob
from pulp_container.app.services.mounts import mount_blob
from pulp_container.app.services.repositories import repository_for_push
from pulp_container.app.services.transfers import Transfer, link_pending
from pulp_container.app.upload_objects import LostBytes
from pulp_container.app.upload_stores import store
from pulp_container.constants import TransferOutcome


def _hashed_algorithms() -> set[str]:
    return set(Artifact.DIGEST_FIELDS) | {"sha256"}


@dataclass(frozen=True)
class UploadStart:
    """What starting an upload gave: the blob, already in the target (mounted, or sent whole
    with its digest), or a session to send it in."""

    blob: Digest | None = None
    session: BlobUpload | None = None


def start_upload(
    name: RepositoryName,
    caller: Caller,
    mount: Digest | None = None,
    source: str | None = None,
    digest: Digest | None = None,
    body: tuple[BinaryIO, int | None] | None = None,
) -> UploadStart:
    """``POST /v2/<name>/blobs/uploads/``: the push repository (created on a first push), then

    - with ``mount`` (and ``from``, ``source``): the blob linked from a repository the caller may
      read, or, when it cannot be (unknown, unreadable), a new session: the same 202 as a plain
      start, as the spec asks (mounts.mount_blob);
    - with ``digest`` and the request ``body``: a monolithic push, committed at once;
    - else a new session.
    """
    repository = repository_for_push(name, caller.user)
    if mount is not None and mount_blob(caller, repository, mount, source):
        return UploadStart(blob=mount)
    upload = _new_session(repository, caller.user.get_username())
    if mount is None and digest is not None:
        stream, length = body if body is not None else (None, None)
        commit_upload(upload, digest, stream, length)
        return UploadStart(blob=digest)
    return UploadStart(session=upload)


def _new_session(repository: ContainerRepository, started_by: str) -> BlobUpload:
    upload = BlobUpload(repository=repository, started_by=started_by)
    upload.storage_state = store().create(upload.pk)
    write_together(new_rows(upload))  # BlobUpload has no save() override or hook of its own
    return upload


def find_upload(name: RepositoryName, upload_id: str) -> BlobUpload:
    """The upload ``upload_id`` of the repository a push to ``name`` writes into, or
    BlobUploadUnknown (404); one query, and a read of an unknown session creates nothing."""
    try:
        return BlobUpload.objects.select_related("repository").get(
            pk=UUID(upload_id), repository__distributions__base_path=str(name)
        )
    except (ValueError, ValidationError, BlobUpload.DoesNotExist):
        raise BlobUploadUnknown(f"upload {upload_id} is unknown") from None


def append_chunk(
    upload: BlobUpload,
    stream: BinaryIO,
    content_range: ContentRange | None,
    content_length: int | None,
) -> BlobUpload:
    """Append the request body to the upload and return it with its new offset.

    A chunk must start where the upload stands; one that does not (out of order, or a retry of
    a chunk already received) is 416 with the current Range, as the spec asks.
    """
    if content_range is not None and content_range.start != upload.offset:
        raise RangeInvalid(
            f"chunk starts at {content_range.start}, upload is at {upload.offset}", upload.offset
        )
    if content_range is not None and content_length not in (None, content_range.length):
        # Reading only the range would silently drop the rest of the body.
        raise BlobUploadInvalid(
            f"Content-Range covers {content_range.length} bytes, the body has {content_length}"
        )
    expected = content_range.length if content_range is not None else content_length
    hashers = hash_state.load(upload.hash_state, _hashed_algorithms())
    uploads = store()
    appended = uploads.write(
        upload.pk, upload.offset, upload.storage_state, stream, expected, hashers
    )
    if expected is not None and appended.written != expected:
        # The client went away mid-chunk: keep what came before this chunk, so a retry of the
        # chunk (or of the whole push) starts from a consistent offset.
        appended.discarded()
        raise BlobUploadInvalid(f"chunk ended after {appended.written} of {expected} bytes")
    saved = hash_state.dump(hashers)
    # Optimistic concurrency: only one request may move the upload from this offset.
    moved = BlobUpload.objects.filter(pk=upload.pk, offset=upload.offset).update(
        offset=upload.offset + appended.written,
        hash_state=saved,
        storage_state=appended.state,
        pulp_last_updated=now(),
    )
    if not moved:
        appended.discarded()
        raise RangeInvalid("another request appended to this upload", upload.offset)
    appended.counted()
    upload.offset += appended.written
    upload.hash_state = saved
    upload.storage_state = appended.state
    return upload


def commit_upload(
    upload: BlobUpload,
    digest: Digest,
    stream: BinaryIO | None = None,
    content_length: int | None = None,
) -> Blob:
    """Finish the upload: take the last chunk if any, verify the digest, store the blob.

    The blob joins the repository's pending content; its bytes become an Artifact by a rename
    of the upload file (or are dropped when the registry already has them). A digest that does
    not match ends the upload and leaves nothing behind.

    A commit can be retried after a crash at any point: the hash state of what was received is
    kept with the upload's row, the upload's bytes stay where a retried commit finds them until
    the upload row goes, and an upload whose bytes are gone but whose blob exists commits again
    to the same answer.
    """
    # A last chunk: a body of a declared length, or one sent chunked (length unknown, None).
    if stream is not None and content_length != 0:
        upload = append_chunk(upload, stream, None, content_length)
    digests = _received_digests(upload, digest)
    if digests[digest.algorithm] != digest.encoded:
        cancel_upload(upload)
        raise DigestInvalid(f"content digest is {digest.algorithm}:{digests[digest.algorithm]}")
    uploaded = Transfer(str(digest), TransferOutcome.UPLOADED, bytes_received=upload.offset)
    finished = _upload_row_gone(upload.pk)
    blob = find_blob(digest)
    if blob is None:
        artifact = _store_artifact(upload, digests)
        blob = store_linked_blob(digest, artifact, upload.repository, uploaded, finished)
    else:
        link_pending(upload.repository, blob.pk, uploaded, finished)
    store().remove(upload.pk, upload.storage_state)
    return blob


def _received_digests(upload: BlobUpload, digest: Digest) -> dict[str, str]:
    """The digests of the bytes the upload received, from the hash state kept with it.

    A digest in an algorithm that was not hashed on the way in (sha512, when Pulp keeps only
    sha256) is the one case where the bytes are read again.
    """
    hashers = hash_state.load(upload.hash_state, _hashed_algorithms())
    digests = hash_state.digests(hashers)
    if digest.algorithm in digests:
        return digests
    uploads = store()
    if not uploads.has_bytes(upload.pk, upload.storage_state):
        _lost(upload)
    extra = hash_state.new_hashers([digest.algorithm])
    try:
        uploads.hash_received(upload.pk, upload.storage_state, extra)
    except LostBytes:
        _lost(upload)
    return {**digests, **hash_state.digests(extra)}


def _lost(upload: BlobUpload) -> NoReturn:
    cancel_upload(upload)
    raise BlobUploadUnknown(f"upload {upload.pk} lost its bytes; start the upload again")


def cancel_upload(upload: BlobUpload) -> None:
    delete_uploads([upload.pk])
    store().remove(upload.pk, upload.storage_state)


def delete_uploads(pks) -> None:
    """Delete upload rows in one statement. The ORM's ``delete()`` first reads the rows, then
    their Pulp roles (pulpcore's models relate every row to its user and group roles): three
    queries more at every upload commit, for rows that nothing references."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {BlobUpload._meta.db_table} WHERE {BlobUpload._meta.pk.column} = ANY(%s)",
            [list(pks)],
        )


def _upload_row_gone(pk) -> Part:
    return Part(f"DELETE FROM {quoted(BlobUpload._meta.db_table)} WHERE pulp_id = %s", (pk,))


def store_linked_blob(
    digest: Digest,
    artifact: Artifact,
    repository: ContainerRepository,
    transfer: Transfer,
    *also: Part,
) -> Blob:
    """A new Blob for ``digest`` whose bytes are ``artifact``, pending in ``repository`` with its
    transfer record, and ``also``: one statement (row_writes). When a concurrent push stored
    the blob first, that blob is linked instead."""
    blob, rows = _new_blob(digest, artifact)
    try:
        with recoverable():
            link_pending(repository, blob.pk, transfer, *rows, *also)
    except IntegrityError:
        blob = _stored_first(digest, artifact)
        link_pending(repository, blob.pk, transfer, *also)
    return blob


def blob_of_artifact(digest: Digest, artifact: Artifact) -> Blob:
    """The Blob for ``digest`` whose bytes are ``artifact`` (created unless it exists)."""
    blob, rows = _new_blob(digest, artifact)
    try:
        with recoverable():
            write_together(rows)
    except IntegrityError:
        blob = _stored_first(digest, artifact)
    return blob


def _new_blob(digest: Digest, artifact: Artifact) -> tuple[Blob, list[Part]]:
    """The rows of a new blob and of the link to its bytes. ``Blob`` and ``ContentArtifact``
    have no ``save()`` override or hook of their own to run."""
    blob = Blob(digest=str(digest))
    rows = new_rows(blob)
    rows += new_rows(ContentArtifact(artifact=artifact, content=blob, relative_path=str(digest)))
    return blob, rows


def _stored_first(digest: Digest, artifact: Artifact) -> Blob:
    """The blob a concurrent push stored first: the same bytes. A blob synced on demand has no
    bytes yet: these are them."""
    blob = Blob.objects.get(digest=str(digest))
    ContentArtifact.objects.filter(content=blob, artifact__isnull=True).update(artifact=artifact)
    return blob


# Compiled once per process (compiled_queries): every upload commit of a new blob asks it.
_ARTIFACT = CompiledQuery(lambda sha256: Artifact.objects.filter(sha256=sha256)[:1], str)


def _store_artifact(upload: BlobUpload, digests: dict[str, str]) -> Artifact:
    existing = _ARTIFACT.first(digests["sha256"])
    if existing is not None:
        return existing
    uploads = store()
    if not uploads.has_bytes(upload.pk, upload.storage_state):
        _lost(upload)
    fields = {name: digests[name] for name in Artifact.DIGEST_FIELDS}
    try:
        return uploads.save_artifact(upload.pk, upload.storage_state, upload.offset, fields)
    except IntegrityError:
        return Artifact.objects.get(sha256=digests["sha256"])
    except LostBytes:
        _lost(upload)
