"""In-process registry tier: Django's test client against /v2/ and /token/, on a real database.

Every request to the registry goes through ``RegistryClient``, which checks the one header every
answer carries (``Docker-Distribution-Api-Version``). Callers authenticate the way clients do:
a token minted by the token endpoint with Basic credentials (``registry(user, *scopes)``), Basic
credentials directly (``basic(user)``, for TOKEN_AUTH_DISABLED), or nothing at all.

The people of these stories:

- ``admin``: the superuser.
- ``alice``: owns the namespace ``alice`` (it is named after her, and she holds its owner role).
- ``carol``: collaborator on the namespace ``alice`` (pull and push there).
- ``dave``: consumer on the namespace ``alice`` (pull there).
- ``eve``: unrelated to ``alice``; owns the namespace ``eve``.
- anonymous: ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from pulpcore.plugin.util import assign_role

from pulp_container.app.models import ContainerNamespace
from tests.registry.client import (
    NAMESPACE_ROLES,
    SERVICE,
    RegistryClient,
    basic_authorization,
    error_of,
    password_of,
)

# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def registry_settings(settings, tmp_path):
    """Fast password hashing, and upload and artifact files under this test's directory."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.WORKING_DIRECTORY = str(tmp_path / "working")
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.TOKEN_AUTH_DISABLED = False
    settings.TOKEN_SERVER = None
    return settings


@pytest.fixture
def make_user(db) -> Callable[..., Any]:
    def make(username: str, superuser: bool = False):
        user_model = get_user_model()
        if superuser:
            return user_model.objects.create_superuser(
                username, f"{username}@example.com", password_of(username)
            )
        return user_model.objects.create_user(
            username, f"{username}@example.com", password_of(username)
        )

    return make


@pytest.fixture
def admin(make_user):
    return make_user("admin", superuser=True)


@pytest.fixture
def alice_namespace(db):
    return ContainerNamespace.objects.create(name="alice")


@pytest.fixture
def alice(make_user, alice_namespace):
    user = make_user("alice")
    assign_role(NAMESPACE_ROLES["owner"], user, alice_namespace)
    return user


@pytest.fixture
def carol(make_user, alice_namespace):
    user = make_user("carol")
    assign_role(NAMESPACE_ROLES["collaborator"], user, alice_namespace)
    return user


@pytest.fixture
def dave(make_user, alice_namespace):
    user = make_user("dave")
    assign_role(NAMESPACE_ROLES["consumer"], user, alice_namespace)
    return user


@pytest.fixture
def eve(make_user):
    return make_user("eve")


@pytest.fixture
def people(admin, alice, carol, dave, eve) -> dict[str, Any]:
    """Everyone, by name; ``anonymous`` is None."""
    return {
        "admin": admin,
        "alice": alice,
        "carol": carol,
        "dave": dave,
        "eve": eve,
        "anonymous": None,
    }


def mint_token(user, *scopes: str, service: str = SERVICE) -> str:
    """A real token from the token endpoint, as docker and podman get one (GET, Basic)."""
    query = urlencode([("service", service), *(("scope", scope) for scope in scopes)])
    headers = {}
    if user is not None:
        headers["Authorization"] = basic_authorization(user.get_username())
    response = Client().get(f"/token/?{query}", headers=headers)
    assert response.status_code == 200, error_of(response)
    return response.json()["token"]


@pytest.fixture
def token(db) -> Callable[..., str]:
    """``token(user, *scopes)``: a token minted by the token endpoint."""
    return mint_token


@pytest.fixture
def registry(db) -> Callable[..., RegistryClient]:
    """``registry(user, *scopes)``: a client with a minted Bearer token; no token for None."""

    def make(user, *scopes: str) -> RegistryClient:
        if user is None and not scopes:
            return RegistryClient()
        return RegistryClient(f"Bearer {mint_token(user, *scopes)}")

    return make


@pytest.fixture
def basic(db) -> Callable[..., RegistryClient]:
    """``basic(user)``: a client sending Basic credentials (TOKEN_AUTH_DISABLED deployments)."""

    def make(user) -> RegistryClient:
        if user is None:
            return RegistryClient()
        return RegistryClient(basic_authorization(user.get_username()))

    return make


def push_scopes(name: str) -> tuple[str, ...]:
    return (f"repository:{name}:pull,push,delete",)


@pytest.fixture
def admin_registry(admin, registry) -> Callable[[str], RegistryClient]:
    """``admin_registry(name)``: the administrator's client, with every action on ``name``."""

    def make(*names: str) -> RegistryClient:
        scopes = [scope for name in names for scope in push_scopes(name)]
        return registry(admin, *scopes)

    return make
