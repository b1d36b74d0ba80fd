#!/usr/bin/env bash
# Installs what `make run` and `make test` need; idempotent, fast on a re-run.
#
#   1. System packages, only those missing (apt-get update && apt-get install -y, with sudo when
#      not root): a PostgreSQL server, skopeo, podman, openssl, curl, uidmap (rootless podman),
#      nginx (nginx-light: the front, scripts/front.sh), htpasswd (apache2-utils, benchmarks),
#      docker-registry (the source registry of the mirror tests and benchmarks),
#      and python3.11 (+ venv support) when it is not found.
#   2. The virtualenv .venv (python3.11) with `pip install -e . -r requirements-test.txt`,
#      redone only when setup.py or requirements*.txt change (stamp: .venv/.installed).
#
# PULP_SKIP_APT=1 skips step 1; PULP_PYTHON picks the interpreter (default python3.11).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PULP_REPO_ROOT"

PYTHON="${PULP_PYTHON:-python3.11}"
NPM_CLIENTS=(oci-registry-client@0.2.0)
started=$SECONDS
phase() { pulp_log "[+$((SECONDS - started))s] $*"; }
finished() { pulp_log "[+$((SECONDS - started))s] done: make install took $((SECONDS - started))s"; }
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    SUDO="sudo"
fi

missing=()
if ! pulp_find_pg_bin >/dev/null; then
    missing+=(postgresql)
fi
for tool in skopeo podman buildah openssl curl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# The npm registry client of the e2e tests (tests/e2e/test_clients.py).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The front of every instance (scripts/front.sh), and htpasswd for the benchmarks' distribution.
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
# Debian's distribution registry: the source registry of the mirror tests and of compare.py.
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
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
    phase "1/3 system packages: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    phase "1/3 system packages: all present"
fi

command -v "$PYTHON" >/dev/null 2>&1 || pulp_die "$PYTHON not found"

# Virtualenv. The stamp holds a hash of the inputs, so a git checkout that only touches
# mtimes does not trigger a reinstall, and any change to them does.
stamp="$PULP_VENV/.installed"
inputs=(setup.py requirements*.txt)
want="$({ "$PYTHON" --version 2>&1; cat "${inputs[@]}"; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$PULP_VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    phase "2/3 Python packages: up to date ($PULP_VENV)"
else
    if [[ ! -x "$PULP_VENV/bin/python" ]] || ! "$PULP_VENV/bin/python" -c 'import sys' 2>/dev/null; then
        phase "2/3 creating virtualenv $PULP_VENV with $PYTHON"
        rm -rf "$PULP_VENV"
        "$PYTHON" -m venv "$PULP_VENV"
    fi
    phase "2/3 Python packages: pip install -e . -r requirements-test.txt (a first install" \
        "downloads about 150 packages; pip shows each)"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    # pip's own lines (Collecting, Downloading with a bar on a terminal, Installing), less
    # the "already satisfied" ones; pipefail makes a pip failure stop the script.
    pip_install() {
        "$PULP_VENV/bin/python" -m pip install --progress-bar on "$@" |
            { grep -v '^Requirement already satisfied' || true; }
    }
    pip_install --upgrade pip setuptools wheel
    pip_install -e . -r requirements-test.txt
    "$PULP_VENV/bin/python" -c 'import pulpcore, pulp_container' ||
        pulp_die "pip install left pulpcore or pulp_container unimportable"
    echo "$want" >"$stamp"
    phase "2/3 Python packages installed"
fi

# npm clients, for the e2e tests. The stamp names what is installed.
npm_prefix="$PULP_VENV/npm"
npm_stamp="$npm_prefix/.installed"
if [[ -f "$npm_stamp" && "$(cat "$npm_stamp")" == "${NPM_CLIENTS[*]}" ]]; then
    phase "3/3 npm clients: up to date ($npm_prefix)"
elif command -v npm >/dev/null 2>&1; then
    phase "3/3 npm clients: npm install ${NPM_CLIENTS[*]} into $npm_prefix"
    mkdir -p "$npm_prefix"
    npm install --no-audit --no-fund --no-save --prefix "$npm_prefix" "${NPM_CLIENTS[@]}"
    echo "${NPM_CLIENTS[*]}" >"$npm_stamp"
else
    phase "3/3 npm clients: skipped, npm is missing (the npm client test will fail)"
fi
finished
