"""The scope grammar of the Docker token specification, and the access each request needs.

``required_access`` is the one place that maps a registry request to the access it needs: the
token issuer, the token verifier and the mount code all use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pulp_container.app.oci import NAME_PATTERN

PULL, PUSH, DELETE = "pull", "push", "delete"
REPOSITORY_ACTIONS = frozenset({PULL, PUSH, DELETE})
CATALOG = "catalog"

# resourcetype ":" resourcename ":" actions. A name may carry a "host:port/" prefix, so the
# actions are what follows the last colon and the type what precedes the first one.
_SCOPE = re.compile(r"(?P<type>[a-z0-9]+)(?:\([a-z0-9]+\))?:(?P<name>.+):(?P<actions>[a-z*,]*)")
_HOST_PREFIX = re.compile(r"[a-zA-Z0-9.-]+(?::[0-9]+)?/")


class Resource(StrEnum):
    """The kind of thing a request touches, as the router sees it."""

    BASE = "base"
    CATALOG = "catalog"
    REPOSITORY = "repository"
    UPLOAD = "upload"


@dataclass(frozen=True, slots=True)
class Scope:
    """One entry of a token's ``access`` claim, e.g. ``repository:team/app:pull,push``."""

    type: str
    name: str
    actions: frozenset[str]

    @classmethod
    def parse(cls, value: str) -> Scope | None:
        """The scope in ``value``, or None for one we do not understand (dropped alone)."""
        match = _SCOPE.fullmatch(value.strip())
        if not match:
            return None
        kind, name = match.group("type"), match.group("name")
        actions = frozenset(a for a in match.group("actions").split(",") if a)
        if kind == "registry":
            if name != CATALOG:
                return None
            return cls(kind, name, frozenset({"*"}))
        if kind != "repository":
            return None
        if not NAME_PATTERN.fullmatch(name):
            host = _HOST_PREFIX.match(name)
            name = name[host.end() :] if host else name
            if not NAME_PATTERN.fullmatch(name):
                return None
        if "*" in actions:
            actions = REPOSITORY_ACTIONS
        return cls(kind, name, actions & REPOSITORY_ACTIONS)

    @classmethod
    def parse_many(cls, values: list[str]) -> list[Scope]:
        """Scopes from repeated parameters, each possibly space-separated (OAuth2 form)."""
        parsed = (cls.parse(part) for value in values for part in value.split())
        return _merge([scope for scope in parsed if scope is not None])

    def to_claim(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def _merge(scopes: list[Scope]) -> list[Scope]:
    merged: dict[tuple[str, str], frozenset[str]] = {}
    for scope in scopes:
        key = (scope.type, scope.name)
        merged[key] = merged.get(key, frozenset()) | scope.actions
    return [Scope(kind, name, actions) for (kind, name), actions in merged.items()]


def required_access(method: str, resource: Resource, name: str | None) -> list[Scope]:
    """The access a request needs: GET/HEAD pull, DELETE delete, other writes push.

    An upload session (``blobs/uploads/...``) needs push for every method, cancelling included.

    The base endpoint needs only an authenticated caller (or none); the catalog needs
    ``registry:catalog:*``. A mount's ``from`` repository is not required: without pull on it
    the mount quietly becomes an upload (see services.mounts).
    """
    if resource is Resource.BASE:
        return []
    if resource is Resource.CATALOG:
        return [Scope("registry", CATALOG, frozenset({"*"}))]
    if resource is Resource.UPLOAD:
        # An upload session is part of a push: asking its status or cancelling it included.
        action = PUSH
    elif method in ("GET", "HEAD"):
        action = PULL
    elif method == "DELETE":
        action = DELETE
    else:
        action = PUSH
    return [Scope("repository", name or "", frozenset({action}))]


def challenged_access(required: list[Scope], mount: str | None, source: str | None) -> list[Scope]:
    """What a 401 challenge names: the ``required`` access and, for a mount that names its
    source (``?mount=&from=``), pull on the source, as distribution does.

    Clients that ask the token server for exactly the challenged scopes then get a token that
    can mount from the source. The source's pull is named, never required: a mount without it
    still succeeds from any repository the caller may read, or becomes an upload.
    """
    if not mount or not source or not NAME_PATTERN.fullmatch(source):
        return required
    source_pull = Scope("repository", source, frozenset({PULL}))
    return _merge([*required, source_pull])
