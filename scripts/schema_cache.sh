#!/usr/bin/env bash
# A migrated empty database, kept once per migration set, so that a new embedded instance starts
# from it instead of applying every migration (about 40 s on a 2-core machine, 0.3 s to restore).
#
#   scripts/schema_cache.sh restore   # before `migrate`: an empty database gets the cached schema
#   scripts/schema_cache.sh save      # after `migrate`: keeps the schema when none is cached yet
#                                     # and `restore` found the database empty
#
# Only for the embedded PostgreSQL (an external database given by PULP_DATABASE_HOST is never
# touched). The cache key covers every installed migration file, the settings that migrations
# write into rows (STORAGES: the default domain's storage class) and the PostgreSQL version, so a
# changed migration or storage never restores a stale schema. `migrate` still runs after a
# restore and applies whatever is missing. The cache lives in PULP_SCHEMA_CACHE_DIR (default
# .pulp/schema-cache in the checkout, git-ignored); PULP_SCHEMA_CACHE=0 turns it off.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

[[ $# -eq 1 && ("$1" == restore || "$1" == save) ]] || {
    echo "usage: $0 restore|save" >&2
    exit 2
}
[[ "$PULP_EMBEDDED_DB" == 1 && "${PULP_SCHEMA_CACHE:-1}" != 0 ]] || exit 0

PG_BIN="$(pulp_find_pg_bin)" || exit 0
CACHE_DIR="${PULP_SCHEMA_CACHE_DIR:-$PULP_REPO_ROOT/.pulp/schema-cache}"
pulp_embedded_db_password
export PGPASSWORD="$DB_PASSWORD" PGSSLMODE=disable
CONNECT=(-h 127.0.0.1 -p "$DB_PORT" -U postgres -w)

cache_key() {
    {
        find "$PULP_VENV"/lib/python3*/site-packages "$PULP_REPO_ROOT/pulp_container" \
            -path '*/migrations/*.py' -type f -print0 | sort -z | xargs -0 sha256sum | cut -c1-64
        grep -E '^(STORAGES|ALLOWED_CONTENT_CHECKSUMS|DOMAIN_ENABLED) ' "$PULP_SETTINGS_FILE" || true
        "$PG_BIN/pg_dump" --version
    } | sha256sum | cut -c1-16
}

database_is_empty() {
    [[ "$("$PG_BIN/psql" "${CONNECT[@]}" -X -At -d "$DB_NAME" \
        -c "SELECT to_regclass('public.django_migrations') IS NULL")" == t ]]
}

DUMP="$CACHE_DIR/schema-$(cache_key).pgc"
# Set by `restore` when it found an empty database and nothing cached: only then does `save` dump
# (never a database that holds an instance's data).
FRESH_MARK="$PULP_DATA_DIR/schema-cache.fresh"
case "$1" in
restore)
    rm -f "$FRESH_MARK"
    database_is_empty || exit 0
    if [[ ! -f "$DUMP" ]]; then
        touch "$FRESH_MARK"
        exit 0
    fi
    # One transaction: a failed restore leaves the database empty and `migrate` does the work.
    if "$PG_BIN/pg_restore" "${CONNECT[@]}" -d "$DB_NAME" --no-owner --single-transaction \
        --exit-on-error "$DUMP" 2>"$PULP_LOG_DIR/schema-cache.log"; then
        pulp_log "database restored from the migrated schema $DUMP"
    else
        pulp_log "could not restore $DUMP (see $PULP_LOG_DIR/schema-cache.log): migrating instead"
    fi
    ;;
save)
    [[ -f "$FRESH_MARK" ]] || exit 0
    rm -f "$FRESH_MARK"
    [[ -f "$DUMP" ]] && exit 0
    mkdir -p "$CACHE_DIR"
    tmp="$(mktemp "$CACHE_DIR/.schema.XXXXXX")"
    if "$PG_BIN/pg_dump" "${CONNECT[@]}" -d "$DB_NAME" --no-owner -Fc -f "$tmp" 2>>"$PULP_LOG_DIR/schema-cache.log"; then
        mv -f "$tmp" "$DUMP" # atomic: a concurrent instance sees the whole file or none
    else
        rm -f "$tmp"
    fi
    ;;
esac
