`make run` supervises its services (restart with backoff; SIGTERM stops everything; SIGKILL of `run.sh` leaves nothing running, the embedded PostgreSQL included).
Uploads of any length: an upload session started under a valid token continues after the token expired (same user, session kept active), and an API worker receiving bytes is not killed by gunicorn's timeout (`PULP_API_TIMEOUT`).
Idle pushes expire: a scheduled task removes upload sessions and unreferenced pending content idle longer than `CONTAINER_PUSH_EXPIRY` (24 h), never touching an active push, and records what it removed.
A property-based test tier sends over 10,000 generated requests to every /v2/ route in `make test` (`PULP_PROPERTY_EXAMPLES` for more).
