#!/usr/bin/env bash
# Keeps one service running: scripts/supervise.sh NAME COMMAND [ARGS...]  (used by run.sh)
#
# - Starts COMMAND in its own process group; when it exits, for whatever reason, starts it again
#   after a backoff of 0.5 s doubling to PULP_RESTART_BACKOFF_MAX (2 s), back to 0.5 s once a run
#   lasted 30 s. run.sh's services start through pulp_container/database_gate.py, which loads
#   the service and then waits for the database: one that ended in a database outage is loaded
#   and waiting when the database is back, and serves within a second.
# - SIGTERM/SIGINT/SIGHUP: stops the service's whole group (SIGTERM, SIGKILL after 20 s), exits 0.
# - The service gets SIGTERM when this script dies, even by SIGKILL (PR_SET_PDEATHSIG via
#   setpriv); run.sh starts this script the same way, so killing run.sh leaves nothing running.
#
# scripts/supervise.sh --watchdog PG_STARTED RUN_PID: run.sh's watchdog. Sleeps until SIGTERM
# (sent when run.sh dies), then stops the embedded PostgreSQL if run.sh started it (PG_STARTED=1)
# and removes run.pid and run.ready if they are still run.sh's.
set -uo pipefail
if [[ "${1:-}" == --watchdog ]]; then
    source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
    pg_started="$2" run_pid="$3"
    cleanup() {
        sleep 2 # the services go first (they get SIGTERM from their supervisors)
        [[ "$pg_started" == 1 ]] && "$PULP_REPO_ROOT/scripts/postgres.sh" stop
        if [[ "$(cat "$PULP_RUN_PID" 2>/dev/null)" == "$run_pid" ]]; then
            rm -f "$PULP_RUN_PID" "$PULP_READY_FILE"
        fi
        exit 0
    }
    trap cleanup TERM INT HUP
    while true; do
        sleep 5 &
        wait $!
    done
fi
name="$1"
shift
max_backoff="${PULP_RESTART_BACKOFF_MAX:-2}"
child=""

log() { printf '[supervise %s %s] %s\n' "$(date +%T)" "$name" "$*"; }

stop() {
    trap '' TERM INT HUP
    if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
        kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null
        for _ in $(seq 100); do
            kill -0 -- "-$child" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL -- "-$child" 2>/dev/null || true
    fi
    exit 0
}
trap stop TERM INT HUP

backoff=0.5
while true; do
    started=$SECONDS
    set -m
    setpriv --pdeathsig TERM -- "$@" </dev/null &
    child=$!
    set +m
    wait "$child"
    rc=$?
    if ((SECONDS - started >= 30)); then
        backoff=0.5
    fi
    log "exited with status $rc after $((SECONDS - started)) s; restarting in ${backoff} s"
    # The group may still hold workers of the dead process (gunicorn's, task subprocesses).
    kill -TERM -- "-$child" 2>/dev/null || true
    sleep "$backoff" &
    wait $!
    backoff=$(awk -v b="$backoff" -v m="$max_backoff" 'BEGIN { b *= 2; print (b > m ? m : b) }')
done
