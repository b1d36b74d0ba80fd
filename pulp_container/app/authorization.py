"""What a user may do to a repository name, decided from Pulp's roles and distributions.

The token issuer, the registry views (basic auth) and the mount code all ask ``allowed_actions``,
so one decision serves every path.

- The administrator (superuser) may do everything.
- A user owns the namespace named after their username: pull, push and delete in it.
- Roles on the namespace (owner, collaborator, consumer) or on the distribution, held by the user
  or a group of theirs, or held globally, grant what their permissions say.
- Anyone, anonymous included, may pull a public (non-private) distribution.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Permission
from django.db.models import Q, QuerySet
from pulpcore.plugin.models.role import GroupRole, UserRole

from pulp_container.app.models import ContainerDistribution, ContainerNamespace
from pulp_container.app.oci import RepositoryName
from pulp_container.app.scopes import DELETE, PULL, PUSH, REPOSITORY_ACTIONS, Scope

User = AbstractBaseUser | AnonymousUser

# Permission codename -> the repository action it grants.
_GRANTS = {
    "namespace_pull_images": PULL,
    "namespace_push_images": PUSH,
    "namespace_delete_images": DELETE,
    "pull_images": PULL,
    "push_images": PUSH,
    "delete_images": DELETE,
}
# A user who may push may also pull what they push; one who may delete may pull as well.
_IMPLIED = {PUSH: {PULL}, DELETE: {PULL}, PULL: set()}


def allowed_actions(
    user: User,
    name: RepositoryName,
    distribution: ContainerDistribution | None = None,
    namespace: ContainerNamespace | None = None,
) -> frozenset[str]:
    """The repository actions (pull, push, delete) ``user`` may take on ``name``."""
    if user.is_superuser:
        return REPOSITORY_ACTIONS
    if distribution is None:
        distribution = ContainerDistribution.objects.filter(base_path=str(name)).first()
    actions: set[str] = set()
    if distribution is not None and not distribution.private:
        actions.add(PULL)
    if not user.is_authenticated:
        return frozenset(actions)
    if user.get_username() == name.namespace:
        return REPOSITORY_ACTIONS
    if namespace is None:
        if distribution is not None and distribution.namespace_id:
            namespace = ContainerNamespace.objects.filter(pk=distribution.namespace_id).first()
        else:
            namespace = ContainerNamespace.objects.filter(name=name.namespace).first()
    objects = [obj.pk for obj in (namespace, distribution) if obj is not None]
    for codename in _granted_codenames(user, objects):
        action = _GRANTS.get(codename)
        if action is not None:
            actions.add(action)
            actions |= _IMPLIED[action]
    return frozenset(actions)


def _granted_codenames(user: AbstractBaseUser, object_pks: list) -> set[str]:
    """Container permission codenames the user holds on these objects or globally (one query)."""
    on_objects = [str(pk) for pk in object_pks]
    user_roles = Q(role__object_users__user=user) & (
        Q(role__object_users__object_id__in=on_objects)
        | Q(role__object_users__object_id__isnull=True, role__object_users__domain__isnull=True)
    )
    group_roles = Q(role__object_groups__group__user=user) & (
        Q(role__object_groups__object_id__in=on_objects)
        | Q(role__object_groups__object_id__isnull=True, role__object_groups__domain__isnull=True)
    )
    return set(
        Permission.objects.filter(content_type__app_label="container")
        .filter(user_roles | group_roles)
        .values_list("codename", flat=True)
        .distinct()
    )


def pullable_distributions(user: User) -> QuerySet[ContainerDistribution]:
    """Distributions whose names ``user`` may see in the catalog."""
    distributions = ContainerDistribution.objects.all()
    if user.is_superuser:
        return distributions
    visible = Q(private=False)
    if user.is_authenticated:
        username = user.get_username()
        visible |= Q(base_path=username) | Q(base_path__startswith=f"{username}/")
        codenames = _granted_codenames(user, [])
        if any(_GRANTS.get(c) for c in codenames):
            return distributions
        readable_pks = _objects_with_grants(user)
        visible |= Q(pk__in=readable_pks) | Q(namespace_id__in=readable_pks)
    return distributions.filter(visible)


def _objects_with_grants(user: AbstractBaseUser) -> list[str]:
    codenames = list(_GRANTS)
    perms = Q(role__permissions__codename__in=codenames)
    users = UserRole.objects.filter(perms, user=user).values_list("object_id", flat=True)
    groups = GroupRole.objects.filter(perms, group__user=user).values_list("object_id", flat=True)
    return [pk for pk in (*users, *groups) if pk]


def grant_scopes(user: User, requested: list[Scope]) -> list[Scope]:
    """Each requested scope cut down to what the user may do (the token server's decision)."""
    granted = []
    for scope in requested:
        if scope.type == "registry":
            if user.is_authenticated:
                granted.append(scope)
            continue
        actions = scope.actions & allowed_actions(user, RepositoryName(scope.name))
        if actions:
            granted.append(Scope(scope.type, scope.name, actions))
    return granted
