"""Start a Pulp service as soon as its database answers, already loaded (issue 13).

    python -m pulp_container.database_gate pulpcore-worker [ARGS...]

scripts/run.sh starts pulpcore-api, pulpcore-content and pulpcore-worker through this, under
scripts/supervise.sh. The worker and the content app end themselves when they lose the database
(pulpcore's choice: a heartbeat it cannot write); their supervisor starts them again. Starting a
Python process of Pulp costs seconds of imports (several on a busy machine), and started during
an outage it would only fail again. So this module first loads Django, every Pulp app and the
service's entry point, then waits, polling every ``POLL_SECONDS``, until a connection to the
database succeeds, closes it (nothing opened here may cross gunicorn's fork), and only then calls
the service's console-script entry point in this same process. A service that lost the database
is thus serving again a fraction of a second after the database is back, not a process start
later.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from importlib.metadata import entry_points

import django
from django.db import DatabaseError, InterfaceError, connections

POLL_SECONDS = 0.2
# Log the wait once, then every this many seconds.
LOG_EVERY_SECONDS = 30.0

log = logging.getLogger("pulp_container.database_gate")


def _database_answers() -> str | None:
    """None when a connection to the default database succeeds, else why it failed."""
    try:
        connections["default"].ensure_connection()
        return None
    except (DatabaseError, InterfaceError) as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    finally:
        connections.close_all()


def wait_for_database(name: str) -> float:
    """Block until the database answers; the seconds waited."""
    started = time.monotonic()
    last_logged = None
    while (failure := _database_answers()) is not None:
        now = time.monotonic()
        if last_logged is None or now - last_logged >= LOG_EVERY_SECONDS:
            log.warning("%s waits for the database (%s)", name, failure)
            last_logged = now
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m pulp_container.database_gate CONSOLE_SCRIPT [ARGS...]")
    name = sys.argv[1]
    found = entry_points(group="console_scripts", name=name)
    if not found:
        sys.exit(f"database_gate: no console script named {name!r}")
    (script,) = tuple(found)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pulpcore.app.settings")
    django.setup()  # Pulp's logging configuration too
    service = script.load()
    waited = wait_for_database(name)
    if waited >= POLL_SECONDS:
        log.warning("%s: the database answers after %.1f s; starting", name, waited)
    # The service reads its own arguments (click), as if started by its console script.
    sys.argv = [name, *sys.argv[2:]]
    sys.exit(service())


if __name__ == "__main__":
    main()
