"""Store, find, tag and delete manifests (OCI distribution spec, "Pushing manifests")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from pulpcore.plugin.models import Content

from pulp_container.app.compiled_queries import CompiledQuery
from pulp_container.app.exceptions import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestTooLarge,
    ManifestUnknown,
)
from pulp_container.app.manifest_schema import check_document, load_document
from pulp_container.app.models import (
    Blob,
    ContainerRepository,
    Manifest,
    Tag,
)
from pulp_container.app.oci import Digest, Reference, RepositoryName
from pulp_container.app.row_writes import Part, new_rows, recoverable, write_together
from pulp_container.app.services.content import (
    held_by,
)
from pulp_container.app.services.repositories import (
    PullTarget,
    pull_target,
    repository_for_push,
)
from pulp_container.app.services.versions import commit_version, locked_repository
from pulp_container.constants import (
    MANIFEST_MAX_BYTES,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA_VERSION,
)


@dataclass(frozen=True)
class ParsedManifest:
    """A manifest body checked against its media type, before anything is stored."""

    digest: Digest
    media_type: str
    body: bytes
    document: dict[str, Any]

    def config_digest(self) -> Digest | None:
        config = self.document.get("config")
        return _descriptor_digest(config) if config is not None else None

    def layer_digests(self) -> list[Digest]:
        # Foreign layers (with "urls") live elsewhere and are not pushed to the registry.
        return [
            _descriptor_digest(layer)
            for layer in self.document.get("layers", [])
            if not (isinstance(layer, dict) and layer.get("urls"))
        ]

    def listed_digests(self) -> list[Digest]:
        return [_descriptor_digest(entry) for entry in self.document.get("manifests", [])]

    def declared_sizes(self) -> dict[str, set[int]]:
        """The sizes the descriptors give each referenced digest (checked against the store)."""
        descriptors = [self.document.get("config"), *self.document.get("layers", [])]
        descriptors += self.document.get("manifests", [])
        sizes: dict[str, set[int]] = {}
        for descriptor in descriptors:
            if isinstance(descriptor, dict) and not descriptor.get("urls"):
                sizes.setdefault(descriptor["digest"], set()).add(descriptor["size"])
        return sizes


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Check a pushed manifest: size, JSON, media type, schema; raise the OCI error otherwise."""
    if len(body) > MANIFEST_MAX_BYTES:
        raise ManifestTooLarge(f"manifest is larger than {MANIFEST_MAX_BYTES} bytes")
    document = load_document(body)
    media_type = _media_type(document, content_type)
    check_document(document, media_type)
    return ParsedManifest(Digest.of(body), media_type, body, document)


def _media_type(document: dict[str, Any], content_type: str | None) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType is not a string")
    header = (content_type or "").split(";", 1)[0].strip() or None
    if declared is not None and header is not None and declared != header:
        raise ManifestInvalid(f"Content-Type {header} does not match mediaType {declared}")
    media_type = declared or header
    if media_type is None:
        # OCI image spec: mediaType SHOULD be set; without it, the shape tells the type.
        media_type = OCI_INDEX if "manifests" in document else OCI_MANIFEST
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise ManifestInvalid(f"unsupported manifest media type {media_type}")
    return media_type


def _descriptor_digest(descriptor: Any) -> Digest:
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
        raise ManifestInvalid("a descriptor lacks its digest")
    try:
        return Digest.parse(descriptor["digest"])
    except DigestInvalid as error:
        raise ManifestInvalid(f"descriptor digest: {error.detail}") from None


def store_manifest(
    name: RepositoryName,
    pusher: AbstractBaseUser | AnonymousUser,
    reference: Reference,
    body: bytes,
    content_type: str | None,
) -> Manifest:
    """``PUT /v2/<name>/manifests/<reference>``: parse the manifest (nothing is created for an
    invalid one), then store it and commit it, its blobs and its tag as one repository version
    of the push repository of ``name`` (created on a first push).

    Every blob and manifest it references must be in the repository already (committed or
    pending in this push), else MANIFEST_BLOB_UNKNOWN.
    """
    parsed = parse_manifest(body, content_type)
    repository = repository_for_push(name, pusher)
    if reference.digest is not None and reference.digest != parsed.digest:
        raise DigestInvalid(f"manifest digest is {parsed.digest}, not {reference.digest}")
    config, layers, listed = _referenced_content(repository, parsed)
    # One transaction: the manifest, its tag and the version (no BEGIN/COMMIT for each).
    with locked_repository(repository.pk) as locked:
        manifest, tag = _get_or_create_manifest(parsed, config, layers, listed, reference.tag)
        contents: list[Content] = [manifest, *layers, *listed]
        if config is not None:
            contents.append(config)
        for child in listed:
            contents.extend(_manifest_blobs(child))
        if tag is not None:
            contents.append(tag)
        commit_version(locked, add=[content.pk for content in contents])
    return manifest


def create_manifest(
    parsed: ParsedManifest, blobs: dict[str, Blob], children: dict[str, Manifest]
) -> Manifest:
    """The Manifest of ``parsed`` (created unless it exists), given every blob and manifest it
    references by digest (a sync has them all at hand); declared sizes are checked."""
    _check_sizes(parsed, blobs, children)
    config_digest = parsed.config_digest()
    config = blobs[str(config_digest)] if config_digest else None
    layers = [blobs[str(d)] for d in parsed.layer_digests()]
    listed = [children[str(d)] for d in parsed.listed_digests()]
    return _get_or_create_manifest(parsed, config, layers, listed)[0]


def _referenced_content(
    repository: ContainerRepository, parsed: ParsedManifest
) -> tuple[Blob | None, list[Blob], list[Manifest]]:
    config_digest = parsed.config_digest()
    blob_digests = [*parsed.layer_digests(), *([config_digest] if config_digest else [])]
    blobs = held_by(repository, Blob, blob_digests)
    children = held_by(repository, Manifest, parsed.listed_digests())
    missing = [str(d) for d in blob_digests if str(d) not in blobs]
    missing += [str(d) for d in parsed.listed_digests() if str(d) not in children]
    if missing:
        raise ManifestBlobUnknown({"unknown": missing})
    _check_sizes(parsed, blobs, children)
    config = blobs[str(config_digest)] if config_digest else None
    layers = [blobs[str(d)] for d in parsed.layer_digests()]
    listed = [children[str(d)] for d in parsed.listed_digests()]
    return config, layers, listed


def _check_sizes(parsed: ParsedManifest, blobs: dict, children: dict) -> None:
    """OCI image spec, "Descriptors": size is the exact byte count of the referenced content."""
    stored = {digest: blob.size for digest, blob in blobs.items()}
    stored.update({digest: len(child.data.encode("utf-8")) for digest, child in children.items()})
    for digest, sizes in parsed.declared_sizes().items():
        if digest in stored and sizes != {stored[digest]}:
            declared = ", ".join(str(size) for size in sorted(sizes))
            raise ManifestInvalid(f"{digest} has {stored[digest]} bytes, not {declared}")


def _manifest_blobs(manifest: Manifest) -> list[Blob]:
    blobs = list(manifest.blobs.all())
    if manifest.config_blob_id is not None:
        blobs.append(manifest.config_blob)
    return blobs


# Compiled once per process (compiled_queries): every manifest PUT asks it.
_MANIFEST = CompiledQuery(lambda digest: Manifest.objects.filter(digest=digest)[:1], str)


def _get_or_create_manifest(
    parsed: ParsedManifest,
    config: Blob | None,
    layers: list[Blob],
    listed: list[Manifest],
    tag_name: str | None = None,
) -> tuple[Manifest, Tag | None]:
    """The manifest, and its tag ``tag_name`` when one is named. A new manifest, its links to
    what it references and its tag are one statement (row_writes): nobody can have tagged a
    manifest that did not exist, so its tag is not looked for. A concurrent push of the same
    manifest that stored it first wins; its manifest is the same bytes."""
    existing = _MANIFEST.first(str(parsed.digest))
    if existing is None:
        manifest, rows = _new_manifest(parsed, config, layers, listed)
        tag = None
        if tag_name is not None:
            tag = Tag(name=tag_name, tagged_manifest=manifest)
            rows += new_rows(tag)
        try:
            with recoverable():
                write_together(rows)
            return manifest, tag
        except IntegrityError:
            existing = Manifest.objects.get(digest=str(parsed.digest))
    return existing, get_or_create_tag(tag_name, existing) if tag_name is not None else None


def _new_manifest(
    parsed: ParsedManifest, config: Blob | None, layers: list[Blob], listed: list[Manifest]
) -> tuple[Manifest, list[Part]]:
    """The rows of a new manifest and of its links to its layers and listed manifests
    (``Manifest`` has no ``save()`` override or hook of its own)."""
    subject = parsed.document.get("subject")
    manifest = Manifest(
        digest=str(parsed.digest),
        media_type=parsed.media_type,
        schema_version=SCHEMA_VERSION,
        data=parsed.body.decode("utf-8"),
        config_blob=config,
        artifact_type=parsed.document.get("artifactType"),
        subject=subject.get("digest") if isinstance(subject, dict) else None,
        annotations=parsed.document.get("annotations") or {},
    )
    rows = new_rows(manifest)
    layer_link, listed_link = Manifest.blobs.through, Manifest.listed_manifests.through
    for layer in {layer.pk: layer for layer in layers}.values():  # a layer may repeat
        rows += new_rows(layer_link(manifest=manifest, blob=layer))
    for child in {child.pk: child for child in listed}.values():
        rows += new_rows(listed_link(from_manifest=manifest, to_manifest=child))
    return manifest, rows


def get_or_create_tag(name: str, manifest: Manifest) -> Tag:
    """The tag ``name`` of ``manifest``, created unless it exists."""
    tag = Tag.objects.filter(name=name, tagged_manifest=manifest).first()
    if tag is not None:
        return tag
    try:
        with transaction.atomic():
            tag = Tag.objects.create(name=name, tagged_manifest=manifest)
    except IntegrityError:
        tag = Tag.objects.get(name=name, tagged_manifest=manifest)
    return tag


def find_manifest(target: PullTarget, reference: Reference) -> Manifest:
    """The manifest a pull of ``reference`` gets, or MANIFEST_UNKNOWN (404)."""
    version = target.version
    if version is None:
        raise ManifestUnknown(f"manifest {reference} is unknown")
    if reference.tag is not None:
        tag = (
            Tag.objects.select_related("tagged_manifest")
            .filter(pk__in=version.content_ids_subquery(), name=reference.tag)
            .first()
        )
        if tag is None:
            raise ManifestUnknown(f"tag {reference.tag} is unknown")
        return tag.tagged_manifest
    manifest = Manifest.objects.filter(
        digest=str(reference.digest), pk__in=version.content_ids_subquery()
    ).first()
    if manifest is None:
        raise ManifestUnknown(f"manifest {reference} is unknown")
    return manifest


def referrers(
    name: RepositoryName,
    subject: Digest,
    artifact_type: str | None,
    after: str | None = None,
    limit: int = 1000,
) -> tuple[list[dict], bool]:
    """Descriptors of the manifests that name ``subject`` (OCI spec, "Listing Referrers"), in
    digest order after ``after``, at most ``limit``; and whether more follow.

    The subject need not exist: a signature may be pushed before its image. An unknown name is
    NAME_UNKNOWN (404).
    """
    target = pull_target(name)
    if target.version is None:
        return [], False
    found = Manifest.objects.filter(
        pk__in=target.version.content_ids_subquery(), subject=str(subject)
    ).order_by("digest")
    if after:
        found = found.filter(digest__gt=after)
    descriptors = []
    for manifest in found.iterator():
        descriptor = _descriptor(manifest)
        if artifact_type is None or descriptor.get("artifactType") == artifact_type:
            if len(descriptors) == limit:
                return descriptors, True
            descriptors.append(descriptor)
    return descriptors, False


def _descriptor(manifest: Manifest) -> dict:
    body = manifest.data.encode("utf-8")
    document = json.loads(body)
    descriptor: dict[str, Any] = {
        "mediaType": manifest.media_type,
        "digest": manifest.digest,
        "size": len(body),
    }
    # OCI spec: artifactType is the manifest's, else its config's media type.
    artifact_type = manifest.artifact_type or (document.get("config") or {}).get("mediaType")
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    if manifest.annotations:
        descriptor["annotations"] = manifest.annotations
    return descriptor
