#!/usr/bin/env bash
# Runs one Pulp instance in the foreground (`make run`): see README.md.
#
#   install (unless PULP_SKIP_INSTALL=1) -> embedded PostgreSQL (unless PULP_DATABASE_HOST)
#   -> settings -> migrate -> admin password -> pulpcore-api, pulpcore-content (Unix sockets),
#   nginx (scripts/front.sh: the public ports, HTTPS), pulpcore-worker in the background,
#   logs in $PULP_DATA_DIR/logs/ -> wait for /status/
#   -> banner, touch $PULP_DATA_DIR/run.ready -> wait.
#
# Ctrl-C or SIGTERM stops every process started here (and the embedded PostgreSQL when this
# script started it) and exits 0. If a Pulp process dies, everything is stopped and the
# script exits 1. If Pulp does not answer within PULP_START_TIMEOUT seconds (120), exit 1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
SCRIPTS="$PULP_REPO_ROOT/scripts"
# Every line says how long since `make run` started (install included): a first run is minutes.
pulp_log() { printf '[%s +%ss] %s\n' "$(basename "$0")" "$SECONDS" "$*" >&2 2>/dev/null || true; }
START_TIMEOUT="${PULP_START_TIMEOUT:-120}"

if [[ "${PULP_SKIP_INSTALL:-0}" != 1 ]]; then
    "$SCRIPTS/install.sh"
fi
command -v pulpcore-manager >/dev/null 2>&1 ||
    pulp_die "pulpcore-manager not found in $PULP_VENV; run 'make install'"

mkdir -p "$PULP_DATA_DIR" "$PULP_LOG_DIR"

# One run.sh per data folder.
if [[ -f "$PULP_RUN_PID" ]]; then
    other="$(cat "$PULP_RUN_PID" 2>/dev/null || true)"
    if [[ -n "$other" && "$other" != "$$" ]] && kill -0 "$other" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$other/cmdline" 2>/dev/null | grep -q 'run\.sh'; then
        pulp_die "an instance already runs on $PULP_DATA_DIR (run.sh pid $other)"
    fi
fi
for port in "$PULP_API_PORT" "$PULP_CONTENT_PORT"; do
    if pulp_port_in_use "$port"; then
        pulp_die "port 127.0.0.1:$port is already in use; pick other PULP_API_PORT/PULP_CONTENT_PORT"
    fi
done

echo "$$" >"$PULP_RUN_PID"
rm -f "$PULP_READY_FILE"

pids=()
names=()
step_pid=""
pg_started=0
stopping=0

stop_all() {
    local i pid deadline alive
    rm -f "$PULP_READY_FILE"
    if [[ -n "${watchdog_pid:-}" ]]; then
        kill -KILL -- "-$watchdog_pid" 2>/dev/null || true
    fi
    if [[ -n "$step_pid" ]]; then
        kill -TERM "$step_pid" 2>/dev/null || true
    fi
    # Each background process leads its own process group (set -m): signal whole groups, so
    # gunicorn workers and task subprocesses go too.
    for pid in "${pids[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        alive=0
        for pid in "${pids[@]}"; do
            kill -0 -- "-$pid" 2>/dev/null && alive=1
        done
        ((alive)) || break
        sleep 0.2
    done
    for i in "${!pids[@]}"; do
        if kill -0 -- "-${pids[$i]}" 2>/dev/null; then
            pulp_log "${names[$i]} did not stop in time: SIGKILL"
            kill -KILL -- "-${pids[$i]}" 2>/dev/null || true
        fi
    done
    wait 2>/dev/null || true
    if [[ "$pg_started" == 1 ]]; then
        "$SCRIPTS/postgres.sh" stop || true
    fi
    if [[ "$(cat "$PULP_RUN_PID" 2>/dev/null || true)" == "$$" ]]; then
        rm -f "$PULP_RUN_PID"
    fi
}

finish() {
    local rc=$1
    # Stop even when the terminal or pipe that reads our output is gone.
    set +e
    trap '' PIPE
    trap - INT TERM HUP EXIT
    if ((stopping == 0)); then
        stopping=1
        pulp_log "stopping Pulp ($PULP_DATA_DIR)"
        stop_all
        pulp_log "stopped"
    fi
    exit "$rc"
}
trap 'finish 0' INT TERM HUP
trap 'finish $?' EXIT

# Runs a command in the background and waits, so that a signal interrupts the wait.
run_step() {
    local log="$1"
    shift
    "$@" >>"$log" 2>&1 &
    step_pid=$!
    local rc=0
    wait "$step_pid" || rc=$?
    step_pid=""
    if ((rc != 0)); then
        tail -n 40 "$log" >&2 || true
        pulp_die "'$*' failed (exit $rc); full log: $log"
    fi
}

# Supervision (issue 13): if run.sh is killed with SIGKILL, this watchdog (which gets SIGTERM
# when run.sh dies, PR_SET_PDEATHSIG) stops the embedded PostgreSQL started here and removes
# run.pid; the services go by themselves (see start_bg). stop_all ends it first.
watchdog_pid=""
start_watchdog() {
    set -m
    setpriv --pdeathsig TERM -- "$SCRIPTS/supervise.sh" --watchdog "$pg_started" "$$" \
        >>"$PULP_LOG_DIR/watchdog.log" 2>&1 </dev/null &
    watchdog_pid=$!
    set +m
}

if [[ "$PULP_EMBEDDED_DB" == 1 ]]; then
    if ! "$SCRIPTS/postgres.sh" status >/dev/null 2>&1; then
        pg_started=1
        "$SCRIPTS/postgres.sh" start
    else
        pulp_log "using the running embedded PostgreSQL (left running at exit)"
    fi
else
    pulp_log "using database $PULP_DATABASE_NAME at $PULP_DATABASE_HOST:$PULP_DATABASE_PORT"
fi
start_watchdog

"$SCRIPTS/settings.sh"

pulp_log "migrating the database (log: $PULP_LOG_DIR/migrate.log; a first run applies every migration, about a minute)"
"$SCRIPTS/schema_cache.sh" restore || true
run_step "$PULP_LOG_DIR/migrate.log" pulpcore-manager migrate --noinput
"$SCRIPTS/schema_cache.sh" save || true
run_step "$PULP_LOG_DIR/migrate.log" pulpcore-manager reset-admin-password --password "$PULP_ADMIN_PASSWORD"

# Start the services, each under scripts/supervise.sh (restarts with backoff, issue 13) in its own
# process group (set -m) with SIGINT not ignored; a supervisor and its service die with run.sh,
# even when run.sh is killed with SIGKILL (PR_SET_PDEATHSIG).
start_bg() {
    local name="$1"
    shift
    local log="$PULP_LOG_DIR/$name.log"
    printf '\n==== %s: starting %s (run.sh pid %s)\n' "$(date -Is)" "$name" "$$" >>"$log"
    set -m
    setpriv --pdeathsig TERM -- "$SCRIPTS/supervise.sh" "$name" "$@" >>"$log" 2>&1 </dev/null &
    pids+=($!)
    set +m
    names+=("$name")
    pulp_log "started $name (pid $!, log: $log)"
}

# >>> storage (issue 14): PULP_STORAGE=s3 without PULP_S3_ENDPOINT starts a local S3 server
# (moto, in memory: its objects go when it stops) and makes the bucket. docs/storage.md.
if ((PULP_API_HOSTS > 1)) && [[ "$PULP_STORAGE" != s3 ]]; then
    pulp_die "PULP_API_HOSTS=$PULP_API_HOSTS needs PULP_STORAGE=s3 (hosts share no disk)"
fi
if [[ "$PULP_STORAGE" == s3 && "$PULP_S3_LOCAL" == 1 ]]; then
    pulp_port_in_use "$PULP_S3_PORT" && pulp_die "port 127.0.0.1:$PULP_S3_PORT (PULP_S3_PORT) is in use"
    pulp_log "PULP_STORAGE=s3: a local S3 server keeps objects in memory; blobs pushed before this start have lost their bytes (set PULP_S3_ENDPOINT for a lasting store)"
    start_bg s3 moto_server -H 127.0.0.1 -p "$PULP_S3_PORT"
    until pulp_port_in_use "$PULP_S3_PORT"; do
        ((SECONDS < START_TIMEOUT)) || pulp_die "the local S3 server did not start (see $PULP_LOG_DIR/s3.log)"
        sleep 0.2
    done
fi
if [[ "$PULP_STORAGE" == s3 ]]; then
    run_step "$PULP_LOG_DIR/s3.log" python "$SCRIPTS/s3_bucket.py"
fi
# <<< storage

unset GUNICORN_CMD_ARGS
gunicorn_args=""
content_gunicorn_args=""
gate=()
# Not with upstream pulp-container's venv (the benchmarks run it), which has none of these modules.
if "$PULP_VENV/bin/python" -I -c 'import importlib.util as u, sys; sys.exit(u.find_spec("pulp_container.gunicorn_hooks") is None)' 2>/dev/null; then
    # Access lines in the combined log format, or JSON with PULP_LOG_FORMAT=json (pulp_container/logs.py).
    gunicorn_args="--logger-class pulp_container.logs.AccessLogger"
    # Workers receiving an upload stay alive past --timeout; heartbeats survive a database outage;
    # gunicorn's own 400s are OCI error JSON; stopped workers end at once
    # (pulp_container/gunicorn_hooks.py, issue 13).
    gunicorn_args+=" --config python:pulp_container.gunicorn_hooks"
    content_gunicorn_args="--config python:pulp_container.gunicorn_hooks"
    # Each Pulp service loads itself, then waits for the database before it starts: one
    # restarted during a database outage serves again within a second of the database's return
    # (pulp_container/database_gate.py, issue 13).
    gate=(python -m pulp_container.database_gate)
fi
# >>> front (issue 12): nginx owns the public ports (TLS, keep-alive, HTTP/2, idle clients, blob
# bytes); pulpcore-api and pulpcore-content listen on Unix sockets behind it. scripts/front.sh.
"$SCRIPTS/front.sh" config
rm -f "$PULP_DATA_DIR"/run/api*.sock "$PULP_CONTENT_SOCKET"
# API host 1 is "api" (log api.log); with PULP_API_HOSTS=N, hosts 2..N are "api-2".. Several hosts
# each get a working directory of their own: they share only PostgreSQL and the object storage.
for ((host = 1; host <= PULP_API_HOSTS; host++)); do
    host_name=api
    host_env=()
    if ((PULP_API_HOSTS > 1)); then
        ((host == 1)) || host_name="api-$host"
        host_dir="$PULP_DATA_DIR/hosts/$host/tmp"
        mkdir -p "$host_dir"
        host_env=(PULP_WORKING_DIRECTORY="$host_dir" PULP_FILE_UPLOAD_TEMP_DIR="$host_dir")
    fi
    start_bg "$host_name" env GUNICORN_CMD_ARGS="$gunicorn_args" "${host_env[@]}" \
        PULP_CONTAINER_BLOB_ACCEL_REDIRECT_PREFIX="$PULP_FRONT_MEDIA_PREFIX" \
        "${gate[@]}" pulpcore-api --bind "unix:$(pulp_api_socket "$host")" \
        --workers "$PULP_API_WORKERS" \
        --timeout "${PULP_API_TIMEOUT:-600}" --graceful-timeout 10 --no-control-socket --access-logfile -
done
start_bg content env GUNICORN_CMD_ARGS="$content_gunicorn_args" \
    "${gate[@]}" pulpcore-content --bind "unix:$PULP_CONTENT_SOCKET" \
    --graceful-timeout 10 --no-control-socket
start_bg front "$SCRIPTS/front.sh" run
# <<< front
start_bg worker "${gate[@]}" pulpcore-worker

child_died() {
    local i
    for i in "${!pids[@]}"; do
        if ! kill -0 "${pids[$i]}" 2>/dev/null; then
            pulp_log "${names[$i]} exited; last lines of $PULP_LOG_DIR/${names[$i]}.log:"
            tail -n 40 "$PULP_LOG_DIR/${names[$i]}.log" >&2 || true
            return 0
        fi
    done
    return 1
}

# Ready when the status API answers over TLS and lists a worker and a content app.
is_ready() {
    curl -fsS --max-time 5 --cacert "$PULP_CA_CERT" "$PULP_STATUS_URL" 2>/dev/null |
        python -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if s.get("online_workers") and s.get("online_content_apps") else 1)
' 2>/dev/null
}

pulp_log "waiting for $PULP_STATUS_URL (timeout ${START_TIMEOUT}s)"
deadline=$((SECONDS + START_TIMEOUT))
until is_ready; do
    if child_died; then
        finish 1
    fi
    if ((SECONDS >= deadline)); then
        pulp_log "Pulp did not become ready within ${START_TIMEOUT}s"
        for name in "${names[@]}"; do
            echo "---- tail of $PULP_LOG_DIR/$name.log" >&2
            tail -n 25 "$PULP_LOG_DIR/$name.log" >&2 || true
        done
        finish 1
    fi
    sleep 0.5
done

pulp_log "ready after ${SECONDS}s"
cert_dir="$PULP_TLS_DIR/cert-dir"
registry="127.0.0.1:$PULP_API_PORT"
cat <<BANNER

Pulp (pulp_container) is ready, ${SECONDS}s after start.  Data: $PULP_DATA_DIR
  REST API   $PULP_API_URL/pulp/api/v3/
  Status     $PULP_STATUS_URL
  Registry   $registry  (token server: $PULP_API_URL/token/)
  Content    $PULP_CONTENT_URL/pulp/content/
  Login      admin / $PULP_ADMIN_PASSWORD
  TLS CA     $PULP_CA_CERT
  Logs       $PULP_LOG_DIR/{api,content,worker,migrate,front,front-access}.log

Trust the CA:
  curl --cacert $PULP_CA_CERT -u admin:$PULP_ADMIN_PASSWORD $PULP_STATUS_URL
  skopeo/podman: --cert-dir $cert_dir (or --tls-verify=false), or for every client:
    sudo install -D -m 644 $PULP_CA_CERT /etc/containers/certs.d/$registry/ca.crt
  pulp-cli: REQUESTS_CA_BUNDLE=$PULP_CA_CERT pulp --base-url $PULP_API_URL --username admin --password $PULP_ADMIN_PASSWORD status

Push an image:
  skopeo copy --dest-cert-dir $cert_dir --dest-creds admin:$PULP_ADMIN_PASSWORD \\
      oci:./my-image:latest docker://$registry/myteam/my-image:latest
  podman login --cert-dir $cert_dir -u admin -p $PULP_ADMIN_PASSWORD $registry
  podman push --cert-dir $cert_dir localhost/my-image:latest $registry/myteam/my-image:latest

Stop with Ctrl-C (or: kill -TERM \$(cat $PULP_RUN_PID)).
BANNER
touch "$PULP_READY_FILE"

# Stay in the foreground until a signal (trap -> exit 0) or a child exits (exit 1).
rc=0
wait -n "${pids[@]}" || rc=$?
child_died || pulp_log "a Pulp process exited (status $rc)"
finish 1
