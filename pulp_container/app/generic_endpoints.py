"""pulpcore's generic endpoints that cannot ask the access decision, closed around it.

``/pulp/api/v3/repository_versions/`` lists the versions of every repository type, but its view
scopes nothing (it is not a ``NamedModelViewSet``: neither a policy in the database nor
``queryset_scoping`` applies to it) and it has no ``repository`` filter. Any logged-in user would
see the versions and content counts of private container repositories. Its access policy (the
view's ``DEFAULT_ACCESS_POLICY``, the only one it reads) becomes the administrator's alone;
everyone else lists a repository's versions under the repository
(``/pulp/api/v3/repositories/container/container/<id>/versions/``), which asks the decision.
"""

from __future__ import annotations

from django.conf import settings
from django.core.signals import request_started
from django.urls import Resolver404, resolve

_DISPATCH_UID = "pulp_container.generic_endpoints"
ADMIN_ONLY = {"statements": [{"action": "*", "principal": "admin", "effect": "allow"}]}


def close_generic_versions() -> None:
    """Give the generic versions view the administrator-only policy (called once, at start)."""
    try:
        match = resolve(f"{settings.V3_API_ROOT}repository_versions/")
    except Resolver404:
        return
    view_class = getattr(match.func, "cls", None)
    if view_class is not None and not hasattr(view_class, "urlpattern"):
        view_class.DEFAULT_ACCESS_POLICY = ADMIN_ONLY


def close_before_first_request() -> None:
    """Close the generic versions list before the first request of this process is resolved
    (at app start the URL configuration cannot be loaded: it needs every plugin ready)."""
    request_started.connect(_close_once, dispatch_uid=_DISPATCH_UID)


def _close_once(sender, **kwargs) -> None:
    request_started.disconnect(dispatch_uid=_DISPATCH_UID)
    close_generic_versions()
