"""The raw body of a request as a stream, whatever its transfer encoding."""

from __future__ import annotations

from typing import BinaryIO

from django.http import HttpRequest

from pulp_container.app.exceptions import SizeInvalid


def body_stream(request: HttpRequest) -> tuple[BinaryIO, int | None]:
    """(stream, declared length or None) of the request body, read without buffering it whole.

    Go clients (skopeo, podman) send blob chunks with ``Transfer-Encoding: chunked`` and no
    Content-Length; Django then hands out an empty stream, so the server's own decoded input is
    read instead (gunicorn marks it ``wsgi.input_terminated``).
    """
    length = request.META.get("CONTENT_LENGTH")
    if length:
        try:
            return request, int(length)
        except ValueError:
            raise SizeInvalid(f"invalid Content-Length {length!r}") from None
    if (
        request.META.get("wsgi.input_terminated")
        and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    ):
        return request.META["wsgi.input"], None
    return request, 0
