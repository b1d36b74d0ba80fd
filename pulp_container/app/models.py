"""Domain models: blobs, manifests, tags, namespaces, repositories, distributions, uploads."""

from aiohttp.web import HTTPNotFound
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.signals import pre_save
from django.dispatch import receiver
from pulpcore.plugin.models import (
    AutoAddObjPermsMixin,
    BaseModel,
    Content,
    Distribution,
    Remote,
    Repository,
)
from pulpcore.plugin.util import get_domain_pk
from rest_framework.exceptions import ValidationError

from pulp_container.app.registry_downloader import TokenCache, registry_download_factory

# The permissions of namespaces and distributions, codename -> description. The codenames are
# the vocabulary of role definitions (``container.namespace_pull_images``) that users and their
# scripts already name, and authorization.py reads them; the descriptions are ours.
NAMESPACE_PERMISSIONS = {
    "namespace_pull_images": "Pull from every repository under this namespace",
    "namespace_push_images": "Push to every repository under this namespace",
    "namespace_delete_images": "Delete tags, manifests, blobs under this namespace",
    "namespace_create_repositories": "Start new repositories under this namespace",
    "manage_roles_containernamespace": "Grant and revoke roles on this namespace",
}
DISTRIBUTION_PERMISSIONS = {
    "pull_images": "Pull from the repository served at this name",
    "push_images": "Push to the repository served at this name",
    "delete_images": "Delete tags, manifests, blobs at this name",
    "manage_roles_containerdistribution": "Grant and revoke roles on this distribution",
}


def domain_field() -> models.ForeignKey:
    """The pulpcore domain a content unit lives in; part of each content type's natural key."""
    return models.ForeignKey("core.Domain", default=get_domain_pk, on_delete=models.PROTECT)


class Blob(Content):
    """A layer or config blob; its bytes are one Artifact shared by every repository."""

    TYPE = "blob"
    PROTECTED_FROM_RECLAIM = False
    repo_key_fields = ("digest",)

    # Found by the unique (digest, domain) index: a second index on digest only doubled the
    # writes of every push (docs/scaling.md).
    digest = models.TextField()
    _pulp_domain = domain_field()

    class Meta:
        default_related_name = "%(app_label)s_%(model_name)s"
        unique_together = ("digest", "_pulp_domain")


class Manifest(Content):
    """An image manifest or an index (manifest list), stored as the exact bytes pushed."""

    TYPE = "manifest"
    repo_key_fields = ("digest",)

    digest = models.TextField()  # found by the unique (digest, domain) index, as a blob's
    media_type = models.TextField()
    schema_version = models.IntegerField(default=2)
    data = models.TextField()
    artifact_type = models.TextField(null=True)
    subject = models.TextField(null=True, db_index=True)
    annotations = models.JSONField(default=dict)

    config_blob = models.ForeignKey(
        Blob, null=True, related_name="config_of", on_delete=models.CASCADE
    )
    blobs = models.ManyToManyField(Blob, related_name="layer_of")
    listed_manifests = models.ManyToManyField("self", symmetrical=False, related_name="listed_in")
    _pulp_domain = domain_field()

    class Meta:
        default_related_name = "%(app_label)s_%(model_name)s"
        unique_together = ("digest", "_pulp_domain")


class Tag(Content):
    """A name pointing at a manifest; a repository version holds one Tag per name."""

    TYPE = "tag"
    repo_key_fields = ("name",)

    name = models.TextField(db_index=True)
    tagged_manifest = models.ForeignKey(Manifest, related_name="tags", on_delete=models.CASCADE)
    _pulp_domain = domain_field()

    class Meta:
        default_related_name = "%(app_label)s_%(model_name)s"
        unique_together = ("name", "tagged_manifest", "_pulp_domain")


class ContainerNamespace(BaseModel, AutoAddObjPermsMixin):
    """The first segment of repository names; its owner may create repositories under it."""

    name = models.TextField(unique=True)

    class Meta:
        default_related_name = "%(app_label)s_%(model_name)s"
        permissions = list(NAMESPACE_PERMISSIONS.items())


class ContainerRepository(Repository, AutoAddObjPermsMixin):
    """The repository a push writes into, one per registry name.

    Blobs and manifests of a push in progress are *pending*: linked to the repository through
    PendingContent, invisible to pulls, and protected from orphan cleanup until a committed
    manifest takes them into a repository version.
    """

    TYPE = "container"
    CONTENT_TYPES = [Blob, Manifest, Tag]
    REMOTE_TYPES: list = []  # ContainerRemote, once it is defined below

    class Meta:
        default_related_name = "%(app_label)s_%(model_name)s"

    def finalize_new_version(self, new_version):
        """A retag replaces the tag of the same name (Tag.repo_key_fields); nothing else can
        collide, so nothing else is read.

        Blobs and manifests are keyed by their digest, which is unique per content unit (unique
        together with the domain), and their stored paths are those digests: a version can hold
        neither twice. pulpcore's generic checks (``remove_duplicates``, ``validate_repo_version``)
        would re-read the whole version for that at every push, a dozen queries growing with the
        repository; here a version that adds no tag costs one query, one that adds tags two.
        """
        added_tags = list(
            Tag.objects.filter(pk__in=new_version.added().values("pk")).values_list("pk", "name")
        )
        if not added_tags:
            return
        names = [name for _, name in added_tags]
        if len(set(names)) != len(names):
            raise ValueError(f"a repository version cannot hold two tags of one name: {names}")
        replaced = list(
            Tag.objects.filter(pk__in=new_version.content.values("pk"), name__in=names)
            .exclude(pk__in=[pk for pk, _ in added_tags])
            .values_list("pk", flat=True)
        )
        if replaced:
            new_version.remove_content(Content.objects.filter(pk__in=replaced))


class ContainerRemote(Remote, AutoAddObjPermsMixin):
    """Another registry's repository to mirror from: ``url`` (the registry), ``upstream_name``
    (the repository there), the tags to take (``include_tags``/``exclude_tags``, shell-style
    wildcards), credentials and TLS settings (pulpcore's Remote fields).

    A sync downloads every blob it takes (policy ``immediate``), or its manifests and config
    blobs and each layer at its first pull (``on_demand``); a distribution with a remote fetches
    a reference at its first pull (pull-through), its layers by the same policy.
    """

    TYPE = "container"
    DEFAULT_DOWNLOAD_CONCURRENCY = 10

    upstream_name = models.TextField(db_index=True)
    include_tags = ArrayField(models.TextField(), null=True)
    exclude_tags = ArrayField(models.TextField(), null=True)

    class Meta:
        default_related_name = "%(app_label)s_%(model_name)s"
        permissions = [
            ("manage_roles_containerremote", "Grant and revoke roles on this remote"),
        ]

    @property
    def download_factory(self):
        """Downloaders that answer the source registry's Bearer challenges, sharing tokens."""
        try:
            return self._download_factory
        except AttributeError:
            self._download_factory = registry_download_factory(self)
            self._tokens = TokenCache()
            return self._download_factory

    def get_downloader(self, remote_artifact=None, url=None, download_factory=None, **kwargs):
        factory = self.download_factory
        return super().get_downloader(
            remote_artifact, url, download_factory=factory, tokens=self._tokens, **kwargs
        )


ContainerRepository.REMOTE_TYPES = [ContainerRemote]


class PendingContent(models.Model):
    """Content a push in progress has uploaded or mounted into a repository.

    The foreign key to the content is PROTECT, so orphan cleanup, which deletes content and
    skips what the database refuses to delete, never removes pending content.
    """

    repository = models.ForeignKey(
        ContainerRepository, related_name="pending", on_delete=models.CASCADE
    )
    content = models.ForeignKey(Content, related_name="pending_in", on_delete=models.PROTECT)
    added = models.DateTimeField(auto_now=True)

    class Meta:
        unique_together = ("repository", "content")


class ContainerDistribution(Distribution, AutoAddObjPermsMixin):
    """Makes a repository reachable at a registry name (``base_path``).

    Its content is served by the registry (``/v2/``), which asks the access decision; the content
    app lists none of these distributions (``hidden``) and serves nothing of them.
    """

    TYPE = "container"

    private = models.BooleanField(default=False)
    namespace = models.ForeignKey(
        ContainerNamespace, null=True, related_name="distributions", on_delete=models.SET_NULL
    )

    class Meta:
        default_related_name = "%(app_label)s_%(model_name)s"
        permissions = list(DISTRIBUTION_PERMISSIONS.items())

    def save(self, *args, **kwargs):
        self.hidden = True
        super().save(*args, **kwargs)

    def content_handler(self, path):
        """The content app's door: closed. It knows nothing of registry permissions."""
        raise HTTPNotFound(text=CONTENT_APP_REFUSAL)


CONTENT_APP_REFUSAL = "Container content is pulled through the registry API (/v2/), not here.\n"


@receiver(pre_save)
def _no_other_distribution_serves_containers(sender, instance, **kwargs):
    """No distribution of another type (a file distribution, say) may serve a container
    repository: the content app would hand its bytes to anyone, around the access decision."""
    if not isinstance(instance, Distribution) or isinstance(instance, ContainerDistribution):
        return
    served = [instance.repository, getattr(instance.repository_version, "repository", None)]
    publication = getattr(instance, "publication", None)
    if publication is not None:
        served.append(publication.repository_version.repository)
    container = ContainerRepository.get_pulp_type()
    if any(repository is not None and repository.pulp_type == container for repository in served):
        raise ValidationError(
            {"repository": "A container repository is served only by container distributions."}
        )


class BlobUpload(BaseModel):
    """A blob upload in progress; any API host may take its next request.

    ``hash_state`` holds the running hashes of the bytes received so far (``hash_state.dump``):
    each chunk resumes them, so the digest is known at commit without reading the bytes again.
    Where the bytes are is the upload store's business (``upload_stores``): a file in the
    WORKING_DIRECTORY on the filesystem storage, or an S3 multipart upload and its unsent tail
    (``storage_state``) on object storage.
    """

    repository = models.ForeignKey(
        ContainerRepository, related_name="uploads", on_delete=models.CASCADE
    )
    offset = models.BigIntegerField(default=0)
    hash_state = models.JSONField(null=True)
    storage_state = models.JSONField(null=True)
    # Who started the session: with an expired token, only they may continue it. Its activity is
    # ``pulp_last_updated`` (each chunk moves it), which expiry and that check read.
    started_by = models.TextField(default="")


class BlobTransfer(BaseModel):
    """One record per blob that reached a repository, and how: uploaded, mounted, linked.

    These records are what proves that a hierarchy push sent only its unique bytes.
    """

    repository_name = models.TextField(db_index=True)
    digest = models.TextField()
    outcome = models.TextField(db_index=True)
    reason = models.TextField(default="")
    bytes_received = models.BigIntegerField(default=0)
    bytes_saved = models.BigIntegerField(default=0)


class CredentialCheck(models.Model):
    """A recent successful password check (see pulp_container.app.credentials)."""

    key = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    password_mac = models.CharField(max_length=64)
    expires = models.DateTimeField(db_index=True)
