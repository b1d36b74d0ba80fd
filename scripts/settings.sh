#!/usr/bin/env bash
# Writes the configuration of one Pulp instance into $PULP_DATA_DIR (see scripts/env.sh):
#
#   settings.py                          pulpcore (dynaconf) settings, rewritten at every call
#   secrets/secret_key                   Django SECRET_KEY                     (made once)
#   secrets/database_fields.symmetric.key  DB_ENCRYPTION_KEY (Fernet key)      (made once)
#   secrets/db_password                  password of the embedded PostgreSQL's `postgres` role
#                                        (made once; unused with PULP_DATABASE_HOST)
#   keys/private.pem, keys/public.pem    EC P-256 key pair signing registry tokens (made once,
#                                        unless PULP_PRIVATE_KEY_PATH/PULP_PUBLIC_KEY_PATH are set)
#   tls/ca.crt, tls/ca.key               a local certificate authority       (made once)
#   tls/server.crt, tls/server.key       TLS certificate of the API for 127.0.0.1 and localhost
#   tls/cert-dir/ca.crt                  folder for `skopeo --cert-dir` / `podman --cert-dir`
#   media/, tmp/, logs/                  artifacts, working directory, process logs
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

command -v openssl >/dev/null || pulp_die "openssl not found; run 'make install'"

umask 022
mkdir -p "$PULP_DATA_DIR"/{media,tmp,logs,assets} "$PULP_TLS_DIR/cert-dir" "$PULP_KEYS_DIR"
install -d -m 700 "$PULP_DATA_DIR/secrets"

secret_key_file="$PULP_DATA_DIR/secrets/secret_key"
db_key_file="$PULP_DATA_DIR/secrets/database_fields.symmetric.key"

# Secrets: made once, kept across restarts (the DB encryption key must never change).
if [[ ! -s "$secret_key_file" ]]; then
    (umask 077 && openssl rand -base64 48 | tr -d '\n' >"$secret_key_file")
fi
if [[ ! -s "$db_key_file" ]]; then
    # Fernet key: 32 random bytes, urlsafe base64.
    (umask 077 && openssl rand 32 | base64 | tr '+/' '-_' | tr -d '\n' >"$db_key_file")
fi
# Embedded PostgreSQL: its password goes into DATABASES (settings.py is mode 0600). An external
# database (PULP_DATABASE_HOST) keeps PULP_DATABASE_PASSWORD, set by env.sh.
pulp_embedded_db_password

# Token signing keys (ES256 = ECDSA P-256 + SHA-256).
if [[ -n "${PULP_PRIVATE_KEY_PATH:-}" || -n "${PULP_PUBLIC_KEY_PATH:-}" ]]; then
    [[ -n "${PULP_PRIVATE_KEY_PATH:-}" && -n "${PULP_PUBLIC_KEY_PATH:-}" ]] ||
        pulp_die "set both PULP_PRIVATE_KEY_PATH and PULP_PUBLIC_KEY_PATH, or neither"
    private_key="$PULP_PRIVATE_KEY_PATH"
    public_key="$PULP_PUBLIC_KEY_PATH"
else
    private_key="$PULP_KEYS_DIR/private.pem"
    public_key="$PULP_KEYS_DIR/public.pem"
    if [[ ! -s "$private_key" || ! -s "$public_key" ]]; then
        (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
            -out "$private_key" 2>/dev/null)
        openssl pkey -in "$private_key" -pubout -out "$public_key"
    fi
fi

# TLS: a local CA and a server certificate it signs, for 127.0.0.1 and localhost.
tls_ca_key="$PULP_TLS_DIR/ca.key"
tls_ca_crt="$PULP_TLS_DIR/ca.crt"
tls_key="$PULP_TLS_DIR/server.key"
tls_crt="$PULP_TLS_DIR/server.crt"
if [[ ! -s "$tls_ca_crt" || ! -s "$tls_ca_key" ]]; then
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tls_ca_key" -out "$tls_ca_crt" -days 3650 -sha256 \
        -subj "/CN=pulp_container local CA $(hostname -s 2>/dev/null || echo)" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null)
    chmod 644 "$tls_ca_crt"
    rm -f "$tls_crt" "$tls_key"
fi
if [[ ! -s "$tls_crt" || ! -s "$tls_key" ]]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    cat >"$tmp/ext.cnf" <<EXT
subjectAltName = IP:127.0.0.1, DNS:localhost
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EXT
    (umask 077 && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tls_key" -out "$tmp/server.csr" -subj "/CN=localhost" 2>/dev/null)
    openssl x509 -req -in "$tmp/server.csr" -CA "$tls_ca_crt" -CAkey "$tls_ca_key" \
        -CAcreateserial -CAserial "$tmp/ca.srl" -out "$tls_crt" -days 825 -sha256 \
        -extfile "$tmp/ext.cnf" 2>/dev/null
fi
cp -f "$tls_ca_crt" "$PULP_TLS_DIR/cert-dir/ca.crt"

# settings.py: rewritten every time (ports and database may change between starts).
case "${PULP_TOKEN_AUTH_DISABLED,,}" in
1 | true | yes | on) token_auth_disabled=True ;;
0 | false | no | off | "") token_auth_disabled=False ;;
*) pulp_die "PULP_TOKEN_AUTH_DISABLED must be true or false, not '$PULP_TOKEN_AUTH_DISABLED'" ;;
esac

py="$PULP_VENV/bin/python"
[[ -x "$py" ]] || py=python3
# Our log formatter and filter, when this venv's pulp_container has them (not upstream's, which
# the benchmarks run from their own venv); -I: never this checkout's folder on sys.path.
our_logs=0
"$py" -I -c 'import importlib.util as u, sys; sys.exit(u.find_spec("pulp_container.logs") is None)' \
    2>/dev/null && our_logs=1
SECRET_KEY_FILE="$secret_key_file" DB_KEY_FILE="$db_key_file" \
    PRIVATE_KEY="$private_key" PUBLIC_KEY="$public_key" TOKEN_AUTH_DISABLED="$token_auth_disabled" \
    DB_HOST="$DB_HOST" DB_PORT="$DB_PORT" DB_NAME="$DB_NAME" DB_USER="$DB_USER" \
    DB_PASSWORD="$DB_PASSWORD" OUT="$PULP_SETTINGS_FILE.new" OUR_LOGS="$our_logs" \
    "$py" - <<'PY'
import os

e = os.environ
data = e["PULP_DATA_DIR"]
our_logs = e["OUR_LOGS"] == "1"
with open(e["SECRET_KEY_FILE"]) as f:
    secret_key = f.read().strip()

values = {
    "SECRET_KEY": secret_key,
    "DB_ENCRYPTION_KEY": e["DB_KEY_FILE"],
    "MEDIA_ROOT": f"{data}/media",
    "STATIC_ROOT": f"{data}/assets",
    "WORKING_DIRECTORY": f"{data}/tmp",
    "FILE_UPLOAD_TEMP_DIR": f"{data}/tmp",
    "STORAGES": {
        "default": {"BACKEND": "pulpcore.app.models.storage.FileSystem"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    },
    "CONTENT_ORIGIN": f"http://127.0.0.1:{e['PULP_CONTENT_PORT']}",
    "ALLOWED_CONTENT_CHECKSUMS": ["sha256"],
    "CACHE_ENABLED": False,
    "ANALYTICS": False,
    "DATABASES": {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": e["DB_HOST"],
            "PORT": int(e["DB_PORT"]),
            "NAME": e["DB_NAME"],
            "USER": e["DB_USER"],
            "PASSWORD": e["DB_PASSWORD"],
            # Keep connections between requests: opening one cost a tenth of a mount request.
            "CONN_MAX_AGE": 300,
            "CONN_HEALTH_CHECKS": True,
        }
    },
    "TOKEN_SERVER": f"https://127.0.0.1:{e['PULP_API_PORT']}/token/",
    "TOKEN_SIGNATURE_ALGORITHM": "ES256",
    "PUBLIC_KEY_PATH": e["PUBLIC_KEY"],
    "PRIVATE_KEY_PATH": e["PRIVATE_KEY"],
    "TOKEN_AUTH_DISABLED": e["TOKEN_AUTH_DISABLED"] == "True",
    "LOGGING": {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            # This format, or one JSON object per line with PULP_LOG_FORMAT=json in the
            # environment of the process (pulp_container/logs.py).
            "simple": {
                "()": "pulp_container.logs.LineFormatter",
                "fmt": "pulp [%(correlation_id)s]: %(name)s:%(levelname)s: %(message)s",
            }
            if our_logs
            else {"format": "pulp [%(correlation_id)s]: %(name)s:%(levelname)s: %(message)s"},
        },
        "filters": {
            "correlation_id": {"()": "django_guid.log_filters.CorrelationId"},
            # No WARNING for a 401 or 404 under /v2/: the access log has the line.
            **(
                {"ordinary_registry_answers": {"()": "pulp_container.logs.OrdinaryRegistryAnswers"}}
                if our_logs
                else {}
            ),
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "level": "INFO",
                "formatter": "simple",
                "filters": ["correlation_id"] + (["ordinary_registry_answers"] if our_logs else []),
            }
        },
        "loggers": {
            "": {"handlers": ["console"], "level": "INFO", "filters": ["correlation_id"]},
            "django_guid": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        },
    },
}

# PULP_STORAGE=s3: S3-compatible object storage through django-storages (docs/storage.md).
if e["PULP_STORAGE"] == "s3":
    values["STORAGES"]["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "endpoint_url": e["PULP_S3_ENDPOINT"],
            "bucket_name": e["PULP_S3_BUCKET"],
            "access_key": e["PULP_S3_ACCESS_KEY"],
            "secret_key": e["PULP_S3_SECRET_KEY"],
            "region_name": e["PULP_S3_REGION"],
            "signature_version": "s3v4",
            "addressing_style": "path",
            "default_acl": None,
            "file_overwrite": False,
        },
    }
    values["REDIRECT_TO_OBJECT_STORAGE"] = True

lines = [
    "# Generated by scripts/settings.sh at every start of this instance: edits are lost.",
    "# Secrets and keys it points to are made once and kept.",
    "",
]
lines += [f"{name} = {value!r}" for name, value in values.items()]
with open(e["OUT"], "w") as f:
    f.write("\n".join(lines) + "\n")
PY
chmod 600 "$PULP_SETTINGS_FILE.new"
mv -f "$PULP_SETTINGS_FILE.new" "$PULP_SETTINGS_FILE"
