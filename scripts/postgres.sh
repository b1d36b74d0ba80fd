#!/usr/bin/env bash
# Embedded PostgreSQL cluster of one Pulp instance: scripts/postgres.sh start|stop|status|psql
#
# The cluster lives in $PULP_DATA_DIR/pgdata, listens only on 127.0.0.1:$PULP_DB_PORT (and on a
# unix socket inside pgdata, a 0700 folder only the server's OS user can enter), and has a
# superuser `postgres` and a database `pulp`. pg_hba.conf accepts only scram-sha-256 logins;
# `postgres` has the password in $PULP_DATA_DIR/secrets/db_password (generated once, see
# pulp_embedded_db_password in env.sh), which settings.sh writes into settings.py. `start` on a
# stopped cluster (re)sets that password in single-user mode and rewrites pulp.conf and
# pg_hba.conf before the server accepts connections, which also upgrades clusters that earlier
# versions of this script made with trust authentication. `start` on a running cluster applies
# the same password and files and reloads it. As root, the server runs as the `postgres` system
# user (PostgreSQL refuses to run as root).
#
# `psql [psql arguments]` runs psql as `postgres` on the running cluster (database `postgres`,
# ON_ERROR_STOP) with that password, e.g. scripts/postgres.sh psql -tAc 'SELECT 1'.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

usage() {
    echo "usage: $0 start|stop|status|psql [psql arguments]" >&2
    exit 2
}
[[ $# -eq 1 || ($# -gt 1 && "$1" == psql) ]] || usage

if [[ "$PULP_EMBEDDED_DB" != 1 ]]; then
    pulp_log "PULP_DATABASE_HOST=$PULP_DATABASE_HOST is set: no embedded PostgreSQL to $1."
    exit 0
fi

PG_BIN="$(pulp_find_pg_bin)" || pulp_die "no PostgreSQL server found (initdb/pg_ctl under /usr/lib/postgresql/*/bin); run 'make install'"

AS_ROOT=0
[[ "$(id -u)" == 0 ]] && AS_ROOT=1

# Where the cluster lives. As root, the `postgres` user must be able to reach the folder; when it
# cannot (e.g. the checkout is under /root), the cluster goes to a private folder under /var/tmp.
PG_HOME="$PULP_DATA_DIR"
if [[ "$AS_ROOT" == 1 ]]; then
    mkdir -p "$PULP_DATA_DIR"
    if ! runuser -u postgres -- test -x "$PULP_DATA_DIR" 2>/dev/null; then
        PG_HOME="/var/tmp/pulp_container-pg-$(printf '%s' "$PULP_DATA_DIR" | sha256sum | cut -c1-12)"
        mkdir -p "$PG_HOME"
        chmod 711 "$PG_HOME"
        printf '%s\n' "$PULP_DATA_DIR" >"$PG_HOME/owner"
    fi
fi
PGDATA="$PG_HOME/pgdata"
PG_LOG_DIR="$PG_HOME"
[[ "$PG_HOME" == "$PULP_DATA_DIR" ]] && PG_LOG_DIR="$PULP_LOG_DIR"
PG_LOG="$PG_LOG_DIR/postgres.log"

# The unix socket goes into the data folder when its path fits (sun_path is 107 bytes).
SOCKET_DIR="$PGDATA"
if ((${#SOCKET_DIR} + 20 > 100)); then
    SOCKET_DIR=""
fi

as_pg() {
    if [[ "$AS_ROOT" == 1 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_ctl() { as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" "$@"; }

is_running() { [[ -f "$PGDATA/PG_VERSION" ]] && pg_ctl status >/dev/null 2>&1; }

# psql as the superuser over TCP with the password (in the environment of psql only: never on a
# command line). It runs as the calling user, who owns the secrets folder.
psql_admin() {
    PGPASSWORD="$DB_PASSWORD" PGSSLMODE=disable \
        "$PG_BIN/psql" -X -q -w -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$(pg_port)" -U postgres -d postgres "$@"
}

# The password as an SQL string literal (standard_conforming_strings is on).
sql_password() { printf "'%s'" "${DB_PASSWORD//\'/\'\'}"; }

init_cluster() {
    pulp_log "initdb: creating PostgreSQL cluster in $PGDATA"
    mkdir -p "$PGDATA" "$PG_LOG_DIR"
    if [[ "$AS_ROOT" == 1 ]]; then
        chown postgres: "$PGDATA"
    fi
    chmod 700 "$PGDATA"
    # No server runs during initdb, and the first start replaces pg_hba.conf (write_hba) and sets
    # the password (set_password_offline) before it accepts connections: trust is never live.
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C \
        >"$PG_LOG_DIR/initdb.log" 2>&1 || {
        cat "$PG_LOG_DIR/initdb.log" >&2
        pulp_die "initdb failed"
    }
    # Settings that may change between starts go to pulp.conf, rewritten by every start.
    as_pg sh -c "echo \"include_if_exists = 'pulp.conf'\" >> '$PGDATA/postgresql.conf'"
}

write_conf() {
    as_pg tee "$PGDATA/pulp.conf" >/dev/null <<CONF
# Written by scripts/postgres.sh at every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $PULP_DB_PORT
unix_socket_directories = '$SOCKET_DIR'
password_encryption = scram-sha-256
max_connections = 200
shared_buffers = 128MB
# A development and test cluster: trade durability on power loss for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_line_prefix = '%m [%p] '
CONF
}

# Only password authentication (SCRAM), on 127.0.0.1/::1 and the unix socket.
write_hba() {
    as_pg sh -c "umask 077 && cat >'$PGDATA/pg_hba.conf.new' && mv -f '$PGDATA/pg_hba.conf.new' '$PGDATA/pg_hba.conf'" <<'HBA'
# Written by scripts/postgres.sh at every start; edits are lost.
# Every role must log in with its password (SCRAM); `postgres` has the one in the instance's
# secrets/db_password. Nothing else is accepted (no trust, peer or remote hosts).
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  scram-sha-256
host    all       all   127.0.0.1/32   scram-sha-256
host    all       all   ::1/128        scram-sha-256
HBA
}

# Sets the password of `postgres` on a stopped cluster: single-user mode, no connection at all.
# The statement goes through stdin, never on a command line.
set_password_offline() {
    local out
    out="$(printf 'ALTER ROLE postgres WITH PASSWORD %s\n' "$(sql_password)" |
        as_pg "$PG_BIN/postgres" --single -D "$PGDATA" -c password_encryption=scram-sha-256 \
            -c log_min_messages=warning -c log_statement=none -c exit_on_error=on postgres 2>&1)" ||
        {
            printf '%s\n' "${out//"$DB_PASSWORD"/<password>}" >&2
            pulp_die "could not set the database password (postgres --single on $PGDATA)"
        }
    if grep -qE '(ERROR|FATAL|PANIC):' <<<"$out"; then
        printf '%s\n' "${out//"$DB_PASSWORD"/<password>}" >&2
        pulp_die "could not set the database password (postgres --single on $PGDATA)"
    fi
}

# A running cluster (e.g. started by an earlier version with trust authentication): set the
# password over the connection it still accepts, then switch pg_hba.conf to SCRAM and reload.
secure_running() {
    if ! printf "SET log_statement = 'none';\nSET password_encryption = 'scram-sha-256';\nALTER ROLE postgres WITH PASSWORD %s;\n" \
        "$(sql_password)" | psql_admin >/dev/null; then
        pulp_die "cannot log in to the running PostgreSQL ($PGDATA) with the password in $PULP_DB_PASSWORD_FILE; stop it ('$0 stop') and start it again to reset the password"
    fi
    write_conf
    write_hba
    pg_ctl reload >/dev/null
    pulp_log "PostgreSQL already running ($PGDATA, 127.0.0.1:$(pg_port)): password and pg_hba.conf (re)applied, reloaded; log: $PG_LOG"
}

cmd_start() {
    mkdir -p "$PG_LOG_DIR"
    pulp_embedded_db_password
    if is_running; then
        secure_running
        return 0
    fi
    [[ -f "$PGDATA/PG_VERSION" ]] || init_cluster
    write_conf
    if pulp_port_in_use "$PULP_DB_PORT"; then
        pulp_die "port 127.0.0.1:$PULP_DB_PORT is already in use; set PULP_DB_PORT (or PULP_API_PORT) to another value"
    fi
    # Before the server accepts any connection: SCRAM only, and the password of `postgres`.
    write_hba
    set_password_offline
    if [[ "$AS_ROOT" == 1 ]]; then
        touch "$PG_LOG"
        chown postgres: "$PG_LOG"
    fi
    pulp_log "starting PostgreSQL on 127.0.0.1:$PULP_DB_PORT ($PGDATA); log: $PG_LOG"
    if ! pg_ctl -l "$PG_LOG" -w -t 60 start >/dev/null; then
        tail -n 30 "$PG_LOG" >&2 || true
        pulp_die "PostgreSQL did not start; see $PG_LOG"
    fi
    # CREATEDB for pytest-django's test_pulp; the postgres role is a superuser anyway.
    if [[ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'pulp'")" != 1 ]]; then
        psql_admin -c "CREATE DATABASE pulp"
        pulp_log "created database 'pulp'"
    fi
}

pg_port() {
    sed -n 4p "$PGDATA/postmaster.pid" 2>/dev/null || echo "$PULP_DB_PORT"
}

cmd_stop() {
    if ! is_running; then
        pulp_log "PostgreSQL not running ($PGDATA)"
        return 0
    fi
    pulp_log "stopping PostgreSQL ($PGDATA)"
    pg_ctl -m fast -w -t 60 stop >/dev/null
}

cmd_status() {
    if is_running; then
        echo "PostgreSQL running: data $PGDATA, 127.0.0.1:$(pg_port), pid $(head -n1 "$PGDATA/postmaster.pid"), log $PG_LOG"
        return 0
    fi
    echo "PostgreSQL not running (data $PGDATA)"
    return 3
}

cmd_psql() {
    is_running || pulp_die "PostgreSQL not running ($PGDATA); start it with '$0 start'"
    pulp_embedded_db_password
    psql_admin "$@"
}

case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
psql)
    shift
    cmd_psql "$@"
    ;;
*) usage ;;
esac
