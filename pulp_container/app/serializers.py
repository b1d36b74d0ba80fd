"""REST API serializers: they validate and describe; registry logic lives in services."""

from gettext import gettext as _

from django.contrib.auth.models import AnonymousUser
from pulpcore.plugin.models import RepositoryContent
from pulpcore.plugin.serializers import (
    DetailRelatedField,
    DistributionSerializer,
    IdentityField,
    ModelSerializer,
    NoArtifactContentSerializer,
    RemoteSerializer,
    RepositorySerializer,
    RepositorySyncURLSerializer,
    SingleArtifactContentSerializer,
)
from rest_framework import serializers

from pulp_container.app import models
from pulp_container.app.authorization import grants_of, repositories_with
from pulp_container.app.exceptions import DigestInvalid, NameInvalid
from pulp_container.app.oci import TAG_PATTERN, Digest, RepositoryName
from pulp_container.app.scopes import PULL

# RegexField searches; a tag must match whole.
_TAG = rf"^{TAG_PATTERN.pattern}$"


class BlobSerializer(SingleArtifactContentSerializer):
    digest = serializers.CharField(read_only=True, help_text=_("sha256 digest of the blob"))

    class Meta:
        fields = SingleArtifactContentSerializer.Meta.fields + ("digest",)
        model = models.Blob


class ManifestSerializer(NoArtifactContentSerializer):
    digest = serializers.CharField(read_only=True)
    media_type = serializers.CharField(read_only=True)
    schema_version = serializers.IntegerField(read_only=True)
    artifact_type = serializers.CharField(read_only=True, allow_null=True)
    subject = serializers.CharField(read_only=True, allow_null=True)
    config_blob = DetailRelatedField(
        read_only=True, view_name_pattern=r"content(-.*/.*)-detail", allow_null=True
    )
    blobs = DetailRelatedField(
        many=True, read_only=True, view_name_pattern=r"content(-.*/.*)-detail"
    )
    listed_manifests = DetailRelatedField(
        many=True, read_only=True, view_name_pattern=r"content(-.*/.*)-detail"
    )
    referrers = serializers.SerializerMethodField(
        help_text=_("Digests of the manifests (signatures, SBOMs...) whose subject this is")
    )

    def get_referrers(self, manifest) -> list[str]:
        """Referrers in repositories the caller may pull: a digest is a fact about a repository."""
        request = self.context.get("request")
        user = request.user if request is not None else AnonymousUser()
        readable = repositories_with(grants_of(user), PULL).values("pk")
        held = RepositoryContent.objects.filter(
            repository_id__in=readable, version_removed__isnull=True
        ).values("content_id")
        return list(
            models.Manifest.objects.filter(subject=manifest.digest, pk__in=held)
            .order_by("digest")
            .values_list("digest", flat=True)
        )

    class Meta:
        fields = NoArtifactContentSerializer.Meta.fields + (
            "digest",
            "media_type",
            "schema_version",
            "artifact_type",
            "subject",
            "referrers",
            "config_blob",
            "blobs",
            "listed_manifests",
        )
        model = models.Manifest


class TagSerializer(NoArtifactContentSerializer):
    name = serializers.CharField(read_only=True)
    tagged_manifest = DetailRelatedField(
        read_only=True, view_name_pattern=r"content(-.*/.*)-detail"
    )

    class Meta:
        fields = NoArtifactContentSerializer.Meta.fields + ("name", "tagged_manifest")
        model = models.Tag


class ContainerNamespaceSerializer(ModelSerializer):
    pulp_href = IdentityField(view_name="pulp_container/namespaces-detail")
    name = serializers.RegexField(
        r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$",
        help_text=_("The first segment of repository names this namespace holds"),
    )

    class Meta:
        fields = ModelSerializer.Meta.fields + ("name",)
        model = models.ContainerNamespace


class ContainerRemoteSerializer(RemoteSerializer):
    """Another registry's repository to mirror from."""

    upstream_name = serializers.CharField(
        help_text=_("The repository to mirror in the remote registry, e.g. library/busybox")
    )
    include_tags = serializers.ListField(
        child=serializers.CharField(max_length=255),
        allow_null=True,
        required=False,
        help_text=_("Tags to sync (shell-style wildcards such as 'v1.*'); all when unset"),
    )
    exclude_tags = serializers.ListField(
        child=serializers.CharField(max_length=255),
        allow_null=True,
        required=False,
        help_text=_("Tags not to sync (shell-style wildcards); applied after include_tags"),
    )
    policy = serializers.ChoiceField(
        choices=[
            (models.ContainerRemote.IMMEDIATE, "download every blob at sync time"),
            (models.ContainerRemote.ON_DEMAND, "download a layer at its first pull"),
        ],
        default=models.ContainerRemote.IMMEDIATE,
        help_text=_(
            "immediate: a sync downloads every blob of the images it takes; on_demand: a sync "
            "downloads manifests and config blobs, and each layer at its first pull"
        ),
    )

    def validate_upstream_name(self, value: str) -> str:
        try:
            RepositoryName.parse(value)
        except NameInvalid:
            raise serializers.ValidationError(
                _("'{}' is not a valid registry name").format(value)
            ) from None
        return value

    class Meta:
        fields = RemoteSerializer.Meta.fields + ("upstream_name", "include_tags", "exclude_tags")
        model = models.ContainerRemote


class ContainerSyncSerializer(RepositorySyncURLSerializer):
    """``remote`` (else the repository's), and ``mirror``: remove what the source removed."""


class ContainerRepositorySerializer(RepositorySerializer):
    """A repository pushes write into; its name is the registry name that created it."""

    remote = DetailRelatedField(
        required=False,
        allow_null=True,
        help_text=_("The container remote a sync takes when none is given"),
        view_name_pattern=r"remotes(-.*/.*)-detail",
        queryset=models.ContainerRemote.objects.all(),
    )

    def validate_name(self, value: str) -> str:
        # The registry finds a push repository by its name: renaming it would orphan the name.
        if self.instance is not None and value != self.instance.name:
            raise serializers.ValidationError(_("The name of a container repository is fixed."))
        return value

    class Meta:
        fields = RepositorySerializer.Meta.fields
        model = models.ContainerRepository


class TagRequestSerializer(serializers.Serializer):
    """Point a tag at a manifest of the repository's latest version."""

    tag = serializers.RegexField(_TAG, help_text=_("The tag to create or move"))
    digest = serializers.CharField(help_text=_("Digest of a manifest in the repository"))

    def validate_digest(self, value: str) -> str:
        return str(_parse_digest(value))


class UntagRequestSerializer(serializers.Serializer):
    """Remove a tag; the manifest stays, reachable by digest."""

    tag = serializers.RegexField(_TAG, help_text=_("The tag to remove"))


class RemoveImageRequestSerializer(serializers.Serializer):
    """An image to remove: by manifest digest, or by tag (the manifest goes if nothing else
    refers to it)."""

    digest = serializers.CharField(
        required=False, help_text=_("Digest of the manifest to remove, with its tags")
    )
    tag = serializers.RegexField(
        _TAG, required=False, help_text=_("Tag to remove, with its manifest if unshared")
    )

    def validate_digest(self, value: str) -> str:
        return str(_parse_digest(value))

    def validate(self, data: dict) -> dict:
        if ("digest" in data) == ("tag" in data):
            raise serializers.ValidationError(_("Give exactly one of 'digest' and 'tag'."))
        return data


def _parse_digest(value: str) -> Digest:
    try:
        return Digest.parse(value)
    except DigestInvalid as error:
        raise serializers.ValidationError(str(error.detail)) from None


class ContainerDistributionSerializer(DistributionSerializer):
    private = serializers.BooleanField(
        default=False, help_text=_("Private distributions are pulled only by users with rights")
    )
    registry_path = serializers.SerializerMethodField(
        read_only=True, help_text=_("The name to pull: <registry host>/<base_path>")
    )
    base_url = serializers.SerializerMethodField(
        read_only=True,
        help_text=_(
            "The registry URL of the name, under which its /v2/ endpoints are: pulls go through "
            "the registry and its access decision, never through the content app"
        ),
    )
    hidden = serializers.BooleanField(
        read_only=True, help_text=_("Always true: the content app does not serve this")
    )
    namespace = serializers.SlugRelatedField(read_only=True, slug_field="name")

    repository = DetailRelatedField(
        required=False,
        allow_null=True,
        help_text=_("The container repository whose latest version is served"),
        view_name_pattern=r"repositories(-.*/.*)?-detail",
        queryset=models.ContainerRepository.objects.all(),
    )
    remote = DetailRelatedField(
        required=False,
        allow_null=True,
        help_text=_(
            "Pull-through: a reference the repository lacks is fetched from this remote at its "
            "first pull, stored in the repository (a new version) and served"
        ),
        view_name_pattern=r"remotes(-.*/.*)-detail",
        queryset=models.ContainerRemote.objects.all(),
    )

    def validate_base_path(self, path: str) -> str:
        # The registry name grammar, then pulpcore's rule (also a database constraint) that no
        # base path is a prefix of another.
        try:
            RepositoryName.parse(path)
        except NameInvalid:
            raise serializers.ValidationError(
                _("'{}' is not a valid registry name").format(path)
            ) from None
        return super().validate_base_path(path)

    def validate_repository_version(self, version):
        if (
            version is not None
            and version.repository.pulp_type != models.ContainerRepository.get_pulp_type()
        ):
            raise serializers.ValidationError(_("Not a version of a container repository."))
        return version

    def get_registry_path(self, distribution) -> str:
        return f"{self._registry_host()}/{distribution.base_path}"

    def get_base_url(self, distribution) -> str:
        request = self.context.get("request")
        scheme = request.scheme if request is not None else "https"
        return f"{scheme}://{self._registry_host()}/v2/{distribution.base_path}/"

    def _registry_host(self) -> str:
        request = self.context.get("request")
        return request.get_host() if request is not None else "localhost"

    class Meta:
        fields = DistributionSerializer.Meta.fields + (
            "private",
            "registry_path",
            "namespace",
            "remote",
        )
        model = models.ContainerDistribution
