"""The bytes of a blob synced on demand, fetched from its remote at the first ``GET``.

A sync with the policy ``on_demand`` stores a layer as a Blob whose ContentArtifact has no
Artifact, and a RemoteArtifact per remote that says where the bytes are (URL, size, digest).
The view has already asked the access decision; the bytes are then downloaded with the remote's
downloader (its credentials, TLS, token flow), verified against the digest and size, and stored
as the blob's Artifact, once: a concurrent fetch of the same blob finds the Artifact stored
(its unique digest) and links that one. A failed or mismatching download stores nothing.
"""

from __future__ import annotations

import logging

from django.db.models import F
from pulpcore.plugin.models import RemoteArtifact

from pulp_container.app.exceptions import UpstreamFailed
from pulp_container.app.models import Blob
from pulp_container.app.oci import Digest
from pulp_container.app.services.remote_source import RemoteSource, SyncError, run_with_remote
from pulp_container.app.services.sync import store_download
from pulp_container.app.services.transfers import Transfer, record_transfer
from pulp_container.app.services.uploads import blob_of_artifact
from pulp_container.constants import TransferOutcome

log = logging.getLogger(__name__)


def fetch_on_demand(blob: Blob, digest: Digest, name: str) -> Blob:
    """The blob with its bytes stored (``blob.stored``, ``blob.size`` set), fetched from a
    remote that has them when they are not stored yet; UpstreamFailed (502) when none gave
    them."""
    if getattr(blob, "stored", None):
        return blob
    remote_artifacts = RemoteArtifact.objects.filter(content_artifact__content_id=blob.pk)
    failures = []
    for remote_artifact in remote_artifacts.select_related("remote"):
        remote = remote_artifact.remote.cast()
        source = RemoteSource(remote)

        async def download(source=source, size=remote_artifact.size, url=remote_artifact.url):
            return await source.blob(digest, size, url=url)

        try:
            result = run_with_remote(remote, download)
        except SyncError as error:
            failures.append(str(error))
            continue
        artifact = store_download(result)
        blob_of_artifact(digest, artifact)
        record_transfer(
            name, Transfer(str(digest), TransferOutcome.FETCHED, bytes_received=artifact.size)
        )
        stored = Blob.objects.filter(pk=blob.pk).values_list(
            F("contentartifact__artifact__file"), F("contentartifact__artifact__size")
        )
        blob.stored, blob.size = stored.get()
        return blob
    reason = "; ".join(failures) or "no remote has its bytes"
    log.warning("on-demand fetch of %s for %s failed: %s", digest, name, reason)
    raise UpstreamFailed(f"blob {digest} could not be fetched: {reason}")
