"""Access-policy conditions of the REST API: each asks the registry's decision (authorization.py).

A role gives the same rights in both APIs: whoever may pull a repository through ``/v2/`` may see
it here, whoever may push to it may tag, whoever may delete from it may remove images and delete
the repository. Rights on a repository come from its own name, never from another distribution
that serves it. Conditions are named in ``DEFAULT_ACCESS_POLICY`` statements as
``<function>:<action>`` with action one of ``pull``, ``push``, ``delete``; drf-access-policy
calls them as ``function(request, view, action, argument)`` and each returns a bool.
"""

from __future__ import annotations

from pulp_container.app.authorization import (
    allowed_actions,
    distribution_actions,
    may_serve,
    repository_actions,
)
from pulp_container.app.exceptions import NameInvalid
from pulp_container.app.oci import RepositoryName


def has_repository_action(request, view, action: str, registry_action: str) -> bool:
    """The caller may take ``registry_action`` on the repository in the URL."""
    return registry_action in repository_actions(request.user, view.get_object())


def has_parent_repository_action(request, view, action: str, registry_action: str) -> bool:
    """For views nested under a repository (its versions)."""
    repository = view.get_parent_object()
    return registry_action in repository_actions(request.user, repository.cast())


def has_distribution_action(request, view, action: str, registry_action: str) -> bool:
    """The caller may take ``registry_action`` on the name of the distribution in the URL."""
    return registry_action in distribution_actions(request.user, view.get_object())


def may_serve_requested_content(request, view, action: str, registry_action: str) -> bool:
    """For a distribution's create or update: the caller may push to the requested name (what a
    first push there needs) and, when the distribution would serve another name's repository,
    push to that repository as well. Without the second rule a user could publish another's
    repository under a name of theirs and take rights on it there."""
    if request.user.is_superuser:
        return True
    instance = view.get_object() if view.detail else None
    serializer = view.get_serializer(
        instance=instance, data=request.data, partial=action == "partial_update"
    )
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    base_path = data.get("base_path", instance.base_path if instance else None)
    if base_path is None:
        return False
    if "repository" in data or "repository_version" in data:
        repository = data.get("repository")
        if repository is None and data.get("repository_version") is not None:
            repository = data["repository_version"].repository
    else:
        repository = instance.repository if instance else None
    return may_serve(request.user, base_path, repository.cast() if repository else None)


def may_create_repository(request, view, action: str, registry_action: str) -> bool:
    """The caller may ``registry_action`` the requested repository name (a first push there)."""
    try:
        name = RepositoryName.parse(request.data.get("name"))
    except (NameInvalid, TypeError):
        return False
    return registry_action in allowed_actions(request.user, name)


def is_own_namespace(request, view, action: str) -> bool:
    """The namespace to create is named after the caller, who owns it in the registry."""
    username = request.user.get_username()
    return bool(username) and request.data.get("name") == username
