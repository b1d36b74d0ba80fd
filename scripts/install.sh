#!/usr/bin/env bash
# Installs what `make run` and `make test` need; idempotent, fast on a re-run.
#
#   1. System packages, only those missing (apt-get update && apt-get install -y, with sudo when
#      not root): a PostgreSQL server, skopeo, podman, openssl, curl, uidmap (rootless podman),
#      nginx (nginx-light: the front, scripts/front.sh), htpasswd (apache2-utils, benchmarks),
#      and python3.11 (+ venv support) when it is not found.
#   2. The virtualenv .venv (python3.11) with `pip install -e . -r requirements-test.txt`,
#      redone only when setup.py or requirements*.txt change (stamp: .venv/.installed).
#
# PULP_SKIP_APT=1 skips step 1; PULP_PYTHON picks the interpreter (default python3.11).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PULP_REPO_ROOT"

PYTHON="${PULP_PYTHON:-python3.11}"
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    SUDO="sudo"
fi

missing=()
if ! pulp_find_pg_bin >/dev/null; then
    missing+=(postgresql)
fi
for tool in skopeo podman openssl curl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# The front of every instance (scripts/front.sh), and htpasswd for the benchmarks' distribution.
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
# Rootless podman maps user ids through newuidmap/newgidmap.
if [[ "$(id -u)" != 0 ]] && ! command -v newuidmap >/dev/null 2>&1; then
    missing+=(uidmap)
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    missing+=(python3.11 python3.11-venv)
elif [[ ! -x "$PULP_VENV/bin/python" ]] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3.11-venv)
fi

if [[ "${PULP_SKIP_APT:-0}" != 1 && ${#missing[@]} -gt 0 ]]; then
    command -v apt-get >/dev/null 2>&1 ||
        pulp_die "missing: ${missing[*]}; install them with your package manager (no apt-get here)"
    pulp_log "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

command -v "$PYTHON" >/dev/null 2>&1 || pulp_die "$PYTHON not found"

# Virtualenv. The stamp holds a hash of the inputs, so a git checkout that only touches
# mtimes does not trigger a reinstall, and any change to them does.
stamp="$PULP_VENV/.installed"
inputs=(setup.py requirements*.txt)
want="$({ "$PYTHON" --version 2>&1; cat "${inputs[@]}"; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$PULP_VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

if [[ ! -x "$PULP_VENV/bin/python" ]] || ! "$PULP_VENV/bin/python" -c 'import sys' 2>/dev/null; then
    pulp_log "creating virtualenv $PULP_VENV with $PYTHON"
    rm -rf "$PULP_VENV"
    "$PYTHON" -m venv "$PULP_VENV"
fi
pulp_log "installing Python packages into $PULP_VENV (pip install -e . -r requirements-test.txt)"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$PULP_VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
"$PULP_VENV/bin/python" -m pip install -q -e . -r requirements-test.txt
echo "$want" >"$stamp"
pulp_log "Python packages installed"
