"""Default settings of the pulp_container plugin (override them in Pulp's settings file)."""

# Docker token authentication (https://distribution.github.io/distribution/spec/auth/token/).
TOKEN_AUTH_DISABLED = False
# The realm clients are sent to for tokens; None means "<scheme>://<host>/token/" of the request.
TOKEN_SERVER = None
# The audience of registry tokens, named in challenges: tokens for another service are refused,
# whatever Host header a client sends. Give every API host of one registry the same value.
TOKEN_SERVICE = "pulp-container"
TOKEN_SIGNATURE_ALGORITHM = "ES256"
PUBLIC_KEY_PATH = None
PRIVATE_KEY_PATH = None
# Seconds a registry token stays valid.
TOKEN_EXPIRATION_TIME = 300
# Seconds a refresh token (offline_token=true) stays valid.
TOKEN_REFRESH_EXPIRATION_TIME = 30 * 24 * 3600
# Seconds of clock skew tolerated when a token is checked.
TOKEN_LEEWAY = 30
# A token request names at most this many scopes, and a token is at most this many bytes
# (proxies commonly refuse request headers over 8 KiB); beyond them the answer is 400.
TOKEN_MAX_SCOPES = 32
TOKEN_MAX_BYTES = 8192

# Link a blob into a repository when a client who may push there asks whether it exists (HEAD)
# and it sits in another repository the client may pull: fresh CI runners then skip the upload.
# Turn off for strict per-repository semantics (a HEAD never changes a repository).
CONTAINER_LINK_BLOBS_ON_HEAD = True

# Seconds a push may stay idle before its upload sessions (rows and files) and the pending
# content no manifest references are removed by the scheduled task "Expire idle container
# pushes", which runs every CONTAINER_PUSH_EXPIRY_INTERVAL seconds (0: never).
CONTAINER_PUSH_EXPIRY = 24 * 3600
CONTAINER_PUSH_EXPIRY_INTERVAL = 3600

# Set when a front (nginx) serves the local filesystem storage at this internal location:
# a blob GET, once access is decided, answers with "X-Accel-Redirect: <prefix><stored file>" and
# the front sends the bytes. None: the view streams them itself. scripts/run.sh sets it for the
# pulpcore-api behind its nginx (scripts/front.sh); never set it without such a front.
CONTAINER_BLOB_ACCEL_REDIRECT_PREFIX = None

# Run the registry's hot queries (compiled_queries.py) as server-side prepared statements,
# planned once per database connection. Behind PgBouncer in transaction mode this needs
# PgBouncer 1.21 or newer with max_prepared_statements set; with an older pool, set False.
CONTAINER_PREPARED_QUERIES = True

# Access-policy conditions that ask the registry's permission decision (REST API viewsets).
DRF_ACCESS_POLICY = {
    "dynaconf_merge_unique": True,
    "reusable_conditions": ["pulp_container.app.access_conditions"],
}

# Object storage (STORAGES "default" is django-storages' S3Storage; docs/storage.md).
# Uploads in progress are S3 multipart uploads of parts this big (S3: at least 5 MiB, at most
# 10,000 parts: 16 MiB parts allow blobs of up to 156 GiB). An upload request holds at most
# three parts in memory (two being sent while the next is read).
CONTAINER_UPLOAD_PART_BYTES = 16 * 1024 * 1024
# Seconds a presigned URL of a blob GET's redirect to object storage stays valid.
CONTAINER_REDIRECT_URL_EXPIRY = 60
