"""Log lines a person can read, or a log shipper can parse (``PULP_LOG_FORMAT=json``).

- ``AccessLogger``: gunicorn's logger class for pulpcore-api (``--logger-class``). Its access
  lines are in the combined log format of Apache and nginx, followed by the duration in
  milliseconds, whatever ``--access-logformat`` pulpcore passes (its default is a Python tuple
  that gunicorn prints as one); with ``PULP_LOG_FORMAT=json``, one JSON object per line.
- ``LineFormatter``: Django's and Pulp's own log lines, as their ``format`` says, or the same
  JSON lines with ``PULP_LOG_FORMAT=json`` (read by each process at start).
- ``OrdinaryRegistryAnswers``: a filter that keeps Django from logging a WARNING for every 401
  and 404 under ``/v2/``: a client asking whether a blob exists, or being sent to the token
  server, is how the protocol works, not a problem; the access log still has the line.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from gunicorn.glogging import Logger

LOG_FORMAT_VARIABLE = "PULP_LOG_FORMAT"
COMBINED_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'
ORDINARY_STATUSES = frozenset({401, 404})


def json_wanted() -> bool:
    return os.environ.get(LOG_FORMAT_VARIABLE, "").lower() == "json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AccessLogger(Logger):
    """gunicorn's logger, with readable access lines (see the module docstring)."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        if json_wanted():
            for handler in self.error_log.handlers:
                handler.setFormatter(LineFormatter())

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        atoms["h"] = client_address(atoms)
        if json_wanted():
            self.access_log.info(json.dumps(access_entry(atoms)))
        else:
            self.access_log.info(COMBINED_FORMAT, self.atoms_wrapper_class(atoms))


def client_address(atoms: dict[str, Any]) -> str:
    """The client's address: behind the front (a Unix socket, no peer address) the first hop
    of X-Forwarded-For, which the front sets; else the peer; else "-"."""
    peer = atoms.get("h") or ""
    if peer and peer != "-":
        return str(peer)
    forwarded = str(atoms.get("{x-forwarded-for}i") or "").split(",")[0].strip()
    return forwarded or "-"


def access_entry(atoms: dict[str, Any]) -> dict[str, Any]:
    """One access-log line as JSON fields, from gunicorn's atoms."""
    return {
        "time": _now(),
        "type": "access",
        "remote": atoms.get("h"),
        "user": atoms.get("u"),
        "method": atoms.get("m"),
        "path": atoms.get("U"),
        "query": atoms.get("q") or "",
        "protocol": atoms.get("H"),
        "status": int(str(atoms.get("s"))) if str(atoms.get("s")).isdigit() else atoms.get("s"),
        "bytes": atoms.get("B"),
        "referer": atoms.get("f"),
        "user_agent": atoms.get("a"),
        "duration_ms": atoms.get("M"),
        "correlation_id": atoms.get("{correlation-id}o"),
    }


class LineFormatter(logging.Formatter):
    """A log record as its ``format`` says, or as one JSON object (time, level, logger,
    correlation id, message) when ``PULP_LOG_FORMAT=json``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.as_json = json_wanted()

    def format(self, record: logging.LogRecord) -> str:
        if not self.as_json:
            return super().format(record)
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "type": "log",
            "level": record.levelname,
            "logger": record.name,
            "correlation_id": getattr(record, "correlation_id", None),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class OrdinaryRegistryAnswers(logging.Filter):
    """Drops Django's WARNING for a 401 or 404 answered under ``/v2/`` (see module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "django.request" or record.levelno != logging.WARNING:
            return True
        request = getattr(record, "request", None)
        path = getattr(request, "path", "")
        return not (
            getattr(record, "status_code", None) in ORDINARY_STATUSES and path.startswith("/v2/")
        )
