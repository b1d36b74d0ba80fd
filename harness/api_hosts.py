"""The API hosts behind the front, one by one (``PULP_API_HOSTS``, scripts/run.sh).

Each pulpcore-api host listens on a Unix socket of the data folder (host 1 ``run/api.sock``,
host N ``run/api-N.sock``, as scripts/env.sh names them); the front sends requests to them in
turn. Tests that must choose the host of each request (an upload whose chunks alternate between
hosts) talk to the sockets directly, past the front.
"""

from __future__ import annotations

import http.client
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.server import data_dir


def host_count(environment: Mapping[str, str] | None = None) -> int:
    environment = os.environ if environment is None else environment
    return int(environment.get("PULP_API_HOSTS", "1") or 1)


def host_socket(host: int, environment: Mapping[str, str] | None = None) -> Path:
    run = data_dir(environment).resolve() / "run"
    return run / ("api.sock" if host == 1 else f"api-{host}.sock")


def host_working_directory(host: int, environment: Mapping[str, str] | None = None) -> Path:
    return data_dir(environment).resolve() / "hosts" / str(host) / "tmp"


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, public_host: str) -> None:
        super().__init__(public_host, timeout=120)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def request(
    host: int,
    method: str,
    path: str,
    public_host: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> Answer:
    """One request to API host ``host`` as the front would forward it (HTTPS, ``public_host``)."""
    connection = _UnixConnection(host_socket(host), public_host)
    try:
        connection.request(
            method,
            path,
            body=body,
            headers={
                "Host": public_host,
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": public_host,
                "Content-Length": str(len(body)),
                **(headers or {}),
            },
        )
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()
