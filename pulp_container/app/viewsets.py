"""REST API viewsets: declarations of endpoints, querysets and access policies."""

from pulpcore.plugin.viewsets import (
    ContentFilter,
    DistributionViewSet,
    NamedModelViewSet,
    ReadOnlyContentViewSet,
    RepositoryVersionViewSet,
    RepositoryViewSet,
    RolesMixin,
)
from rest_framework import mixins

from pulp_container.app import models, serializers

_AUTHENTICATED_READ = {
    "action": ["list", "retrieve", "my_permissions"],
    "principal": "authenticated",
    "effect": "allow",
}


class BlobFilter(ContentFilter):
    class Meta:
        model = models.Blob
        fields = {"digest": ["exact", "in"]}


class ManifestFilter(ContentFilter):
    class Meta:
        model = models.Manifest
        fields = {"digest": ["exact", "in"], "media_type": ["exact", "in"]}


class TagFilter(ContentFilter):
    class Meta:
        model = models.Tag
        fields = {"name": ["exact", "in"]}


class BlobViewSet(ReadOnlyContentViewSet):
    endpoint_name = "blobs"
    queryset = models.Blob.objects.all()
    serializer_class = serializers.BlobSerializer
    filterset_class = BlobFilter
    DEFAULT_ACCESS_POLICY = {"statements": [_AUTHENTICATED_READ]}


class ManifestViewSet(ReadOnlyContentViewSet):
    endpoint_name = "manifests"
    queryset = models.Manifest.objects.all()
    serializer_class = serializers.ManifestSerializer
    filterset_class = ManifestFilter
    DEFAULT_ACCESS_POLICY = {"statements": [_AUTHENTICATED_READ]}


class TagViewSet(ReadOnlyContentViewSet):
    endpoint_name = "tags"
    queryset = models.Tag.objects.all()
    serializer_class = serializers.TagSerializer
    filterset_class = TagFilter
    DEFAULT_ACCESS_POLICY = {"statements": [_AUTHENTICATED_READ]}


class ContainerNamespaceViewSet(
    NamedModelViewSet,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    mixins.DestroyModelMixin,
    RolesMixin,
):
    """Namespaces: the first segment of repository names, and the roles that govern them."""

    endpoint_name = "pulp_container/namespaces"
    queryset = models.ContainerNamespace.objects.all()
    serializer_class = serializers.ContainerNamespaceSerializer
    DEFAULT_ACCESS_POLICY = {
        "statements": [
            _AUTHENTICATED_READ,
            {
                "action": ["create"],
                "principal": "authenticated",
                "effect": "allow",
                "condition": "has_model_perms:container.add_containernamespace",
            },
            {
                "action": ["destroy"],
                "principal": "authenticated",
                "effect": "allow",
                "condition": "has_model_or_obj_perms:container.delete_containernamespace",
            },
            {
                "action": ["list_roles", "add_role", "remove_role"],
                "principal": "authenticated",
                "effect": "allow",
                "condition": "has_model_or_obj_perms:container.manage_roles_containernamespace",
            },
        ],
        "creation_hooks": [
            {
                "function": "add_roles_for_object_creator",
                "parameters": {"roles": "container.containernamespace_owner"},
            }
        ],
    }
    LOCKED_ROLES = {
        "container.containernamespace_creator": ["container.add_containernamespace"],
        "container.containernamespace_owner": [
            "container.view_containernamespace",
            "container.delete_containernamespace",
            "container.namespace_pull_images",
            "container.namespace_push_images",
            "container.namespace_delete_images",
            "container.namespace_create_repositories",
            "container.manage_roles_containernamespace",
        ],
        "container.containernamespace_collaborator": [
            "container.view_containernamespace",
            "container.namespace_pull_images",
            "container.namespace_push_images",
            "container.namespace_create_repositories",
        ],
        "container.containernamespace_consumer": [
            "container.view_containernamespace",
            "container.namespace_pull_images",
        ],
    }


class ContainerRepositoryViewSet(RepositoryViewSet, RolesMixin):
    """Repositories that pushes write into, one per registry name."""

    endpoint_name = "container"
    queryset = models.ContainerRepository.objects.all()
    serializer_class = serializers.ContainerRepositorySerializer
    DEFAULT_ACCESS_POLICY = {
        "statements": [
            _AUTHENTICATED_READ,
            {
                "action": ["create", "update", "partial_update", "destroy"],
                "principal": "admin",
                "effect": "allow",
            },
        ]
    }


class ContainerRepositoryVersionViewSet(RepositoryVersionViewSet):
    parent_viewset = ContainerRepositoryViewSet
    DEFAULT_ACCESS_POLICY = {"statements": [_AUTHENTICATED_READ]}


class ContainerDistributionViewSet(DistributionViewSet, RolesMixin):
    """Distributions make a repository reachable at a registry name."""

    endpoint_name = "container"
    queryset = models.ContainerDistribution.objects.all()
    serializer_class = serializers.ContainerDistributionSerializer
    DEFAULT_ACCESS_POLICY = {
        "statements": [
            _AUTHENTICATED_READ,
            {
                "action": ["create", "update", "partial_update", "destroy"],
                "principal": "admin",
                "effect": "allow",
            },
            {
                "action": ["list_roles", "add_role", "remove_role"],
                "principal": "authenticated",
                "effect": "allow",
                "condition": "has_model_or_obj_perms:container.manage_roles_containerdistribution",
            },
        ]
    }
    LOCKED_ROLES = {
        "container.containerdistribution_owner": [
            "container.view_containerdistribution",
            "container.pull_images",
            "container.push_images",
            "container.delete_images",
            "container.manage_roles_containerdistribution",
        ],
        "container.containerdistribution_collaborator": [
            "container.view_containerdistribution",
            "container.pull_images",
            "container.push_images",
        ],
        "container.containerdistribution_consumer": [
            "container.view_containerdistribution",
            "container.pull_images",
        ],
    }
