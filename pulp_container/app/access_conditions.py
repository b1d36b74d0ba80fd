"""Access-policy conditions of the REST API that ask the registry's decision (authorization.py).

A role gives the same rights in both APIs: whoever may pull a name through ``/v2/`` may see its
repository here, whoever may push to it may tag, whoever may delete from it may remove images
and delete the repository. Conditions are named in ``DEFAULT_ACCESS_POLICY`` statements as
``<function>:<action>`` with action one of ``pull``, ``push``, ``delete``; drf-access-policy
calls them as ``function(request, view, action, argument)`` and each returns a bool.
"""

from __future__ import annotations

from pulp_container.app.services.repository_operations import (
    distribution_actions,
    name_actions,
    repository_actions,
)


def has_repository_action(request, view, action: str, registry_action: str) -> bool:
    """The caller may take ``registry_action`` on the repository in the URL."""
    return registry_action in repository_actions(request.user, view.get_object())


def has_parent_repository_action(request, view, action: str, registry_action: str) -> bool:
    """For views nested under a repository (its versions)."""
    repository = view.get_parent_object()
    return registry_action in repository_actions(request.user, repository.cast())


def has_distribution_action(request, view, action: str, registry_action: str) -> bool:
    """The caller may take ``registry_action`` on the name the distribution in the URL serves."""
    return registry_action in distribution_actions(request.user, view.get_object())


def may_serve_requested_content(request, view, action: str, registry_action: str) -> bool:
    """For a distribution's create or update: the caller may ``registry_action`` the requested
    name (what a first push there needs), and may pull the repository it would serve.

    Without the second rule a user could publish, under a name of theirs, a private repository
    they cannot read.
    """
    if request.user.is_superuser:
        return True
    instance = view.get_object() if view.detail else None
    serializer = view.get_serializer(
        instance=instance, data=request.data, partial=action == "partial_update"
    )
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    base_path = data.get("base_path", instance.base_path if instance else None)
    if base_path is None or registry_action not in name_actions(request.user, base_path):
        return False
    repository = data.get("repository")
    if repository is None and data.get("repository_version") is not None:
        repository = data["repository_version"].repository
    if repository is None:
        return True
    return "pull" in repository_actions(request.user, repository.cast())


def may_create_repository(request, view, action: str, registry_action: str) -> bool:
    """The caller may ``registry_action`` the requested repository name (a first push there)."""
    name = request.data.get("name")
    return isinstance(name, str) and registry_action in name_actions(request.user, name)


def is_own_namespace(request, view, action: str) -> bool:
    """The namespace to create is named after the caller, who owns it in the registry."""
    username = request.user.get_username()
    return bool(username) and request.data.get("name") == username
