"""The raw body of a request as a stream, whatever its transfer encoding."""

from __future__ import annotations

from typing import BinaryIO

from django.http import HttpRequest
from gunicorn.http.errors import ParseException

from pulp_container.app.exceptions import BlobUploadInvalid, SizeInvalid

# What gunicorn asks of the socket per read: its default of 8 KiB costs a Python call per 8 KiB.
_SOCKET_READ_BYTES = 256 * 1024
# An answer given before the body was read (401, 403, 404 ...) is sent only after reading and
# dropping the rest of the body, up to this much: see discard_unread_body.
_DISCARD_AT_MOST = 64 * 1024 * 1024


def body_stream(request: HttpRequest) -> tuple[BinaryIO, int | None]:
    """(stream, declared length or None) of the request body, read without buffering it whole.

    Go clients (skopeo, podman) may send blob chunks with ``Transfer-Encoding: chunked`` and no
    Content-Length; Django then hands out an empty stream, so the server's own decoded input is
    read instead (gunicorn marks it ``wsgi.input_terminated``).
    """
    length = request.META.get("CONTENT_LENGTH")
    if length:
        try:
            declared = int(length)
        except ValueError:
            raise SizeInvalid(f"invalid Content-Length {length!r}") from None
        if declared < 0:
            raise SizeInvalid(f"invalid Content-Length {length!r}")
        return _Guarded(_direct(request.META.get("wsgi.input"), request)), declared
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if request.META.get("wsgi.input_terminated") and chunked:
        return _Guarded(_direct(request.META["wsgi.input"], request.META["wsgi.input"])), None
    return request, 0


class _Guarded:
    """A body stream whose client may go away: that is a broken upload (400), not a server
    error, and is not logged as one."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except (OSError, ParseException) as error:
            raise BlobUploadInvalid(f"the client stopped sending the body: {error}") from None


def _direct(server_input, fallback: BinaryIO) -> BinaryIO:
    """gunicorn's input object, read through the reader beneath it when it has one.

    gunicorn's ``Body.read`` gathers a large read 1 KiB at a time, re-buffering what it read
    past each KiB; that was most of an upload's CPU time. The reader underneath (length or
    chunked framing) returns a whole MiB per call. Anything else is read as it is.
    """
    reader = getattr(server_input, "reader", None)
    buffered = getattr(server_input, "buf", None)
    if reader is None or buffered is None or not hasattr(reader, "read"):
        return fallback
    unreader = getattr(reader, "unreader", None)
    if unreader is not None and hasattr(unreader, "mxchunk"):
        unreader.mxchunk = max(unreader.mxchunk, _SOCKET_READ_BYTES)
    return _FramedBody(buffered.getvalue(), reader)


class _FramedBody:
    """Bytes gunicorn already buffered, then its framing reader, one large read at a time."""

    def __init__(self, buffered: bytes, reader) -> None:
        self._buffered = buffered
        self._reader = reader

    def read(self, size: int = -1) -> bytes:
        if self._buffered:
            data = self._buffered[:size] if size >= 0 else self._buffered
            self._buffered = self._buffered[len(data) :]
            return data
        return self._reader.read(size if size >= 0 else 2**31)


def discard_unread_body(request: HttpRequest) -> None:
    """Read and drop what the client still sends of a body that no view read.

    gunicorn closes the connection after each answer; closing a socket with unread bytes makes
    the kernel reset it, and the front (nginx), still streaming the body to it, then loses the
    answer and tells the client 502 (or the client sees the connection reset). So an early
    answer (an upload refused with 401 before its token, a 403, a 404) would reach the client as
    a server error. Draining first lets the answer through. Past ``_DISCARD_AT_MOST`` bytes the
    connection is given up instead: nobody is served by receiving a huge refused body.
    """
    length = request.META.get("CONTENT_LENGTH")
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not (chunked or (length and length != "0")):
        return
    server_input = request.META.get("wsgi.input")
    if getattr(server_input, "reader", None) is None:
        return  # not gunicorn's body: its server does not reset the connection
    left = _DISCARD_AT_MOST
    try:
        stream = _direct(server_input, server_input)
        while left > 0:
            data = stream.read(min(left, _SOCKET_READ_BYTES))
            if not data:
                return
            left -= len(data)
    except (OSError, ValueError, ParseException):
        return
