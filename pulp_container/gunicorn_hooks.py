"""gunicorn hooks of pulpcore-api (``--config python:pulp_container.gunicorn_hooks``).

- A worker still receiving an upload's bytes tells the arbiter it is alive (``keep_alive``), so
  the worker timeout ends stuck workers, not long uploads.
- A worker's database heartbeat that fails during an outage is logged and retried at the next
  beat; pulpcore's own ends the worker, and then the whole server (gunicorn stops when a worker
  exits with its boot-error status), for a database restart.
- Requests gunicorn itself refuses (bad request line, header or Content-Length) are answered with
  OCI error JSON, as everything else, rather than gunicorn's HTML page.
- Request bodies are read from the socket in pieces of ``BODY_RECV_BYTES``, not gunicorn's 8 KiB:
  a 512 MiB layer was 65,536 ``recv`` calls, each with its own Python buffer copies, and the API
  process spent more CPU on that than on hashing and writing the bytes (issue 12).
- A new worker answers one request of its own (``GET /v2/`` without credentials, a 401 that reads
  no database) before it takes any: Django, DRF and the URL configuration load lazily, and the
  first request a fresh worker served took 190-210 ms instead of 1-2 (every start, and every
  worker gunicorn recycles after ``max_requests``).
- A worker that has stopped (its requests answered, pulpcore's cleanup done) ends at once: Python's
  own finalization of a Pulp worker takes seconds of CPU (more with several workers on a busy
  machine), which every stop of ``make run``, and a restart, waited for.

Used by pulpcore-api and pulpcore-content (scripts/run.sh).
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time
from typing import Any

from gunicorn import util
from gunicorn.http import unreader

from pulp_container.app.exceptions import error_body, error_for_status
from pulp_container.constants import API_VERSION_HEADER, API_VERSION_VALUE

log = logging.getLogger(__name__)

# At most one notification per this many seconds: it touches a file.
_NOTIFY_EVERY = 1.0

# What one recv() of a request body may return (gunicorn's SocketUnreader reads 8 KiB).
BODY_RECV_BYTES = 256 * 1024

_worker: Any = None
_last_notified = 0.0


def post_worker_init(worker) -> None:
    global _worker
    _worker = worker
    _survive_database_outages(worker)
    util.write_error = _write_oci_error
    unreader.SocketUnreader.__init__.__defaults__ = (BODY_RECV_BYTES,)
    _warm_up(worker)


def _warm_up(worker) -> None:
    """Serve ``GET /v2/`` (no credentials) to this worker's own application, once."""
    if not hasattr(worker, "wsgi"):  # pulpcore-content: an aiohttp worker
        return
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/v2/",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    started = time.monotonic()
    try:
        response = worker.wsgi(environ, lambda status, headers, exc_info=None: None)
        for _ in response:
            pass
        getattr(response, "close", lambda: None)()
    except Exception as error:  # noqa: BLE001 - a warm-up that fails changes nothing
        log.debug("warm-up request failed: %s", error)
        return
    log.debug("warm-up request answered in %.0f ms", (time.monotonic() - started) * 1000)


def worker_exit(server, worker) -> None:
    """Called in the worker as it exits, after its last request and pulpcore's cleanup."""
    if not getattr(worker, "booted", False):
        return  # a boot failure keeps its exit status: gunicorn stops on it
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def keep_alive() -> None:
    """Tell the arbiter this worker is alive; call while a request is still moving bytes.

    Outside gunicorn (tests, management commands) this does nothing.
    """
    global _last_notified
    if _worker is None:
        return
    now = time.monotonic()
    if now - _last_notified >= _NOTIFY_EVERY:
        _last_notified = now
        _worker.notify()


def _survive_database_outages(worker) -> None:
    beat = getattr(worker, "heartbeat", None)
    if beat is None:
        return

    def heartbeat() -> None:
        try:
            beat()
        except Exception as error:  # DatabaseError, InterfaceError: the database is away
            log.warning("API heartbeat not written (%s); trying again at the next beat", error)

    worker.heartbeat = heartbeat


def _write_oci_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = error_body(error_for_status(status_int, f"{reason}: {mesg}"))
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{API_VERSION_HEADER}: {API_VERSION_VALUE}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)
