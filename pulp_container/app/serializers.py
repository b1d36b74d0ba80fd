"""REST API serializers: they validate and describe; registry logic lives in services."""

from gettext import gettext as _

from rest_framework import serializers

from pulpcore.plugin.serializers import (
    DetailRelatedField,
    DistributionSerializer,
    IdentityField,
    ModelSerializer,
    NoArtifactContentSerializer,
    RepositorySerializer,
    SingleArtifactContentSerializer,
)

from pulp_container.app import models


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

    class Meta:
        fields = NoArtifactContentSerializer.Meta.fields + (
            "digest",
            "media_type",
            "schema_version",
            "artifact_type",
            "subject",
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


class ContainerRepositorySerializer(RepositorySerializer):
    class Meta:
        fields = RepositorySerializer.Meta.fields
        model = models.ContainerRepository


class ContainerDistributionSerializer(DistributionSerializer):
    private = serializers.BooleanField(
        default=False, help_text=_("Private distributions are pulled only by users with rights")
    )
    registry_path = serializers.SerializerMethodField(
        read_only=True, help_text=_("The name to pull: <registry host>/<base_path>")
    )
    namespace = serializers.SlugRelatedField(read_only=True, slug_field="name")

    def get_registry_path(self, distribution) -> str:
        request = self.context.get("request")
        host = request.get_host() if request is not None else "localhost"
        return f"{host}/{distribution.base_path}"

    class Meta:
        fields = DistributionSerializer.Meta.fields + ("private", "registry_path", "namespace")
        model = models.ContainerDistribution
