"""pulpcore-api, threaded: ``threaded_api.py THREADS <pulpcore-api options>``.

pulpcore-api enforces its own worker, a sync one (one request at a time per process) that
records the API process in Pulp's status and writes its heartbeat. This launcher runs the same
application with the same options (``GUNICORN_CMD_ARGS`` included: our access logger and
``pulp_container.gunicorn_hooks``) and the same worker setup, over gunicorn's ``gthread``
worker with THREADS threads per process. ``scripts/run.sh`` uses it when ``PULP_API_THREADS`` is
above 1. It is a launcher, not plugin code: it reaches pulpcore's entry point directly.
"""

from __future__ import annotations

import sys

from gunicorn.workers.gthread import ThreadWorker
from pulpcore.app import entrypoint  # noqa: TID251 - the server entry point, not plugin code

THREADS = 1


class ThreadedApiWorker(ThreadWorker, entrypoint.PulpApiWorker):
    """gthread's request loop; pulpcore's process setup (status record, heartbeat thread)."""

    def run(self) -> None:
        try:
            ThreadWorker.run(self)
        finally:
            if getattr(self, "app_status", None) is not None:
                self.app_status.delete()


class ThreadedApiApplication(entrypoint.PulpcoreApiApplication):
    def load_app_specific_config(self) -> None:
        super().load_app_specific_config()
        self.cfg.set("worker_class", ThreadedApiWorker)
        self.cfg.set("threads", THREADS)


def main() -> None:
    global THREADS
    THREADS = int(sys.argv.pop(1))
    entrypoint.PulpcoreApiApplication = ThreadedApiApplication
    entrypoint.main()


if __name__ == "__main__":
    main()
