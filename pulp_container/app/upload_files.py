"""The bytes of uploads in progress on the filesystem storage (Pulp's WORKING_DIRECTORY).

WORKING_DIRECTORY is shared by every API process of the host and lies on the same filesystem as
the artifact storage, so an upload started on one process continues on another, and a finished
upload becomes an artifact by a rename, not a copy. (Several hosts: object storage,
``upload_objects``.) The interface is the one ``upload_stores`` describes.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import BinaryIO
from uuid import UUID

from django.conf import settings
from django.core.files import File
from pulpcore.plugin.models import Artifact

from pulp_container.app.hash_state import Hashers
from pulp_container.app.row_writes import new_rows, recoverable, write_together
from pulp_container.app.streams import chunks_of

# Chunks read but not yet written and hashed: bounds an upload's memory to a few MiB.
_CHUNKS_IN_FLIGHT = 4


def upload_path(upload_pk: UUID) -> Path:
    return Path(settings.WORKING_DIRECTORY) / "container-uploads" / str(upload_pk)


def create(upload_pk: UUID) -> None:
    path = upload_path(upload_pk)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


class Appended:
    """What one request added; a request whose chunk does not count is cut off again."""

    def __init__(self, upload_pk: UUID, offset: int, written: int) -> None:
        self.written = written
        self.state = None
        self._upload_pk = upload_pk
        self._offset = offset

    def counted(self) -> None:
        pass

    def discarded(self) -> None:
        os.truncate(upload_path(self._upload_pk), self._offset)


def write(
    upload_pk: UUID,
    offset: int,
    state: None,
    stream: BinaryIO,
    limit: int | None,
    hashers: Hashers,
) -> Appended:
    """Write ``stream`` into the upload's file from ``offset``, hashing each chunk as written.

    Reads at most ``limit`` bytes (all of the stream when None) and returns how many were
    written. Anything beyond ``offset`` left by an earlier, interrupted request is cut off
    first, so a retried chunk never leaves stale bytes behind. Reading from the socket runs in
    this thread while a second one writes and hashes the chunks before it (file writes and
    hashing release the GIL), with at most a few chunks in flight, so memory stays flat.
    """
    written = 0
    with open(upload_path(upload_pk), "r+b") as upload_file:
        upload_file.truncate(offset)
        upload_file.seek(offset)
        with _Sink(upload_file, hashers) as sink:
            for chunk in chunks_of(stream, limit):
                sink.put(chunk)
                written += len(chunk)
    return Appended(upload_pk, offset, written)


class _Sink:
    """A thread that writes chunks to a file and feeds them to hashers, in order."""

    def __init__(self, target: BinaryIO, hashers: Hashers) -> None:
        self._target = target
        self._hashers = list(hashers.values())
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=_CHUNKS_IN_FLIGHT)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="upload-sink", daemon=True)

    def __enter__(self) -> _Sink:
        self._thread.start()
        return self

    def put(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._chunks.put(chunk)

    def _drain(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._error is not None:
                continue
            try:
                self._target.write(chunk)
                for hasher in self._hashers:
                    hasher.update(chunk)
            except BaseException as error:  # handed to the reading thread, raised there
                self._error = error

    def __exit__(self, *exc_info) -> None:
        self._chunks.put(None)
        self._thread.join()
        if self._error is not None and exc_info[0] is None:
            raise self._error


def hash_received(upload_pk: UUID, state: None, hashers: Hashers) -> None:
    """Feed every received byte to ``hashers`` (a digest algorithm not hashed on the way in)."""
    with open(upload_path(upload_pk), "rb") as upload_file:
        for chunk in chunks_of(upload_file):
            for hasher in hashers.values():
                hasher.update(chunk)


def has_bytes(upload_pk: UUID, state: None) -> bool:
    return upload_path(upload_pk).is_file()


def save_artifact(upload_pk: UUID, state: None, size: int, fields: dict) -> Artifact:
    """Record the upload's file as an Artifact: the storage moves a second name of it into
    place. The upload's own name stays until the commit is recorded: a crash at any point
    before leaves the bytes where a retried commit finds them."""
    path = upload_path(upload_pk)
    link = path.with_name(f"{path.name}.commit")
    link.unlink(missing_ok=True)
    os.link(path, link)
    artifact = Artifact(file=_UploadedFile(link), size=size, **fields)
    try:
        artifact.before_save()  # pulpcore's check of the digests (a hook of Artifact.save)
        rows = new_rows(artifact)  # the file field moves the file into place, as in save()
        with recoverable():
            write_together(rows)
    finally:
        artifact.file.close()
    return artifact


class _UploadedFile(File):
    """The upload's file as Django storage sees it: a temporary file it can move into place."""

    def __init__(self, path) -> None:
        super().__init__(open(path, "rb"), name=str(path))
        self._path = str(path)

    def temporary_file_path(self) -> str:
        return self._path


def remove(upload_pk: UUID, state: None = None) -> None:
    path = upload_path(upload_pk)
    path.unlink(missing_ok=True)
    path.with_name(f"{path.name}.commit").unlink(missing_ok=True)
