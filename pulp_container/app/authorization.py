"""The one access decision: what a user may do to a repository, and through a registry name.

Every door asks this module: the ``/v2/`` views, the token server (which grants no more than
it), the mount and link-on-HEAD services, every REST access policy and queryset scoping, and the
content app (which serves container distributions to nobody). The rules:

- Rights belong to a **repository** and come from its own name: the namespace that is the first
  segment of the repository's name, and its *home* distribution (the one whose base path is the
  repository's name and that serves it) for roles on it and for public/private.
- The administrator (superuser) may do everything.
- A user owns the namespace named after their username: pull, push and delete in it.
- Roles on the namespace or on the home distribution, held by the user or a group of theirs, or
  held globally, grant what their permissions say; push and delete imply pull.
- Anyone, anonymous included, may pull a repository whose home distribution is public.
- A request on a registry **name** may do what the name allows (its namespace, the distribution
  at it) *and* what the repository it serves allows. A second name serving a repository never
  widens a right: not a public alias of a private repository, not a role on the alias.
- Content that a push has uploaded but no manifest has committed (pending) is seen only by those
  who may push to the repository that holds it.

``Grants`` reads a user's roles once (one query); the decisions are then plain Python over the
distributions involved, and the ``*_q`` builders express the same rules in SQL for listings,
so a catalog, a REST list and an automatic mount cost one query whatever the number of
repositories.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import (
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.functions import Coalesce
from pulpcore.plugin.models.role import GroupRole, UserRole

from pulp_container.app.models import (
    ContainerDistribution,
    ContainerNamespace,
    ContainerRepository,
)
from pulp_container.app.oci import RepositoryName
from pulp_container.app.scopes import DELETE, PULL, PUSH, REPOSITORY_ACTIONS, Scope
from pulp_container.app.tokens import VerifiedToken

User = AbstractBaseUser | AnonymousUser
NOTHING: frozenset[str] = frozenset()

# Permission codename -> the repository actions it grants (push and delete imply pull).
_GRANTS = {
    "namespace_pull_images": frozenset({PULL}),
    "namespace_push_images": frozenset({PUSH, PULL}),
    "namespace_delete_images": frozenset({DELETE, PULL}),
    "pull_images": frozenset({PULL}),
    "push_images": frozenset({PUSH, PULL}),
    "delete_images": frozenset({DELETE, PULL}),
}


# --- what a user holds ------------------------------------------------------------------------


@dataclass(frozen=True)
class Grants:
    """The container rights a user holds, read once: globally, per namespace name, per
    distribution pk. ``username`` is empty for an anonymous caller."""

    username: str = ""
    superuser: bool = False
    everywhere: frozenset[str] = NOTHING
    namespaces: Mapping[str, frozenset[str]] = field(default_factory=dict)
    distributions: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def namespaces_with(self, action: str) -> list[str]:
        return [name for name, actions in self.namespaces.items() if action in actions]

    def distributions_with(self, action: str) -> list[str]:
        return [pk for pk, actions in self.distributions.items() if action in actions]

    def key(self) -> tuple:
        """Hashable and equal for equal grants (a key of queries compiled for them)."""
        return (
            self.username,
            self.superuser,
            self.everywhere,
            tuple(sorted(self.namespaces.items())),
            tuple(sorted(self.distributions.items())),
        )

    @classmethod
    def of_key(cls, key: tuple) -> Grants:
        username, superuser, everywhere, namespaces, distributions = key
        return cls(username, superuser, everywhere, dict(namespaces), dict(distributions))


ANONYMOUS = Grants()


def grants_of(user: User) -> Grants:
    """The user's roles on container objects, by object (one query, two with namespace roles)."""
    if not user.is_authenticated:
        return ANONYMOUS
    username = user.get_username()
    if user.is_superuser:
        return Grants(username=username, superuser=True, everywhere=REPOSITORY_ACTIONS)
    perms = Q(
        role__permissions__codename__in=list(_GRANTS),
        role__permissions__content_type__app_label="container",
    )
    columns = ("object_id", "domain_id", "role__permissions__codename")
    rows = (
        UserRole.objects.filter(perms, user=user)
        .values_list(*columns)
        .union(GroupRole.objects.filter(perms, group__user=user).values_list(*columns), all=True)
    )
    everywhere: set[str] = set()
    on_objects: dict[str, set[str]] = {}
    for object_id, domain_id, codename in rows:
        if object_id is None:
            if domain_id is None:
                everywhere |= _GRANTS[codename]
            continue
        on_objects.setdefault(str(object_id), set()).update(_GRANTS[codename])
    namespaces = {}
    if on_objects:
        names = ContainerNamespace.objects.filter(pk__in=list(on_objects)).values_list("pk", "name")
        namespaces = {name: frozenset(on_objects.pop(str(pk))) for pk, name in names}
    return Grants(
        username=username,
        everywhere=frozenset(everywhere),
        namespaces=namespaces,
        distributions={pk: frozenset(actions) for pk, actions in on_objects.items()},
    )


# --- the decision -------------------------------------------------------------------------------


def rights_of_name(
    grants: Grants, name: str, distribution: ContainerDistribution | None
) -> frozenset[str]:
    """What a registry name allows by itself: its namespace, and the distribution at it."""
    if grants.superuser:
        return REPOSITORY_ACTIONS
    actions: set[str] = set()
    if distribution is not None and not distribution.private:
        actions.add(PULL)
    if not grants.username:
        return frozenset(actions)
    namespace = RepositoryName(name).namespace
    if namespace == grants.username:
        return REPOSITORY_ACTIONS
    actions |= grants.everywhere
    actions |= grants.namespaces.get(namespace, NOTHING)
    if distribution is not None:
        actions |= grants.distributions.get(str(distribution.pk), NOTHING)
    return frozenset(actions)


def with_served(queryset: QuerySet) -> QuerySet:
    """Distributions with the pk and name of the repository each serves (or of its version)."""
    return queryset.annotate(
        served_pk=Coalesce("repository_id", "repository_version__repository_id"),
        served_name=Coalesce("repository__name", "repository_version__repository__name"),
    )


def actions_on_names(grants: Grants, names: Iterable[str]) -> dict[str, frozenset[str]]:
    """What a request on each registry name may do (two queries at most, whatever the count).

    A name allows what it allows by itself, cut down to what the repository it serves allows
    when that repository's own name is another one.
    """
    names = list(dict.fromkeys(names))
    if grants.superuser:
        return dict.fromkeys(names, REPOSITORY_ACTIONS)
    distributions = {
        d.base_path: d
        for d in with_served(ContainerDistribution.objects).filter(base_path__in=names)
    }
    aliases = {
        d.served_name
        for d in distributions.values()
        if d.served_pk is not None and d.served_name != d.base_path
    }
    homes = {}
    if aliases:
        homes = {
            d.base_path: d
            for d in with_served(ContainerDistribution.objects).filter(base_path__in=aliases)
        }
    decided = {}
    for name in names:
        distribution = distributions.get(name)
        actions = rights_of_name(grants, name, distribution)
        if distribution is not None and distribution.served_name in aliases:
            home = homes.get(distribution.served_name)
            if home is not None and home.served_pk != distribution.served_pk:
                home = None
            actions &= rights_of_name(grants, distribution.served_name, home)
        decided[name] = actions
    return decided


def allowed_actions(user: User, name: RepositoryName | str) -> frozenset[str]:
    """The repository actions (pull, push, delete) a request by ``user`` on ``name`` may take."""
    return actions_on_names(grants_of(user), [str(name)])[str(name)]


def repository_actions(user: User, repository: ContainerRepository) -> frozenset[str]:
    """What ``user`` may do to ``repository``, from its own name and home distribution, whatever
    other names serve it (REST operations on the repository object)."""
    grants = grants_of(user)
    if grants.superuser:
        return REPOSITORY_ACTIONS
    home = (
        ContainerDistribution.objects.filter(base_path=repository.name)
        .filter(Q(repository_id=repository.pk) | Q(repository_version__repository_id=repository.pk))
        .first()
    )
    return rights_of_name(grants, repository.name, home)


def distribution_actions(user: User, distribution: ContainerDistribution) -> frozenset[str]:
    """What ``user`` may do to the distribution object itself (update, delete it): the rights
    its name carries. What it serves is guarded by ``may_serve``."""
    return rights_of_name(grants_of(user), distribution.base_path, distribution)


def may_serve(user: User, base_path: str, repository: ContainerRepository | None) -> bool:
    """Whether ``user`` may make ``base_path`` serve ``repository`` (create or change a
    distribution): push to the name, and, when it is another repository's, push to that
    repository too, since publishing a repository under a new name is a write to it."""
    grants = grants_of(user)
    distribution = ContainerDistribution.objects.filter(base_path=base_path).first()
    if PUSH not in rights_of_name(grants, base_path, distribution):
        return False
    if repository is None or repository.name == base_path:
        return True
    return PUSH in repository_actions(user, repository)


def grant_scopes(user: User, requested: list[Scope]) -> list[Scope]:
    """Each requested scope cut down to what the user may do (the token server's decision)."""
    grants = grants_of(user)
    names = [scope.name for scope in requested if scope.type == "repository"]
    decided = actions_on_names(grants, names) if names else {}
    granted = []
    for scope in requested:
        if scope.type == "registry":
            if grants.username:
                granted.append(scope)
            continue
        actions = scope.actions & decided[scope.name]
        if actions:
            granted.append(Scope(scope.type, scope.name, actions))
    return granted


# --- the same rules in SQL, for listings and holder searches ----------------------------------


class _SplitPart(Func):
    function = "split_part"
    output_field = TextField()


def _rights_q(grants: Grants, action: str, namespace: str, public: Q | None, home_pk: str) -> Q:
    """Rows whose namespace (field ``namespace``), publicity (``public``) and home distribution
    (field ``home_pk``) give ``action`` to the user: ``rights_of_name`` as a filter."""
    if grants.superuser or (grants.username and action in grants.everywhere):
        return Q()
    allowed = Q(pk__in=[])
    if action == PULL and public is not None:
        allowed |= public
    if not grants.username:
        return allowed
    allowed |= Q(**{namespace: grants.username})
    if namespaces := grants.namespaces_with(action):
        allowed |= Q(**{f"{namespace}__in": namespaces})
    if distributions := grants.distributions_with(action):
        allowed |= Q(**{f"{home_pk}__in": distributions})
    return allowed


def with_access_fields(repositories: QuerySet) -> QuerySet:
    """Container repositories annotated with what ``repository_rights_q`` reads: the namespace
    of their name, their home distribution and whether it is public."""
    homes = ContainerDistribution.objects.filter(base_path=OuterRef("name")).filter(
        Q(repository_id=OuterRef("pk")) | Q(repository_version__repository_id=OuterRef("pk"))
    )
    return repositories.annotate(
        access_namespace=_SplitPart(F("name"), Value("/"), Value(1)),
        access_home=Subquery(homes.values("pk")[:1]),
        access_public=Exists(homes.filter(private=False)),
    )


def repository_rights_q(grants: Grants, action: str) -> Q:
    """Repositories (``with_access_fields``) on which the user may take ``action``."""
    public = Q(access_public=True)
    return _rights_q(grants, action, "access_namespace", public, "access_home")


def repositories_with(grants: Grants, action: str, queryset: QuerySet | None = None) -> QuerySet:
    """Container repositories on which the user may take ``action``."""
    queryset = ContainerRepository.objects.all() if queryset is None else queryset
    if grants.superuser:
        return queryset
    return with_access_fields(queryset).filter(repository_rights_q(grants, action))


def distributions_with(grants: Grants, action: str, queryset: QuerySet | None = None) -> QuerySet:
    """Distributions through whose name the user may take ``action`` (``actions_on_names``)."""
    queryset = ContainerDistribution.objects.all() if queryset is None else queryset
    if grants.superuser:
        return queryset
    annotated = with_served(queryset).annotate(
        access_namespace=_SplitPart(F("base_path"), Value("/"), Value(1))
    )
    by_name = _rights_q(grants, action, "access_namespace", Q(private=False), "pk")
    by_repository = (
        Q(served_pk__isnull=True)
        | Q(served_name=F("base_path"))
        | Q(served_pk__in=repositories_with(grants, action).values("pk"))
    )
    return annotated.filter(by_name & by_repository)


# --- the caller of one registry request -------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """The caller of one request: a user, and the token they presented if any.

    Their grants are read at most once per request.
    """

    user: User
    token: VerifiedToken | None = None

    @cached_property
    def grants(self) -> Grants:
        return grants_of(self.user)

    def actions_on(self, name: RepositoryName | str) -> frozenset[str]:
        """What Pulp's permissions let the caller do through ``name`` (the token aside)."""
        return actions_on_names(self.grants, [str(name)])[str(name)]

    def may(self, name: RepositoryName | str, action: str) -> bool:
        """By their token when they present one (issued from the same decision), else by
        Pulp's permissions."""
        if self.token is not None:
            return self.token.grants(Scope("repository", str(name), frozenset({action})))
        return action in self.actions_on(name)
