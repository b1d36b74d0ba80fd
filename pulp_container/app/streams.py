"""Reading a stream (a request body, an upload file, an object) in chunks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from pulp_container.constants import STREAM_CHUNK_BYTES
from pulp_container.gunicorn_hooks import keep_alive


def chunks_of(stream: BinaryIO, limit: int | None = None) -> Iterator[bytes]:
    """``stream`` in chunks of at most ``STREAM_CHUNK_BYTES``, ``limit`` bytes in all (all of it
    when None). After each chunk the worker is marked alive: a slow client may send for longer
    than the worker timeout, and hashing a large file may take longer too."""
    read = 0
    while limit is None or read < limit:
        wanted = STREAM_CHUNK_BYTES if limit is None else min(STREAM_CHUNK_BYTES, limit - read)
        chunk = stream.read(wanted)
        if not chunk:
            return
        read += len(chunk)
        yield chunk
        keep_alive()
