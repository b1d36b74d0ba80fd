"""Mirror images of another registry into a repository: a sync, or a pull-through of one image.

Three steps, and the database is touched only between the network ones:

1. read: the tags to take and their manifests (an index's listed manifests too), checked;
2. fetch: the blobs the registry does not store yet, in parallel; each verified blob is stored
   as it arrives (an Artifact in the default storage, pending in the repository) so that a sync
   that fails later resumes without downloading it again;
3. commit: the manifests and tags, and one new repository version (additive, or ``mirror``:
   the version holds exactly what was read).

A blob stored already, pushed or mirrored into any repository, is never downloaded: the bytes
are one Artifact per digest, and the new version links them.

With the remote's policy ``on_demand``, step 2 downloads only the config blobs; a layer the
registry does not store becomes a Blob without bytes and a RemoteArtifact (its URL at the
remote, size, digest), fetched at its first ``GET`` (``services/on_demand.py``).
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from pulpcore.plugin.download import DownloadResult
from pulpcore.plugin.models import Artifact, ContentArtifact, RemoteArtifact, RepositoryVersion

from pulp_container.app.exceptions import RegistryError
from pulp_container.app.models import Blob, ContainerRemote, ContainerRepository, Manifest
from pulp_container.app.oci import Digest
from pulp_container.app.services.content import add_pending, size_expression
from pulp_container.app.services.manifests import (
    ParsedManifest,
    create_manifest,
    get_or_create_tag,
)
from pulp_container.app.services.remote_source import RemoteSource, SyncError, run_with_remote
from pulp_container.app.services.transfers import Transfer
from pulp_container.app.services.uploads import store_linked_blob
from pulp_container.app.services.versions import commit_version, locked_repository
from pulp_container.constants import INDEX_MANIFEST_TYPES, TransferOutcome

# Called with the size of each blob stored, as it is stored.
BlobProgress = Callable[[int], Awaitable[None]]


@dataclass
class SourceImages:
    """What was read from the remote: tags to their manifest, manifests by digest."""

    tags: dict[str, Digest] = field(default_factory=dict)
    manifests: dict[str, ParsedManifest] = field(default_factory=dict)

    def config_digests(self) -> set[Digest]:
        """The config blobs of every image manifest."""
        configs = (p.config_digest() for p in self.manifests.values())
        return {digest for digest in configs if digest is not None}

    def blob_sizes(self) -> dict[Digest, int]:
        """Config and layer blobs of every image manifest, with their declared size."""
        sizes: dict[Digest, int] = {}
        for parsed in self.manifests.values():
            if parsed.media_type in INDEX_MANIFEST_TYPES:
                continue
            declared = parsed.declared_sizes()
            config = parsed.config_digest()
            for digest in [*parsed.layer_digests(), *([config] if config else [])]:
                given = declared[str(digest)]
                size = min(given)
                if len(given) != 1 or sizes.setdefault(digest, size) != size:
                    raise SyncError(f"manifest {parsed.digest}: {digest} has two sizes")
        return sizes


def selected_tags(remote: ContainerRemote, names: list[str]) -> list[str]:
    """The tags ``include_tags`` takes (all when unset) and ``exclude_tags`` leaves."""
    chosen = [
        name
        for name in names
        if not remote.include_tags
        or any(fnmatch.fnmatchcase(name, pattern) for pattern in remote.include_tags)
    ]
    excluded = remote.exclude_tags or []
    return sorted(n for n in chosen if not any(fnmatch.fnmatchcase(n, p) for p in excluded))


async def read_images(source: RemoteSource, references: list[str]) -> SourceImages:
    """The manifests of ``references`` (tags or digests) and every manifest they list."""
    images = SourceImages()
    tops = await _gather([source.manifest(reference) for reference in references])
    for reference, parsed in zip(references, tops, strict=True):
        images.manifests[str(parsed.digest)] = parsed
        if ":" not in reference:
            images.tags[reference] = parsed.digest
    listed = [d for parsed in tops for d in parsed.listed_digests()]
    while listed:
        wanted = list({str(d): d for d in listed if str(d) not in images.manifests}.values())
        children = await _gather([source.manifest(str(d), expected=d) for d in wanted])
        images.manifests.update({str(child.digest): child for child in children})
        listed = [d for child in children for d in child.listed_digests()]
    return images


def missing_blobs(images: SourceImages) -> dict[Digest, int]:
    """The blobs of ``images`` whose bytes the registry does not store (one query)."""
    sizes = images.blob_sizes()
    stored = set(
        Blob.objects.filter(
            digest__in=[str(d) for d in sizes], contentartifact__artifact__isnull=False
        ).values_list("digest", flat=True)
    )
    return {digest: size for digest, size in sizes.items() if str(digest) not in stored}


async def fetch_blobs(
    source: RemoteSource,
    repository: ContainerRepository,
    missing: dict[Digest, int],
    progress: BlobProgress | None = None,
) -> None:
    """Download the blobs in parallel, storing each as it arrives; then raise the first error.

    Every download runs to its end even when another failed, so what arrived is kept.
    """
    store = sync_to_async(store_fetched_blob, thread_sensitive=False)

    async def fetch(digest: Digest, size: int) -> None:
        result = await source.blob(digest, size)
        await store(repository, digest, result)
        if progress is not None:
            await progress(size)

    await _gather([fetch(digest, size) for digest, size in missing.items()])


def store_download(result: DownloadResult) -> Artifact:
    """A verified download as an Artifact in the default storage, stored once per digest."""
    attributes = result.artifact_attributes
    artifact = Artifact(file=result.path, **attributes)
    try:
        with transaction.atomic():
            artifact.save()
    except IntegrityError:
        # Stored meanwhile (a push, another sync, a concurrent fetch): the same bytes.
        artifact = Artifact.objects.get(sha256=attributes["sha256"])
        if os.path.exists(result.path):
            os.unlink(result.path)
    return artifact


def store_fetched_blob(
    repository: ContainerRepository, digest: Digest, result: DownloadResult
) -> Blob:
    """Store a verified download as the blob's Artifact (default storage) and hold it pending
    in the repository, which protects it from orphan cleanup until the sync commits."""
    artifact = store_download(result)
    fetched = Transfer(str(digest), TransferOutcome.FETCHED, bytes_received=artifact.size)
    return store_linked_blob(digest, artifact, repository, fetched)


def plan_blobs(
    remote: ContainerRemote, images: SourceImages
) -> tuple[dict[Digest, int], dict[Digest, int]]:
    """The blobs of ``images`` the registry lacks: (to download now, to take on demand). With
    the policy ``on_demand`` only the config blobs (small; a pull needs them) come now."""
    missing = missing_blobs(images)
    if remote.policy != ContainerRemote.ON_DEMAND:
        return missing, {}
    configs = images.config_digests()
    now = {digest: size for digest, size in missing.items() if digest in configs}
    later = {digest: size for digest, size in missing.items() if digest not in configs}
    return now, later


def blobs_on_demand(
    repository: ContainerRepository, source: RemoteSource, later: dict[Digest, int]
) -> None:
    """Blobs without bytes for ``later``, each with the RemoteArtifact that says where its bytes
    are (one per remote), held pending in the repository until the sync commits."""
    blobs = []
    for digest, size in later.items():
        try:
            with transaction.atomic():
                blob = Blob.objects.create(digest=str(digest))
                content_artifact = ContentArtifact.objects.create(
                    artifact=None, content=blob, relative_path=str(digest)
                )
        except IntegrityError:
            # Known already without bytes (another remote's, or this one's earlier sync).
            blob = Blob.objects.get(digest=str(digest))
            content_artifact = ContentArtifact.objects.get(content=blob)
        RemoteArtifact.objects.get_or_create(
            content_artifact=content_artifact,
            remote=source.remote,
            defaults={
                "url": source.blob_url(digest),
                "size": size,
                digest.algorithm: digest.encoded,
            },
        )
        blobs.append(blob)
    add_pending(repository, blobs)


def commit_images(
    repository: ContainerRepository, images: SourceImages, mirror: bool
) -> RepositoryVersion | None:
    """Create the manifests and tags read, and one new version that adds them with their
    blobs; with ``mirror`` it also removes everything else the repository held."""
    blobs = _stored_blobs(images)
    manifests: dict[str, Manifest] = {}
    try:
        for parsed in _children_first(images):
            manifests[str(parsed.digest)] = create_manifest(parsed, blobs, manifests)
    except RegistryError as error:
        raise SyncError(f"manifest rejected: {error.detail}") from None
    tags = [get_or_create_tag(name, manifests[str(d)]) for name, d in images.tags.items()]
    add = {unit.pk for unit in [*blobs.values(), *manifests.values(), *tags]}
    with locked_repository(repository.pk) as locked:
        remove: set = set()
        if mirror and locked.latest_version() is not None:
            held = locked.latest_version().content.values_list("pk", flat=True)
            remove = set(held) - add
        return commit_version(locked, add=add, remove=remove)


def _stored_blobs(images: SourceImages) -> dict[str, Blob]:
    digests = [str(d) for d in images.blob_sizes()]
    # A blob has its bytes, or (on demand) a RemoteArtifact that declares their size.
    blobs = Blob.objects.filter(digest__in=digests).annotate(size=size_expression())
    found = {b.digest: b for b in blobs.filter(size__isnull=False)}
    lost = sorted(set(digests) - set(found))
    if lost:
        raise SyncError(f"blobs not stored after their download: {', '.join(lost)}")
    return found


def _children_first(images: SourceImages) -> list[ParsedManifest]:
    """Manifests in an order where each comes after every manifest it lists."""
    ordered: list[ParsedManifest] = []
    placed: set[str] = set()
    remaining = list(images.manifests.values())
    while remaining:
        ready = [p for p in remaining if all(str(d) in placed for d in p.listed_digests())]
        if not ready:
            raise SyncError("manifests list each other in a cycle")
        ordered += ready
        placed |= {str(p.digest) for p in ready}
        remaining = [p for p in remaining if str(p.digest) not in placed]
    return ordered


async def _gather(awaitables: list[Awaitable]) -> list:
    """Run all to their end; raise the first failure (a SyncError says which and why)."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def sync_repository(
    repository: ContainerRepository,
    remote: ContainerRemote,
    mirror: bool,
    progress: BlobProgress | None = None,
    on_plan: Callable[[dict[Digest, int]], None] | None = None,
) -> RepositoryVersion | None:
    """Sync the remote's selected tags into ``repository``: one new version, or None when
    nothing changed. ``on_plan`` hears which blobs will be downloaded, ``progress`` each one."""
    source = RemoteSource(remote)

    async def read_and_fetch() -> tuple[SourceImages, dict[Digest, int]]:
        names = selected_tags(remote, await source.tag_names())
        images = await read_images(source, names)
        now, later = await sync_to_async(plan_blobs)(remote, images)
        if on_plan is not None:
            await sync_to_async(on_plan)(now)
        await fetch_blobs(source, repository, now, progress)
        return images, later

    images, later = run_with_remote(remote, read_and_fetch)
    blobs_on_demand(repository, source, later)
    return commit_images(repository, images, mirror)


def fetch_image(
    repository: ContainerRepository, remote: ContainerRemote, reference: str
) -> RepositoryVersion | None:
    """Pull-through: fetch one image (a tag or a digest) into ``repository``, additively."""
    source = RemoteSource(remote)

    async def read_and_fetch() -> tuple[SourceImages, dict[Digest, int]]:
        images = await read_images(source, [reference])
        now, later = await sync_to_async(plan_blobs)(remote, images)
        await fetch_blobs(source, repository, now)
        return images, later

    images, later = run_with_remote(remote, read_and_fetch)
    blobs_on_demand(repository, source, later)
    return commit_images(repository, images, mirror=False)
