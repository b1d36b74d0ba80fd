"""The bytes of uploads in progress in S3-compatible object storage (STORAGES "default" is
django-storages' S3Storage). No API host keeps anything on its own disk: see docs/storage.md.

An upload is an S3 multipart upload plus a tail:

- bytes are sent to S3 as parts of ``CONTAINER_UPLOAD_PART_BYTES`` (S3 wants at least 5 MiB for
  every part but the last) as soon as that many have arrived;
- what is left at the end of a request (less than a part) is written as a small object, a
  *piece*, named by its offset; the next request that fills a part reads the pieces back once
  and sends them with its own bytes as that part. A byte is thus read again at most once, and
  only when clients send chunks smaller than a part;
- ``storage_state`` (with the upload's row) lists the parts (number, ETag) and the pieces; the
  row's conditional update on ``offset`` is what makes a chunk count, on whichever host;
- the commit completes the multipart upload (S3 makes the object appear whole, at once) under a
  name of its own; the Artifact row then names that object: no byte is copied. An upload that
  fails or is cancelled aborts the multipart upload and deletes its pieces: nothing is left.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO
from uuid import UUID

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from pulpcore.plugin.models import Artifact

from pulp_container.app.hash_state import Hashers
from pulp_container.app.streams import chunks_of

State = dict


def _key(name: str) -> str:
    """The bucket key of a storage name (S3Storage's location prefix applied)."""
    return default_storage._normalize_name(name)


def _client():
    return default_storage.connection.meta.client


def _bucket() -> str:
    return default_storage.bucket_name


def _piece_name(upload_pk: UUID, offset: int) -> str:
    return f"container-uploads/{upload_pk}/{offset}"


def blob_name(upload_pk: UUID) -> str:
    """The storage name of the upload's bytes once committed: the Artifact's file."""
    return f"artifact/container-uploads/{upload_pk}"


def create(upload_pk: UUID) -> State:
    """Nothing is asked of S3 until bytes arrive (many uploads are a single small request)."""
    return {"id": None, "parts": [], "pieces": []}


class Appended:
    """What one request added: the new state, and what to clean up once it counts (or not)."""

    def __init__(
        self, upload_pk: UUID, written: int, state: State, superseded: list, created: list
    ) -> None:
        self.written = written
        self.state = state
        self._upload_pk = upload_pk
        self._superseded = superseded
        self._created = created
        self.started_multipart = False

    def counted(self) -> None:
        """The row now holds ``state``: the pieces sent within a part are not needed."""
        _delete_pieces(self._superseded)

    def discarded(self) -> None:
        """The row kept the previous state: remove the pieces this request wrote, and the
        multipart upload if this request started it (its parts are never listed otherwise)."""
        _delete_pieces(self._created)
        if self.started_multipart:
            _abort(self._upload_pk, self.state["id"])


def write(
    upload_pk: UUID,
    offset: int,
    state: State,
    stream: BinaryIO,
    limit: int | None,
    hashers: Hashers,
) -> Appended:
    """Send up to ``limit`` bytes of ``stream`` (all when None) after ``offset``.

    Full parts go to S3 in the background (two at most in flight) while the next are read.
    """
    part_bytes = settings.CONTAINER_UPLOAD_PART_BYTES
    state = {"id": state["id"], "parts": list(state["parts"]), "pieces": list(state["pieces"])}
    started_without = state["id"] is None
    superseded: list = []
    created: list = []
    pieces_size = sum(size for _, size in state["pieces"])
    pending = bytearray()
    pending_offset = offset
    written = 0
    sender = _PartSender(upload_pk, state)
    try:
        for chunk in chunks_of(stream, limit):
            for hasher in hashers.values():
                hasher.update(chunk)
            pending += chunk
            written += len(chunk)
            if pieces_size + len(pending) >= part_bytes:
                take = part_bytes - pieces_size
                sender.send(_read_pieces(state["pieces"]) + bytes(pending[:take]))
                superseded += state["pieces"]
                state["pieces"] = []
                pieces_size = 0
                del pending[:take]
                pending_offset += take
        sender.finish()
        if pending:
            name = _piece_name(upload_pk, pending_offset)
            _client().put_object(Bucket=_bucket(), Key=_key(name), Body=bytes(pending))
            state["pieces"].append([name, len(pending)])
            created.append([name, len(pending)])
    except BaseException:
        sender.cancel()
        if started_without and state["id"] is not None:
            _abort(upload_pk, state["id"])
        raise
    appended = Appended(upload_pk, written, state, superseded, created)
    appended.started_multipart = started_without and state["id"] is not None
    return appended


class _PartSender:
    """Uploads parts in a background thread pool, in order of their numbers; ``finish`` waits
    for them and records their ETags in the state."""

    IN_FLIGHT = 2

    def __init__(self, upload_pk: UUID, state: State) -> None:
        self._upload_pk = upload_pk
        self._state = state
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: list[tuple[int, Future]] = []

    def send(self, body: bytes) -> None:
        if self._state["id"] is None:
            answer = _client().create_multipart_upload(
                Bucket=_bucket(), Key=_key(blob_name(self._upload_pk))
            )
            self._state["id"] = answer["UploadId"]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.IN_FLIGHT, thread_name_prefix="upload-part")
        while len(self._in_flight) >= self.IN_FLIGHT:
            self._settle_oldest()
        number = len(self._state["parts"]) + len(self._in_flight) + 1
        future = self._pool.submit(_upload_part, self._upload_pk, self._state["id"], number, body)
        self._in_flight.append((number, future))

    def _settle_oldest(self) -> None:
        number, future = self._in_flight.pop(0)
        self._state["parts"].append([number, future.result()])

    def finish(self) -> None:
        while self._in_flight:
            self._settle_oldest()
        self.cancel()

    def cancel(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _upload_part(upload_pk: UUID, multipart_id: str, number: int, body: bytes) -> str:
    answer = _client().upload_part(
        Bucket=_bucket(),
        Key=_key(blob_name(upload_pk)),
        UploadId=multipart_id,
        PartNumber=number,
        Body=body,
    )
    return answer["ETag"]


def _read_pieces(pieces: list) -> bytes:
    client = _client()
    return b"".join(
        client.get_object(Bucket=_bucket(), Key=_key(name))["Body"].read() for name, _ in pieces
    )


def _delete_pieces(pieces: list) -> None:
    client = _client()
    for name, _ in pieces:
        client.delete_object(Bucket=_bucket(), Key=_key(name))


def has_bytes(upload_pk: UUID, state: State | None) -> bool:
    return state is not None


def save_artifact(upload_pk: UUID, state: State, size: int, fields: dict) -> Artifact:
    """Record the upload's bytes, made one object, as an Artifact (no byte copied).

    The Artifact row is first saved under Pulp's usual name (nothing is written: the field sees
    the file as in place) and renamed to the object in the same transaction. A concurrent
    commit of the same bytes that saved its row first wins (IntegrityError): this object goes.
    """
    name = _complete(upload_pk, state)
    artifact = Artifact(size=size, **fields)
    artifact.file.name = artifact.storage_path("")
    artifact.file._committed = True
    try:
        with transaction.atomic():
            artifact.save()
            Artifact.objects.filter(pk=artifact.pk).update(file=name)
    except IntegrityError:
        _client().delete_object(Bucket=_bucket(), Key=_key(name))
        raise
    artifact.file.name = name
    _delete_pieces(state["pieces"])
    return artifact


def _complete(upload_pk: UUID, state: State) -> str:
    """Make the upload's bytes one object (CompleteMultipartUpload, or one PUT when all are in
    pieces): S3 makes it appear whole, at once. A retried commit finds it already there."""
    name = blob_name(upload_pk)
    if _exists(name):
        return name
    client = _client()
    try:
        if state["parts"]:
            if state["pieces"]:
                sender = _PartSender(upload_pk, state)
                sender.send(_read_pieces(state["pieces"]))
                sender.finish()
            client.complete_multipart_upload(
                Bucket=_bucket(),
                Key=_key(name),
                UploadId=state["id"],
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": etag} for n, etag in state["parts"]]
                },
            )
        else:
            client.put_object(Bucket=_bucket(), Key=_key(name), Body=_read_pieces(state["pieces"]))
    except ClientError as error:
        if _code(error) in ("NoSuchUpload", "NoSuchKey", "InvalidPart", "404"):
            raise LostBytes(str(error)) from error
        raise
    return name


class LostBytes(Exception):
    """The upload's bytes are no longer in the storage (or not those the row describes)."""


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _exists(name: str) -> bool:
    try:
        _client().head_object(Bucket=_bucket(), Key=_key(name))
    except ClientError as error:
        if _code(error) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def hash_received(upload_pk: UUID, state: State, hashers: Hashers) -> None:
    """Feed every received byte to ``hashers``: the last resort for a digest algorithm that
    was not hashed while the bytes came in. S3 cannot read an unfinished multipart upload, so
    the object is completed first (no Artifact names it: a mismatch removes it)."""
    name = _complete(upload_pk, state)
    body = _client().get_object(Bucket=_bucket(), Key=_key(name))["Body"]
    for chunk in chunks_of(body):
        for hasher in hashers.values():
            hasher.update(chunk)


def remove(upload_pk: UUID, state: State | None) -> None:
    """Abort the multipart upload and delete the pieces (whatever is left of the upload)."""
    if not state:
        return
    client = _client()
    if state.get("id"):
        _abort(upload_pk, state["id"])
    _delete_pieces(state.get("pieces", []))
    # A commit that completed the object but did not record it leaves it unnamed: remove it.
    name = blob_name(upload_pk)
    if not Artifact.objects.filter(file=name).exists():
        client.delete_object(Bucket=_bucket(), Key=_key(name))


def _abort(upload_pk: UUID, multipart_id: str) -> None:
    try:
        _client().abort_multipart_upload(
            Bucket=_bucket(), Key=_key(blob_name(upload_pk)), UploadId=multipart_id
        )
    except ClientError as error:
        if _code(error) != "NoSuchUpload":
            raise
