"""The catalog and tag lists, paginated with ``n`` and ``last`` (OCI spec, "Listing tags")."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from pulp_container.app.authorization import distributions_with, grants_of
from pulp_container.app.models import Tag
from pulp_container.app.oci import RepositoryName
from pulp_container.app.scopes import PULL
from pulp_container.app.services.repositories import pull_target


def catalog_page(
    user: AbstractBaseUser | AnonymousUser, limit: int | None, last: str | None
) -> tuple[list[str], bool]:
    """Names the user may pull, in lexical order after ``last``; and whether more follow."""
    names = (
        distributions_with(grants_of(user), PULL)
        .order_by("base_path")
        .values_list("base_path", flat=True)
    )
    return _page(names, "base_path", limit, last)


def tags_page(name: RepositoryName, limit: int | None, last: str | None) -> tuple[list[str], bool]:
    """The tags a pull of ``name`` sees, a page of them; NameUnknown (404) for an unknown name."""
    target = pull_target(name)
    if target.version is None:
        return [], False
    names = (
        Tag.objects.filter(pk__in=target.version.content_ids_subquery())
        .order_by("name")
        .values_list("name", flat=True)
    )
    return _page(names, "name", limit, last)


def _page(queryset, field: str, limit: int | None, last: str | None) -> tuple[list[str], bool]:
    if last:
        queryset = queryset.filter(**{f"{field}__gt": last})
    if limit is None:
        return list(queryset), False
    rows = list(queryset[: limit + 1])
    return rows[:limit], len(rows) > limit
