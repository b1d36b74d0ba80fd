# shellcheck shell=bash
# Environment shared by every script (sourced, never executed).
#
# Everything a Pulp instance needs is derived from a few variables, each with a default, so that
# several instances can run side by side with different ports and data folders:
#
#   PULP_API_PORT        24817      REST API + registry (/v2/, /token/), HTTPS
#   PULP_CONTENT_PORT    24816      content app (blob bytes), HTTP
#   PULP_ADMIN_PASSWORD  password   password of the `admin` user
#   PULP_DATA_DIR        .pulp      all state: settings, keys, TLS, media, logs, embedded PostgreSQL
#   PULP_DB_PORT         API+3      TCP port of the embedded PostgreSQL cluster (127.0.0.1); it
#                                   asks a password (SCRAM), generated once into
#                                   $PULP_DATA_DIR/secrets/db_password (pulp_embedded_db_password)
#   PULP_API_WORKERS     4          gunicorn processes of pulpcore-api
#   PULP_TOKEN_AUTH_DISABLED false  disable the registry token server (anonymous push/pull)
#
# With PULP_DATABASE_HOST set, that database is used and no embedded cluster is started:
#   PULP_DATABASE_PORT (5432), PULP_DATABASE_NAME (pulp), PULP_DATABASE_USER (postgres),
#   PULP_DATABASE_PASSWORD (empty).
#
# Note: pulpcore's dynaconf also reads every PULP_* environment variable as a setting
# (PULP_FOO=1 -> settings.FOO). The names above do not collide with real settings, except
# PULP_TOKEN_AUTH_DISABLED, which sets TOKEN_AUTH_DISABLED on purpose.

if [[ -n "${_PULP_ENV_SOURCED:-}" ]]; then
    return 0
fi
_PULP_ENV_SOURCED=1

PULP_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

export PULP_API_PORT="${PULP_API_PORT:-24817}"
export PULP_CONTENT_PORT="${PULP_CONTENT_PORT:-24816}"
export PULP_ADMIN_PASSWORD="${PULP_ADMIN_PASSWORD:-password}"
export PULP_API_WORKERS="${PULP_API_WORKERS:-4}"
export PULP_DB_PORT="${PULP_DB_PORT:-$((PULP_API_PORT + 3))}"
export PULP_TOKEN_AUTH_DISABLED="${PULP_TOKEN_AUTH_DISABLED:-false}"

# A relative PULP_DATA_DIR is relative to the current folder; the default lives in the repo.
# Storage (docs/storage.md): fs (default, MEDIA_ROOT on this host) or s3 (object storage; without
# PULP_S3_ENDPOINT, run.sh starts a local S3 server, moto, on PULP_S3_PORT).
export PULP_STORAGE="${PULP_STORAGE:-fs}"
case "$PULP_STORAGE" in
fs | s3) ;;
*) echo "PULP_STORAGE must be fs or s3, not '$PULP_STORAGE'" >&2 && exit 1 ;;
esac
export PULP_S3_PORT="${PULP_S3_PORT:-$((PULP_API_PORT + 4))}"
# (PULP_S3_LOCAL is decided once, by the outermost script: its children inherit the endpoint.)
if [[ -z "${PULP_S3_LOCAL:-}" ]]; then
    PULP_S3_LOCAL=1
    [[ -z "${PULP_S3_ENDPOINT:-}" ]] || PULP_S3_LOCAL=0
fi
if [[ "$PULP_S3_LOCAL" == 1 ]]; then
    PULP_S3_ENDPOINT="http://127.0.0.1:$PULP_S3_PORT"
fi
export PULP_S3_ENDPOINT PULP_S3_LOCAL
export PULP_S3_BUCKET="${PULP_S3_BUCKET:-pulp}"
export PULP_S3_ACCESS_KEY="${PULP_S3_ACCESS_KEY:-pulp-local}"
export PULP_S3_SECRET_KEY="${PULP_S3_SECRET_KEY:-pulp-local-secret}"
export PULP_S3_REGION="${PULP_S3_REGION:-us-east-1}"
# API hosts behind the front (round-robin): each its own pulpcore-api, socket and working
# directory; they share only the database and the storage (PULP_STORAGE=s3 for more than one).
export PULP_API_HOSTS="${PULP_API_HOSTS:-1}"

PULP_DATA_DIR="${PULP_DATA_DIR:-$PULP_REPO_ROOT/.pulp}"
PULP_DATA_DIR="$(realpath -m -- "$PULP_DATA_DIR")"
export PULP_DATA_DIR

# Python virtualenv of the project.
PULP_VENV="${PULP_VENV:-$PULP_REPO_ROOT/.venv}"
export PATH="$PULP_VENV/bin:$PATH"

# Database: an external one (PULP_DATABASE_HOST) or the embedded cluster.
if [[ -n "${PULP_DATABASE_HOST:-}" ]]; then
    PULP_EMBEDDED_DB=0
    export PULP_DATABASE_HOST
    export PULP_DATABASE_PORT="${PULP_DATABASE_PORT:-5432}"
    export PULP_DATABASE_NAME="${PULP_DATABASE_NAME:-pulp}"
    export PULP_DATABASE_USER="${PULP_DATABASE_USER:-postgres}"
    export PULP_DATABASE_PASSWORD="${PULP_DATABASE_PASSWORD:-}"
    DB_HOST="$PULP_DATABASE_HOST"
    DB_PORT="$PULP_DATABASE_PORT"
    DB_NAME="$PULP_DATABASE_NAME"
    DB_USER="$PULP_DATABASE_USER"
    DB_PASSWORD="$PULP_DATABASE_PASSWORD"
else
    PULP_EMBEDDED_DB=1
    DB_HOST=127.0.0.1
    DB_PORT="$PULP_DB_PORT"
    DB_NAME=pulp
    DB_USER=postgres
    # Set by pulp_embedded_db_password (scripts that need it call it: it creates the file).
    DB_PASSWORD=""
fi

# Layout of the data folder.
PULP_SETTINGS_FILE="$PULP_DATA_DIR/settings.py"
PULP_SECRETS_DIR="$PULP_DATA_DIR/secrets"
# Password of the `postgres` superuser of the embedded cluster (made once, mode 0600).
PULP_DB_PASSWORD_FILE="$PULP_SECRETS_DIR/db_password"
PULP_LOG_DIR="$PULP_DATA_DIR/logs"
PULP_TLS_DIR="$PULP_DATA_DIR/tls"
PULP_KEYS_DIR="$PULP_DATA_DIR/keys"
PULP_RUN_PID="$PULP_DATA_DIR/run.pid"
PULP_READY_FILE="$PULP_DATA_DIR/run.ready"
PULP_API_URL="https://127.0.0.1:$PULP_API_PORT"
PULP_CONTENT_URL="http://127.0.0.1:$PULP_CONTENT_PORT"
PULP_STATUS_URL="$PULP_API_URL/pulp/api/v3/status/"
# The front (scripts/front.sh, nginx) owns the public ports; Pulp's processes listen on these
# Unix sockets behind it. The media prefix is nginx's internal location for blob bytes, named to
# pulpcore-api as CONTAINER_BLOB_ACCEL_REDIRECT_PREFIX.
PULP_FRONT_DIR="$PULP_DATA_DIR/front"
PULP_API_SOCKET="$PULP_DATA_DIR/run/api.sock"
# The socket of API host N (1 is PULP_API_SOCKET): the front's upstream, round-robin.
pulp_api_socket() {
    if [[ "$1" == 1 ]]; then echo "$PULP_API_SOCKET"; else echo "$PULP_DATA_DIR/run/api-$1.sock"; fi
}
PULP_CONTENT_SOCKET="$PULP_DATA_DIR/run/content.sock"
PULP_FRONT_MEDIA_PREFIX="/_front/media/"

# What every Pulp process (and pytest-django) needs to find its configuration.
export PULP_SETTINGS="$PULP_SETTINGS_FILE"
export DJANGO_SETTINGS_MODULE=pulpcore.app.settings
# CA that signed the API's TLS certificate (for curl, requests, pulp-cli, skopeo).
export PULP_CA_CERT="$PULP_TLS_DIR/ca.crt"

# Embedded PostgreSQL: newest server found under /usr/lib/postgresql/*/bin unless PULP_PG_BIN.
pulp_find_pg_bin() {
    if [[ -n "${PULP_PG_BIN:-}" ]]; then
        echo "$PULP_PG_BIN"
        return 0
    fi
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

# Common helpers.
pulp_log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2 2>/dev/null || true; }
pulp_die() {
    pulp_log "ERROR: $*"
    exit 1
}
# True when something accepts TCP connections on 127.0.0.1:$1.
pulp_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The password of the embedded cluster's `postgres` role: generated once (64 hex digits, from
# /dev/urandom) into $PULP_DB_PASSWORD_FILE (mode 0600 in the 0700 secrets folder) and reused.
# Sets DB_PASSWORD. The file is created with link(2), so concurrent callers agree on one value.
pulp_embedded_db_password() {
    [[ "$PULP_EMBEDDED_DB" == 1 ]] || return 0
    if [[ ! -s "$PULP_DB_PASSWORD_FILE" ]]; then
        local tmp
        install -d -m 700 "$PULP_SECRETS_DIR"
        tmp="$(mktemp "$PULP_SECRETS_DIR/.db_password.XXXXXX")" # mode 0600
        od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp"
        [[ -s "$tmp" ]] || {
            rm -f "$tmp"
            pulp_die "could not generate a database password in $PULP_SECRETS_DIR"
        }
        if [[ -e "$PULP_DB_PASSWORD_FILE" && ! -s "$PULP_DB_PASSWORD_FILE" ]]; then
            rm -f "$PULP_DB_PASSWORD_FILE"
        fi
        ln "$tmp" "$PULP_DB_PASSWORD_FILE" 2>/dev/null || true
        rm -f "$tmp"
    fi
    chmod 600 "$PULP_DB_PASSWORD_FILE"
    DB_PASSWORD="$(<"$PULP_DB_PASSWORD_FILE")"
    [[ -n "$DB_PASSWORD" && "$DB_PASSWORD" != *$'\n'* ]] ||
        pulp_die "$PULP_DB_PASSWORD_FILE must hold the password on one line; delete it to make a new one"
}
