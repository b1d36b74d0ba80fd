"""The bytes of uploads in progress, in shared storage (Pulp's WORKING_DIRECTORY).

WORKING_DIRECTORY is shared by every API process and lies on the same filesystem as the
artifact storage, so an upload started on one process continues on another, and a finished
upload becomes an artifact by a rename, not a copy.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO
from uuid import UUID

from django.conf import settings

from pulp_container.constants import STREAM_CHUNK_BYTES
from pulp_container.gunicorn_hooks import keep_alive

Hashers = dict[str, "hashlib._Hash"]

# Chunks read but not yet written and hashed: bounds an upload's memory to a few MiB.
_CHUNKS_IN_FLIGHT = 4


def upload_path(upload_pk: UUID) -> Path:
    return Path(settings.WORKING_DIRECTORY) / "container-uploads" / str(upload_pk)


def create_upload_file(upload_pk: UUID) -> None:
    path = upload_path(upload_pk)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def new_hashers(algorithms: Iterable[str]) -> Hashers:
    return {algorithm: hashlib.new(algorithm) for algorithm in algorithms}


def write_at(
    upload_pk: UUID,
    offset: int,
    stream: BinaryIO,
    limit: int | None,
    hashers: Hashers,
) -> int:
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
            while limit is None or written < limit:
                wanted = STREAM_CHUNK_BYTES
                if limit is not None:
                    wanted = min(wanted, limit - written)
                chunk = stream.read(wanted)
                if not chunk:
                    break
                sink.put(chunk)
                written += len(chunk)
                # A slow client may send for longer than the worker timeout: still alive.
                keep_alive()
    return written


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


def hash_upload_file(upload_pk: UUID, algorithms: Iterable[str]) -> dict[str, str]:
    """Hash the whole file once: the commit of an upload that came in several requests."""
    hashers = new_hashers(algorithms)
    with open(upload_path(upload_pk), "rb") as upload_file:
        while chunk := upload_file.read(STREAM_CHUNK_BYTES):
            for hasher in hashers.values():
                hasher.update(chunk)
            keep_alive()
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def has_upload_file(upload_pk: UUID) -> bool:
    return upload_path(upload_pk).is_file()


def commit_link(upload_pk: UUID) -> Path:
    """A second name for the upload's file, which storage moves into place as the artifact.

    The upload's own name stays until the commit is recorded: a crash at any point before
    leaves the bytes where a retried commit finds them.
    """
    path = upload_path(upload_pk)
    link = path.with_name(f"{path.name}.commit")
    link.unlink(missing_ok=True)
    os.link(path, link)
    return link


def truncate_upload_file(upload_pk: UUID, size: int) -> None:
    os.truncate(upload_path(upload_pk), size)


def remove_upload_file(upload_pk: UUID) -> None:
    path = upload_path(upload_pk)
    path.unlink(missing_ok=True)
    path.with_name(f"{path.name}.commit").unlink(missing_ok=True)
