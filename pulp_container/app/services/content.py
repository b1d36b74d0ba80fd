"""Which blobs and manifests a repository holds: committed in its latest version, or pending."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote
from uuid import UUID

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from pulpcore.plugin.models import (
    Content,
    RemoteArtifact,
    RepositoryContent,
    RepositoryVersion,
)

from pulp_container.app.authorization import (
    Grants,
    repository_rights_q,
    with_access_fields,
    with_served,
)
from pulp_container.app.compiled_queries import AnyOf, CompiledQueries, CompiledQuery
from pulp_container.app.exceptions import BlobUnknown
from pulp_container.app.models import (
    Blob,
    ContainerDistribution,
    ContainerRepository,
    Manifest,
    PendingContent,
)
from pulp_container.app.oci import Digest, RepositoryName
from pulp_container.app.scopes import PULL, PUSH
from pulp_container.app.services.repositories import PullTarget, existing_repository
from pulp_container.app.services.versions import commit_version, locked_repository
from pulp_container.app.upload_stores import uses_object_storage


def held(repository_pk, pending: bool = True) -> Exists:
    """Whether the repository holds the outer row's content: committed in its latest version,
    or (``pending``) uploaded or mounted by a push in progress. The one "committed or pending"
    test; filter or annotate with it."""
    content = OuterRef("pk")
    committed = Exists(
        RepositoryContent.objects.filter(
            repository_id=repository_pk, content_id=content, version_removed__isnull=True
        )
    )
    if not pending:
        return committed
    return committed | Exists(
        PendingContent.objects.filter(repository_id=repository_pk, content_id=content)
    )


def _readable_holders(grants: Grants, digest: Digest, exclude_pk=None) -> QuerySet:
    """Repositories the user may read that hold the blob ``digest``.

    Committed content is read by those who may pull the repository; pending content only by
    those who may push there. The query starts from the few repositories that hold the digest
    (index lookups by digest and content), never from every repository: its cost follows the
    holders, not the size of the system (issue 14: a scan of 10,000 repositories was 5-9 ms). An
    unreadable holder costs an index probe or two, microseconds, so the time of an answer still
    does not tell it apart from a digest that nobody holds (benchmarks/existence_timing.py).
    """
    blobs = Blob.objects.filter(digest=str(digest)).values("pk")
    committed = RepositoryContent.objects.filter(
        content_id__in=blobs, version_removed__isnull=True
    ).values("repository_id")
    pending = PendingContent.objects.filter(content_id__in=blobs).values("repository_id")
    holding = committed.union(pending, all=True)
    readable = (Q(pk__in=committed) & repository_rights_q(grants, PULL)) | (
        Q(pk__in=pending) & repository_rights_q(grants, PUSH)
    )
    repositories = ContainerRepository.objects.filter(pk__in=holding).exclude(pk=exclude_pk)
    return with_access_fields(repositories).filter(readable)


def _served_by(name: str) -> Subquery:
    """The pk of the repository the distribution at ``name`` serves (or a version of)."""
    distributions = with_served(ContainerDistribution.objects.filter(base_path=name))
    return Subquery(distributions.values("served_pk")[:1])


def size_expression() -> Coalesce:
    """The size of the outer blob's bytes: its Artifact's, or, for a blob synced on demand whose
    bytes are not fetched yet, the size its RemoteArtifact declares (read only then)."""
    declared = RemoteArtifact.objects.filter(content_artifact__content_id=OuterRef("pk"))
    return Coalesce(F("contentartifact__artifact__size"), Subquery(declared.values("size")[:1]))


def _stored_blobs(digest: Digest | str) -> QuerySet:
    return Blob.objects.filter(digest=str(digest)).annotate(
        size=size_expression(), stored=F("contentartifact__artifact__file")
    )


_BLOB_ANYWHERE = CompiledQuery(
    lambda digest: _stored_blobs(digest).annotate(in_target=Value(False))[:1], str
)
_BLOB_IN_REPOSITORY = {
    pending: CompiledQuery(
        lambda digest, repository_pk, pending=pending: _stored_blobs(digest).annotate(
            in_target=held(repository_pk, pending)
        )[:1],
        str,
        UUID,
    )
    for pending in (False, True)
}


def locate_blob(
    digest: Digest,
    target: PullTarget | None = None,
    pending: bool = False,
    readable_by: Grants | None = None,
    prefer: str | None = None,
) -> Blob | None:
    """The blob ``digest``, in one query, annotated with what a registry request decides on:

    - ``size``: the size of its bytes; ``stored``: the name of its file in the storage (None
      for a blob synced on demand whose bytes are not fetched yet);
    - ``in_target``: whether ``target`` holds it (pending content counts if ``pending``);
    - ``holder``: with ``readable_by``, the name of another repository those grants may read
      that holds it, the one at the registry name ``prefer`` first; else None.
    """
    if target is None or target.repository_pk is not None:
        # The hot cases: compiled once per shape (a HEAD, a GET, a commit's check), and the
        # search a pusher's HEAD miss or a mount runs, once per shape and set of grants.
        if readable_by is not None:
            shape = (readable_by.key(), target is not None, pending, prefer is not None)
            values = [str(digest)]
            values += [target.repository_pk] if target is not None else []
            values += [prefer] if prefer is not None else []
            return _BLOB_READABLE[shape].first(*values)
        if target is None:
            return _BLOB_ANYWHERE.first(str(digest))
        return _BLOB_IN_REPOSITORY[pending].first(str(digest), target.repository_pk)
    return _located_blob(digest, target, pending, readable_by, prefer).first()


def _located_blob(
    digest: Digest | str,
    target: PullTarget | None,
    pending: bool,
    readable_by: Grants | None,
    prefer: str | None,
) -> QuerySet:
    """The queryset of ``locate_blob`` (its first row is the answer; unordered: a digest is one
    blob)."""
    blobs = _stored_blobs(digest)
    exclude_pk = None
    if target is not None and target.repository_pk is not None:
        exclude_pk = target.repository_pk
        blobs = blobs.annotate(in_target=held(target.repository_pk, pending))
    elif target is not None and target.version is not None:
        in_version = Q(pk__in=target.version.content_ids_subquery())
        blobs = blobs.annotate(in_target=ExpressionWrapper(in_version, BooleanField()))
    else:
        blobs = blobs.annotate(in_target=Value(False))
    if readable_by is None:
        return blobs
    holders = _readable_holders(readable_by, digest, exclude_pk)
    anywhere = Subquery(holders.values("name")[:1])
    if prefer is not None:
        preferred = Subquery(holders.filter(pk=_served_by(prefer)).values("name")[:1])
        anywhere = Coalesce(preferred, anywhere)
    return blobs.annotate(holder=anywhere)


def _blob_readable_query(shape: tuple) -> tuple:
    grants_key, has_target, pending, has_prefer = shape
    grants = Grants.of_key(grants_key)

    def build(digest, *rest):
        target_pk = rest[0] if has_target else None
        prefer = rest[-1] if has_prefer else None
        target = PullTarget(None, target_pk) if has_target else None
        return _located_blob(digest, target, pending, grants, prefer)[:1]

    return build, (str, *([UUID] if has_target else []), *([str] if has_prefer else []))


# Per set of grants (one per user, in practice): bounded, emptied when full.
_BLOB_READABLE = CompiledQueries(_blob_readable_query, max_shapes=1000)


def _blob_in_source_query(pending: bool) -> CompiledQuery:
    def build(digest, target_pk, source_name):
        return _stored_blobs(digest).annotate(
            in_target=held(target_pk, pending=True),
            in_source=held(_served_by(source_name), pending),
        )[:1]

    return CompiledQuery(build, str, UUID, str)


_BLOB_IN_SOURCE = {pending: _blob_in_source_query(pending) for pending in (False, True)}


def locate_blob_in_source(
    digest: Digest, target: ContainerRepository, source: str, source_pending: bool
) -> Blob | None:
    """The blob ``digest`` (as ``locate_blob``), annotated with ``in_target`` (committed or
    pending in ``target``) and ``in_source``: whether the repository the registry name ``source``
    serves holds it (pending content counts if ``source_pending``). One compiled query; the
    caller has decided that the source may be read."""
    return _BLOB_IN_SOURCE[source_pending].first(str(digest), target.pk, source)


def _blob_at_name_query(pending: bool) -> CompiledQuery:
    def build(name, digest):
        blobs = Blob.objects.filter(digest=digest)
        blob_pk = Subquery(blobs.values("pk")[:1])
        served = OuterRef("repository_id")
        in_target = Exists(
            RepositoryContent.objects.filter(
                repository_id=served, content_id=blob_pk, version_removed__isnull=True
            )
        )
        if pending:
            in_target = in_target | Exists(
                PendingContent.objects.filter(repository_id=served, content_id=blob_pk)
            )
        distributions = ContainerDistribution.objects.filter(base_path=name)
        return distributions.annotate(blob_pk=blob_pk, blob_in_target=in_target)[:1]

    return CompiledQuery(build, str, str)


_BLOB_AT_NAME = {pending: _blob_at_name_query(pending) for pending in (False, True)}
_STORED_FILE = CompiledQuery(lambda pk: _stored_blobs_by_pk(pk)[:1], UUID)


def _stored_blobs_by_pk(pk) -> QuerySet:
    return Blob.objects.filter(pk=pk).annotate(
        size=size_expression(), stored=F("contentartifact__artifact__file")
    )


# Digest -> (size, stored file name) of blobs this process has served. It never changes: the
# bytes of a digest are the same bytes, and pulpcore names an artifact's file after its sha256,
# so every host may keep its own copy, and no entry is stale in a way that matters. It is read
# only after the query has decided that the name holds the blob (the access decision and the
# membership are never cached); once orphan cleanup removed the blob, that query says no. The
# query is the same whether or not an entry exists, so the time of a miss tells nothing of what
# this process served before; only a hit not yet remembered reads the file (a second query).
# Bounded: emptied when full. Saves the artifact joins of a HEAD's query (about 1 ms of 2.8).
_STORED_FILES: dict[str, tuple[int, str]] = {}
_STORED_FILES_MAX = 10_000


def locate_blob_at_name(
    name: RepositoryName, digest: Digest, pending: bool
) -> tuple[ContainerDistribution | None, Blob | None]:
    """The distribution at ``name`` and, when the repository it serves holds the blob
    ``digest`` (committed, or pending if ``pending``), the blob as ``locate_blob`` gives it;
    one compiled query (a HEAD's). A distribution of a fixed version is not looked into."""
    distribution = _BLOB_AT_NAME[pending].first(str(name), str(digest))
    if distribution is None or not distribution.blob_in_target:
        return distribution, None
    stored_file = _STORED_FILES.get(str(digest))
    if stored_file is None:
        stored = _STORED_FILE.first(distribution.blob_pk)
        stored_file = (stored.size, stored.stored) if stored is not None else (None, None)
        if None not in stored_file:
            if len(_STORED_FILES) >= _STORED_FILES_MAX:
                _STORED_FILES.clear()
            _STORED_FILES[str(digest)] = stored_file
    blob = Blob(
        pulp_id=distribution.blob_pk, content_ptr_id=distribution.blob_pk, digest=str(digest)
    )
    blob.size, blob.stored = stored_file
    blob.in_target = True
    return distribution, blob


def find_blob(digest: Digest) -> Blob | None:
    """The blob with this digest, with the size of its bytes (``blob.size``) read alongside."""
    return _BLOB_ANYWHERE.first(str(digest))


def held_by(repository: ContainerRepository, model, digests) -> dict[str, Content]:
    """Of the ``model`` units (Blob or Manifest) with these digests, those the repository holds,
    committed or pending, by digest: one query whatever the number of digests (none without)."""
    if not digests:
        return {}
    units = _HELD_BY[model].rows([str(d) for d in digests], repository.pk)
    return {unit.digest: unit for unit in units}


def _held_by_query(model) -> CompiledQuery:
    def build(digests, repository_pk):
        units = model.objects.filter(AnyOf(F("digest"), digests)).filter(held(repository_pk))
        return units.annotate(size=size_expression()) if model is Blob else units

    return CompiledQuery(build, list, UUID)


_HELD_BY = {model: _held_by_query(model) for model in (Blob, Manifest)}


def in_version(version: RepositoryVersion, model, digest: Digest):
    """The ``model`` unit with ``digest`` if the fixed ``version`` holds it (one query)."""
    return model.objects.filter(digest=str(digest), pk__in=version.content_ids_subquery()).first()


def add_pending(repository: ContainerRepository, contents: Iterable[Model]) -> None:
    """Link content to the repository's push in progress, protecting it from orphan cleanup."""
    PendingContent.objects.bulk_create(
        [PendingContent(repository_id=repository.pk, content_id=c.pk) for c in contents],
        update_conflicts=True,
        unique_fields=["repository", "content"],
        update_fields=["added"],
    )


def open_blob(blob: Blob):
    """The blob's stored file, opened for reading, and its size."""
    artifact = blob._artifacts.get()
    return artifact.file.open("rb"), artifact.size


def object_storage_url(blob: Blob) -> str | None:
    """A presigned URL of the blob's bytes in object storage, valid for
    ``CONTAINER_REDIRECT_URL_EXPIRY`` seconds, when the storage is S3 and
    ``REDIRECT_TO_OBJECT_STORAGE`` is on; else None. Asked only after the access decision: the
    URL is that decision, for a minute."""
    if not settings.REDIRECT_TO_OBJECT_STORAGE or not uses_object_storage():
        return None
    return default_storage.url(
        _stored_name(blob),
        parameters={"ResponseContentType": "application/octet-stream"},
        expire=settings.CONTAINER_REDIRECT_URL_EXPIRY,
    )


def _stored_name(blob: Blob) -> str:
    stored = getattr(blob, "stored", None)
    if stored is None:
        stored = blob._artifacts.values_list("file", flat=True).get()
    return str(stored)


def front_path(blob: Blob) -> str | None:
    """Where the front finds the blob's stored file (its ``X-Accel-Redirect``), when a front
    serves the local filesystem storage (``CONTAINER_BLOB_ACCEL_REDIRECT_PREFIX``); else None,
    and the bytes are streamed by the view."""
    prefix = settings.CONTAINER_BLOB_ACCEL_REDIRECT_PREFIX
    if not prefix or not isinstance(default_storage, FileSystemStorage):
        return None
    return prefix + quote(_stored_name(blob))


def blob_size(blob: Blob) -> int:
    size = getattr(blob, "size", None)
    return size if size is not None else blob._artifacts.values_list("size", flat=True).get()


def remove_blob(name: RepositoryName, digest: Digest) -> None:
    """Remove a blob from the push repository of ``name``, committed and pending
    (``DELETE .../blobs/<digest>``); NAME_UNKNOWN for a name without one.

    Its bytes stay while another repository holds them; orphan cleanup frees them after.
    """
    repository = existing_repository(name)
    with locked_repository(repository.pk) as locked:
        blob = Blob.objects.filter(digest=str(digest)).filter(held(locked.pk)).first()
        if blob is None:
            raise BlobUnknown(f"blob {digest} is unknown to {repository.name}")
        commit_version(locked, remove=[blob.pk])
