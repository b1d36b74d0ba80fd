#!/usr/bin/env bash
# Runs the test suite (`make test`): scripts/test.sh [pytest arguments]
#
# Uses its own instance so that it never touches the one of `make run`:
#   PULP_DATA_DIR=.pulp/test  PULP_API_PORT=24827  PULP_CONTENT_PORT=24826  (each overridable)
# Installs (unless PULP_SKIP_INSTALL=1), writes the settings, starts the embedded PostgreSQL
# (unless PULP_DATABASE_HOST), exports the environment (PULP_SETTINGS, DJANGO_SETTINGS_MODULE,
# PULP_DATA_DIR, ports, PULP_CA_CERT) and runs pytest; without arguments on every tier:
#   pytest tests/unit tests/registry tests/e2e -v
# PYTEST_ADDOPTS is honoured by pytest. The e2e fixture starts scripts/run.sh itself with this
# environment. The exit status is pytest's, except that "no tests collected" (5) is a failure.
#
# Without arguments, a second stage follows (issue 14): the e2e push, pull, mount, fresh-runner
# and topology tests again, on object storage and two API hosts (PULP_STORAGE=s3,
# PULP_API_HOSTS=2: run.sh starts a local S3 server, moto), in its own instance:
#   PULP_DATA_DIR=<data>-s3 (made anew each time), ports +10 (PULP_TEST_S3_STAGE=0 skips it;
#   =only runs only it).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PULP_DATA_DIR="${PULP_DATA_DIR:-$REPO_ROOT/.pulp/test}"
export PULP_API_PORT="${PULP_API_PORT:-24827}"
export PULP_CONTENT_PORT="${PULP_CONTENT_PORT:-24826}"
source "$REPO_ROOT/scripts/env.sh"
SCRIPTS="$REPO_ROOT/scripts"

if [[ "${PULP_SKIP_INSTALL:-0}" != 1 ]]; then
    "$SCRIPTS/install.sh"
fi

"$SCRIPTS/settings.sh"

pg_started=0
cleanup() {
    if [[ "$pg_started" == 1 ]]; then
        "$SCRIPTS/postgres.sh" stop || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ "$PULP_EMBEDDED_DB" == 1 ]] && ! "$SCRIPTS/postgres.sh" status >/dev/null 2>&1; then
    pg_started=1
    "$SCRIPTS/postgres.sh" start
fi

cd "$REPO_ROOT"
# The e2e tests that touch storage or cross hosts; the HEAD matrix and the retag test, which only
# read and write the database, are left to the first stage (they cost ~40 s here).
S3_STAGE_TESTS=(tests/e2e/test_topology.py tests/e2e/test_push_pull.py tests/e2e/test_mount.py
    tests/e2e/test_fresh_runners.py
    -k "not test_head_by_caller_and_blob_location and not test_retag_shows_both_tags")
s3_stage() {
    local -a keep=()
    [[ "$PULP_S3_LOCAL" == 1 ]] && keep+=(-u PULP_S3_ENDPOINT -u PULP_S3_PORT -u PULP_S3_LOCAL)
    pulp_log "S3 + two-host stage: ${S3_STAGE_TESTS[*]}"
    # The local S3 server keeps objects in memory: a database kept from an earlier run would name
    # blobs whose bytes are gone. The stage starts from an empty instance, as on a fresh machine.
    local stage_dir="$PULP_DATA_DIR-s3" pg_bin
    if [[ -f "$stage_dir/pgdata/postmaster.pid" ]] && pg_bin="$(pulp_find_pg_bin)"; then
        "$pg_bin/pg_ctl" -D "$stage_dir/pgdata" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$stage_dir"
    env -u PULP_DB_PORT -u PULP_SETTINGS -u PULP_CA_CERT "${keep[@]}" \
        PULP_STORAGE=s3 PULP_API_HOSTS=2 PULP_TEST_S3_STAGE=0 PULP_SKIP_INSTALL=1 \
        PULP_DATA_DIR="$stage_dir" PULP_API_PORT=$((PULP_API_PORT + 10)) \
        PULP_CONTENT_PORT=$((PULP_CONTENT_PORT + 10)) \
        "$SCRIPTS/test.sh" "${S3_STAGE_TESTS[@]}" -v
}
if [[ $# -eq 0 && "${PULP_TEST_S3_STAGE:-1}" == only ]]; then
    s3_stage
    exit $?
fi
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=()
    for tier in tests/unit tests/registry tests/e2e; do
        [[ -d "$tier" ]] && targets+=("$tier")
    done
    targets+=(-v)
fi

pulp_log "pytest ${targets[*]} (data: $PULP_DATA_DIR, API port $PULP_API_PORT, DB $DB_HOST:$DB_PORT)"
rc=0
pytest "${targets[@]}" || rc=$?
if [[ "$rc" == 5 ]]; then
    pulp_log "pytest collected no tests: failing"
    rc=1
fi
if [[ $# -eq 0 && "${PULP_TEST_S3_STAGE:-1}" != 0 ]]; then
    stage_rc=0
    s3_stage || stage_rc=$?
    ((rc != 0)) || rc=$stage_rc
fi
exit "$rc"
