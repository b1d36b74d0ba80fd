"""Requests that no HTTP library would send (a bad ``Host``, a bad ``Content-Length``, a request
line of any length), written byte for byte over TLS, and the answer parsed just enough to check
it: status, headers, body."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


def raw_request(url: str, ca_cert: Path | None, request: bytes, timeout: float = 30) -> RawAnswer:
    """Send ``request`` as is to ``url``'s host (TLS for https) and read the answer to its end
    (the request should say ``Connection: close``)."""
    parts = urlsplit(url)
    connection: socket.socket = socket.create_connection(
        (parts.hostname, parts.port), timeout=timeout
    )
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=str(ca_cert) if ca_cert else None)
        context.set_alpn_protocols(["http/1.1"])
        connection = context.wrap_socket(connection, server_hostname=parts.hostname)
    with connection:
        connection.sendall(request)
        received = bytearray()
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawAnswer(status=int(status_line.split()[1]), headers=headers, body=body)
