"""REST API viewsets: declarations of endpoints, querysets and access policies.

Access policies ask the registry's decision (``access_conditions``, over ``authorization.py``),
so a role grants the same rights here as through ``/v2/``: pull shows a repository, its
versions and content; push tags; delete removes images and deletes repositories.
"""

from django.db.models import Q
from django_filters import BaseInFilter, CharFilter
from drf_spectacular.utils import extend_schema
from pulpcore.plugin.serializers import AsyncOperationResponseSerializer
from pulpcore.plugin.tasking import dispatch
from pulpcore.plugin.util import get_objects_for_user
from pulpcore.plugin.viewsets import (
    NAME_FILTER_OPTIONS,
    BaseFilterSet,
    ContentFilter,
    DistributionViewSet,
    NamedModelViewSet,
    OperationPostponedResponse,
    ReadOnlyContentViewSet,
    RemoteFilter,
    RemoteViewSet,
    RepositoryVersionViewSet,
    RepositoryViewSet,
    RolesMixin,
)
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError

from pulp_container.app import authorization, models, serializers, tasks
from pulp_container.app.oci import Digest
from pulp_container.app.scopes import PULL
from pulp_container.app.services import repository_operations


def allow(actions: list[str] | str, condition=None, principal: str = "authenticated") -> dict:
    """One statement of an access policy: ``principal`` may take ``actions`` when ``condition``."""
    statement = {"action": actions, "principal": principal, "effect": "allow"}
    if condition is not None:
        statement["condition"] = condition
    return statement


_AUTHENTICATED_READ = allow(["list", "retrieve", "my_permissions"])
_SCOPED = {"function": "scope_queryset"}


class CharInFilter(BaseInFilter, CharFilter):
    """A comma-separated list of strings."""


class BlobFilter(ContentFilter):
    class Meta:
        model = models.Blob
        fields = {"digest": ["exact", "in"]}


class ManifestFilter(ContentFilter):
    class Meta:
        model = models.Manifest
        fields = {"digest": ["exact", "in"], "media_type": ["exact", "in"]}


class TagFilter(ContentFilter):
    digest = CharInFilter(
        field_name="tagged_manifest__digest", label="Digests of the tagged manifests"
    )
    media_type = CharFilter(
        field_name="tagged_manifest__media_type", label="Media type of the tagged manifest"
    )

    class Meta:
        model = models.Tag
        fields = {"name": NAME_FILTER_OPTIONS}


# Content is seen through the repositories the caller may pull (pulpcore's scope_queryset asks
# the repository viewset, whose scoping is the registry's catalog decision).
_CONTENT_POLICY = {"statements": [_AUTHENTICATED_READ], "queryset_scoping": _SCOPED}


class BlobViewSet(ReadOnlyContentViewSet):
    """Layer and config blobs; their bytes are pulled through the registry (``/v2/``)."""

    endpoint_name = "blobs"
    queryset = models.Blob.objects.all()
    serializer_class = serializers.BlobSerializer
    filterset_class = BlobFilter
    DEFAULT_ACCESS_POLICY = _CONTENT_POLICY


class ManifestViewSet(ReadOnlyContentViewSet):
    """Image manifests and indexes, with their config blob, layers and listed manifests."""

    endpoint_name = "manifests"
    queryset = models.Manifest.objects.select_related("config_blob").prefetch_related(
        "blobs", "listed_manifests"
    )
    serializer_class = serializers.ManifestSerializer
    filterset_class = ManifestFilter
    DEFAULT_ACCESS_POLICY = _CONTENT_POLICY


class TagViewSet(ReadOnlyContentViewSet):
    """Tags: a name pointing at a manifest, inside a repository version."""

    endpoint_name = "tags"
    queryset = models.Tag.objects.select_related("tagged_manifest")
    serializer_class = serializers.TagSerializer
    filterset_class = TagFilter
    DEFAULT_ACCESS_POLICY = _CONTENT_POLICY


class NamespaceFilter(BaseFilterSet):
    """``?name=`` (and its variants): how pulp-cli finds a namespace by ``--name``."""

    class Meta:
        model = models.ContainerNamespace
        fields = {"name": NAME_FILTER_OPTIONS}


class ContainerNamespaceViewSet(
    NamedModelViewSet,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    mixins.DestroyModelMixin,
    RolesMixin,
):
    """Namespaces: the first segment of repository names, and the roles that govern them.

    A user owns the namespace named after them (as the registry decides), so they may create it.
    """

    endpoint_name = "pulp_container/namespaces"
    queryset = models.ContainerNamespace.objects.all()
    serializer_class = serializers.ContainerNamespaceSerializer
    filterset_class = NamespaceFilter
    DEFAULT_ACCESS_POLICY = {
        "statements": [
            _AUTHENTICATED_READ,
            {
                "action": ["create"],
                "principal": "authenticated",
                "effect": "allow",
                "condition_expression": [
                    "has_model_perms:container.add_containernamespace or is_own_namespace"
                ],
            },
            allow(["destroy"], "has_model_or_obj_perms:container.delete_containernamespace"),
            allow(
                ["list_roles", "add_role", "remove_role"],
                "has_model_or_obj_perms:container.manage_roles_containernamespace",
            ),
        ],
        "creation_hooks": [
            {
                "function": "add_roles_for_object_creator",
                "parameters": {"roles": "container.containernamespace_owner"},
            }
        ],
        "queryset_scoping": _SCOPED,
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

    def scope_queryset(self, qs):
        """Namespaces the caller holds a role on, and the one named after them."""
        user = self.request.user
        if user.is_superuser:
            return qs
        viewable = get_objects_for_user(user, "container.view_containernamespace", qs)
        return qs.filter(Q(pk__in=viewable.values("pk")) | Q(name=user.get_username()))


def repository_task(summary: str, description: str, request_serializer):
    """A POST action on one repository that answers 202 with the task doing the work."""

    def decorate(method):
        # extend_schema goes outside: action() replaces the function's schema settings.
        routed = action(detail=True, methods=["post"], serializer_class=request_serializer)(method)
        return extend_schema(
            summary=summary,
            description=description,
            responses={202: AsyncOperationResponseSerializer},
        )(routed)

    return decorate


class ContainerRepositoryViewSet(RepositoryViewSet):
    """Repositories that pushes write into, one per registry name.

    Roles are held on namespaces and distributions (what the registry reads), not here.
    """

    endpoint_name = "container"
    queryset = models.ContainerRepository.objects.order_by("name")
    serializer_class = serializers.ContainerRepositorySerializer
    DEFAULT_ACCESS_POLICY = {
        "statements": [
            _AUTHENTICATED_READ,
            allow(["create"], "may_create_repository:push"),
            allow(
                ["update", "partial_update", "set_label", "unset_label", "tag", "untag"],
                "has_repository_action:push",
            ),
            allow(["destroy", "remove_image"], "has_repository_action:delete"),
            allow(
                ["sync"],
                [
                    "has_repository_action:push",
                    "has_remote_param_model_or_obj_perms:container.view_containerremote",
                ],
            ),
        ],
        "queryset_scoping": _SCOPED,
    }

    def scope_queryset(self, qs):
        return authorization.repositories_with(authorization.grants_of(self.request.user), PULL, qs)

    @repository_task(
        "Sync from a remote",
        "Trigger a task that mirrors the remote's tags (include_tags/exclude_tags) into one new "
        "repository version: additive, or with mirror=true removing what the remote no longer "
        "has. Blobs the registry stores already are not downloaded again.",
        serializers.ContainerSyncSerializer,
    )
    def sync(self, request, pk):
        repository = self.get_object()
        serializer = self.get_serializer(data=request.data, context={"repository_pk": pk})
        serializer.is_valid(raise_exception=True)
        remote = serializer.validated_data.get("remote") or repository.remote
        task = dispatch(
            tasks.sync,
            exclusive_resources=[repository],
            shared_resources=[remote],
            kwargs={
                "repository_pk": str(repository.pk),
                "remote_pk": str(remote.pk),
                "mirror": serializer.validated_data["mirror"],
            },
        )
        return OperationPostponedResponse(task, request)

    @extend_schema(
        description="Trigger a task that deletes the repository and the distributions serving "
        "it. Orphan cleanup then frees the content no repository holds.",
        responses={202: AsyncOperationResponseSerializer},
    )
    def destroy(self, request, pk, **kwargs):
        repository = self.get_object()
        distributions = models.ContainerDistribution.objects.filter(
            Q(repository=repository) | Q(repository_version__repository=repository)
        )
        task = dispatch(
            tasks.delete_repository,
            exclusive_resources=[repository, *distributions],
            kwargs={"repository_pk": str(repository.pk)},
        )
        return OperationPostponedResponse(task, request)

    @repository_task(
        "Tag an image",
        "Trigger a task that points a tag at a manifest of the latest version.",
        serializers.TagRequestSerializer,
    )
    def tag(self, request, pk):
        repository = self.get_object()
        data = self._validated(request)
        digest = Digest.parse(data["digest"])
        if repository_operations.manifest_in_version(repository.latest_version(), digest) is None:
            raise ValidationError({"digest": f"no manifest {digest} in the latest version"})
        return self._dispatch(tasks.tag_image, repository, tag=data["tag"], digest=str(digest))

    @repository_task(
        "Untag an image",
        "Trigger a task that removes a tag; the manifest stays.",
        serializers.UntagRequestSerializer,
    )
    def untag(self, request, pk):
        repository = self.get_object()
        tag = self._validated(request)["tag"]
        self._require_tag(repository, tag)
        return self._dispatch(tasks.untag_image, repository, tag=tag)

    @repository_task(
        "Remove an image",
        "Trigger a task that removes an image (a manifest by digest, or a tag and its manifest "
        "when nothing else refers to it) with the blobs and manifests only it references.",
        serializers.RemoveImageRequestSerializer,
    )
    def remove_image(self, request, pk):
        repository = self.get_object()
        data = self._validated(request)
        if "tag" in data:
            self._require_tag(repository, data["tag"])
        else:
            digest = Digest.parse(data["digest"])
            latest = repository.latest_version()
            if repository_operations.manifest_in_version(latest, digest) is None:
                raise ValidationError({"digest": f"no manifest {digest} in the latest version"})
        return self._dispatch(tasks.remove_image, repository, **data)

    def _validated(self, request) -> dict:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @staticmethod
    def _require_tag(repository, tag: str) -> None:
        if repository_operations.tag_in_version(repository.latest_version(), tag) is None:
            raise ValidationError({"tag": f"no tag {tag} in the latest version"})

    def _dispatch(self, task_function, repository, **kwargs):
        task = dispatch(
            task_function,
            exclusive_resources=[repository],
            kwargs={"repository_pk": str(repository.pk), **kwargs},
        )
        return OperationPostponedResponse(task, self.request)


class ContainerRemoteFilter(RemoteFilter):
    """By name and labels. Not by ``pulp_last_updated``: pulpcore's filter hands PostgreSQL
    any time zone offset, and one beyond +/-15:59 is a database error (a 500), not a 400."""

    class Meta:
        model = models.ContainerRemote
        fields = {"name": NAME_FILTER_OPTIONS}


class ContainerRemoteViewSet(RemoteViewSet, RolesMixin):
    """Remotes: another registry's repository (and credentials) to sync or pull through from."""

    endpoint_name = "container"
    queryset = models.ContainerRemote.objects.all()
    serializer_class = serializers.ContainerRemoteSerializer
    filterset_class = ContainerRemoteFilter
    DEFAULT_ACCESS_POLICY = {
        "statements": [
            _AUTHENTICATED_READ,
            allow(["create"], "has_model_perms:container.add_containerremote"),
            allow(
                ["update", "partial_update", "set_label", "unset_label"],
                "has_model_or_obj_perms:container.change_containerremote",
            ),
            allow(["destroy"], "has_model_or_obj_perms:container.delete_containerremote"),
            allow(
                ["list_roles", "add_role", "remove_role"],
                "has_model_or_obj_perms:container.manage_roles_containerremote",
            ),
        ],
        "creation_hooks": [
            {
                "function": "add_roles_for_object_creator",
                "parameters": {"roles": "container.containerremote_owner"},
            }
        ],
        "queryset_scoping": {"function": "scope_queryset"},
    }
    LOCKED_ROLES = {
        "container.containerremote_creator": ["container.add_containerremote"],
        "container.containerremote_owner": [
            "container.view_containerremote",
            "container.change_containerremote",
            "container.delete_containerremote",
            "container.manage_roles_containerremote",
        ],
        "container.containerremote_viewer": ["container.view_containerremote"],
    }


class ContainerRepositoryVersionViewSet(RepositoryVersionViewSet):
    parent_viewset = ContainerRepositoryViewSet
    DEFAULT_ACCESS_POLICY = {
        "statements": [
            allow(["list", "retrieve"], "has_parent_repository_action:pull"),
            allow(["destroy"], "has_parent_repository_action:delete"),
            {"action": ["repair"], "principal": "admin", "effect": "allow"},
        ]
    }


class ContainerDistributionViewSet(DistributionViewSet, RolesMixin):
    """Distributions make a repository reachable at a registry name."""

    endpoint_name = "container"
    queryset = models.ContainerDistribution.objects.select_related("namespace")
    serializer_class = serializers.ContainerDistributionSerializer
    DEFAULT_ACCESS_POLICY = {
        "statements": [
            _AUTHENTICATED_READ,
            allow(
                ["create"],
                [
                    "may_serve_requested_content:push",
                    "has_remote_param_model_or_obj_perms:container.view_containerremote",
                ],
            ),
            allow(
                ["update", "partial_update"],
                [
                    "has_distribution_action:push",
                    "may_serve_requested_content:push",
                    "has_remote_param_model_or_obj_perms:container.view_containerremote",
                ],
            ),
            allow(["set_label", "unset_label"], "has_distribution_action:push"),
            allow(["destroy"], "has_distribution_action:delete"),
            allow(
                ["list_roles", "add_role", "remove_role"],
                "has_model_or_obj_perms:container.manage_roles_containerdistribution",
            ),
        ],
        "queryset_scoping": _SCOPED,
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

    def scope_queryset(self, qs):
        grants = authorization.grants_of(self.request.user)
        return authorization.distributions_with(grants, PULL, qs)
