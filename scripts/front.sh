#!/usr/bin/env bash
# The front of one Pulp instance: nginx (Debian's), a child of scripts/run.sh, never the system
# service. See scripts/nginx.conf.template for what it does.
#
#   front.sh config   write $PULP_DATA_DIR/front/nginx.conf and check it (nginx -t)
#   front.sh run      config, then nginx in the foreground (exec: run.sh's child is nginx)
#
# The public ports stay PULP_API_PORT (HTTPS, the certificate of scripts/settings.sh) and
# PULP_CONTENT_PORT (HTTP); pulpcore-api and pulpcore-content listen on the Unix sockets
# PULP_API_SOCKET and PULP_CONTENT_SOCKET (scripts/env.sh). Logs: logs/front.log (errors),
# logs/front-access.log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

NGINX="${PULP_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
TEMPLATE="$PULP_REPO_ROOT/scripts/nginx.conf.template"
CONFIG="$PULP_FRONT_DIR/nginx.conf"

front_config() {
    [[ -x "$NGINX" ]] || pulp_die "nginx not found; run 'make install' (apt-get install nginx-light)"
    mkdir -p "$PULP_FRONT_DIR"/tmp "$PULP_LOG_DIR" "$(dirname "$PULP_API_SOCKET")"
    # As root, nginx would switch its workers to nobody, who cannot reach the sockets or the
    # media folder: they run as the user who runs Pulp, like every other process of it.
    # One upstream server per API host (PULP_API_HOSTS): nginx takes them in turn (round-robin).
    local api_servers="" host
    for ((host = 1; host <= PULP_API_HOSTS; host++)); do
        api_servers+="server unix:$(pulp_api_socket "$host") fail_timeout=0; "
    done
    local user_directive=""
    if [[ "$(id -u)" == 0 ]]; then
        user_directive="user root root;"
    fi
    sed -e "s|@USER_DIRECTIVE@|$user_directive|" \
        -e "s|@FRONT_DIR@|$PULP_FRONT_DIR|g" \
        -e "s|@LOG_DIR@|$PULP_LOG_DIR|g" \
        -e "s|@TLS_DIR@|$PULP_TLS_DIR|g" \
        -e "s|@API_PORT@|$PULP_API_PORT|g" \
        -e "s|@CONTENT_PORT@|$PULP_CONTENT_PORT|g" \
        -e "s|@API_SERVERS@|$api_servers|g" \
        -e "s|@CONTENT_SOCKET@|$PULP_CONTENT_SOCKET|g" \
        -e "s|@MEDIA_PREFIX@|$PULP_FRONT_MEDIA_PREFIX|g" \
        -e "s|@MEDIA_ROOT@|$PULP_DATA_DIR/media|g" \
        -e "s|@SCRIPTS_DIR@|$PULP_REPO_ROOT/scripts|g" \
        "$TEMPLATE" >"$CONFIG.new"
    mv -f "$CONFIG.new" "$CONFIG"
    # -e: the error log before the configuration is read (Debian's default is /var/log/nginx).
    "$NGINX" -t -q -e "$PULP_LOG_DIR/front.log" -c "$CONFIG" ||
        pulp_die "nginx refused $CONFIG (see $PULP_LOG_DIR/front.log)"
}

case "${1:-}" in
config)
    front_config
    ;;
run)
    front_config
    exec "$NGINX" -e "$PULP_LOG_DIR/front.log" -c "$CONFIG"
    ;;
*)
    echo "usage: $0 config|run" >&2
    exit 2
    ;;
esac
