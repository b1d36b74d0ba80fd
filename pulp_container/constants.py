"""Media types and header names of the OCI Distribution and Docker Registry APIs."""

from enum import StrEnum

# Manifests (OCI image spec v1.1 and Docker image manifest v2).
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST_V2})
INDEX_MANIFEST_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_MEDIA_TYPES = IMAGE_MANIFEST_TYPES | INDEX_MANIFEST_TYPES

OCI_EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"

# The only manifest schemaVersion there is (OCI image spec and Docker image manifest v2).
SCHEMA_VERSION = 2

# Largest manifest body accepted (OCI distribution spec: registries SHOULD accept 4 MiB).
MANIFEST_MAX_BYTES = 4 * 1024 * 1024

# Headers.
API_VERSION_HEADER = "Docker-Distribution-Api-Version"
API_VERSION_VALUE = "registry/2.0"
CONTENT_DIGEST_HEADER = "Docker-Content-Digest"
UPLOAD_UUID_HEADER = "Docker-Upload-UUID"
OCI_SUBJECT_HEADER = "OCI-Subject"
OCI_FILTERS_APPLIED_HEADER = "OCI-Filters-Applied"

# Chunk size for reading request bodies and files: large enough to keep syscalls cheap, small
# enough that memory stays flat whatever the blob size.
STREAM_CHUNK_BYTES = 1024 * 1024


class TransferOutcome(StrEnum):
    """How a blob reached (or did not reach) a repository: the outcome of a BlobTransfer."""

    # Bytes received from the client.
    UPLOADED = "uploaded"
    # Linked from another repository by a mount request.
    MOUNTED = "mounted"
    # Mount requested but not possible; the client uploads instead.
    FALLBACK = "fallback"
    # Linked from another repository when the client asked whether the target has it.
    LINKED_ON_HEAD = "linked-on-head"
    # Downloaded from a remote registry by a sync or a pull-through.
    FETCHED = "fetched"
