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

import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import override_settings
from pulpcore.plugin.util import assign_role, set_current_user

from pulp_container.app.models import ContainerNamespace
from tests.registry.client import (
    NAMESPACE_ROLES,
    RegistryClient,
    basic_authorization,
    mint_token,
    password_of,
    push_scopes,
)

# --- fixtures --------------------------------------------------------------------------------


FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# who -> their role on the namespace "alice".
ALICE_NAMESPACE_ROLES = {"alice": "owner", "carol": "collaborator", "dave": "consumer"}


@pytest.fixture(autouse=True)
def constraints_checked_per_statement(request):
    """Check deferred constraints at each statement, as the commit of a request would.

    Under ``db`` a test is one transaction, so PostgreSQL would check deferred constraints (such
    as pulpcore's trigger that keeps distribution base paths prefix-free) only at teardown, after
    the request has answered; a server commits, and learns of the violation, within the request.
    """
    if "db" not in request.fixturenames:
        return
    request.getfixturevalue("db")
    if not connection.in_atomic_block:  # transactional tests commit for real
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.fixture(autouse=True)
def registry_settings(settings, tmp_path):
    """Fast password hashing, upload files under this test's directory, the plugin's defaults."""
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS
    settings.WORKING_DIRECTORY = str(tmp_path / "working")
    settings.TOKEN_AUTH_DISABLED = False
    settings.TOKEN_SERVER = None
    settings.CONTAINER_LINK_BLOBS_ON_HEAD = True
    return settings


def create_user(username: str, superuser: bool = False):
    user_model = get_user_model()
    create = user_model.objects.create_superuser if superuser else user_model.objects.create_user
    return create(username, f"{username}@example.com", password_of(username))


def create_member(username: str, namespace: ContainerNamespace):
    user = create_user(username)
    assign_role(NAMESPACE_ROLES[ALICE_NAMESPACE_ROLES[username]], user, namespace)
    return user


def create_people() -> dict[str, Any]:
    """Everyone of these stories, by name; ``anonymous`` is None."""
    namespace = ContainerNamespace.objects.create(name="alice")
    return {
        "admin": create_user("admin", superuser=True),
        **{username: create_member(username, namespace) for username in ALICE_NAMESPACE_ROLES},
        "eve": create_user("eve"),
        "anonymous": None,
    }


@pytest.fixture
def make_user(db) -> Callable[..., Any]:
    return create_user


@pytest.fixture
def admin(db):
    return create_user("admin", superuser=True)


@pytest.fixture
def alice_namespace(db):
    return ContainerNamespace.objects.create(name="alice")


@pytest.fixture
def alice(alice_namespace):
    return create_member("alice", alice_namespace)


@pytest.fixture
def carol(alice_namespace):
    return create_member("carol", alice_namespace)


@pytest.fixture
def dave(alice_namespace):
    return create_member("dave", alice_namespace)


@pytest.fixture
def eve(db):
    return create_user("eve")


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


# --- data shared by the tests of one module ----------------------------------------------------


@pytest.fixture(scope="module")
def module_db(django_db_setup, django_db_blocker, tmp_path_factory):
    """One transaction around a module, rolled back after it: Django's ``setUpTestData``.

    Module-scoped fixtures that use it make their data once; each test still runs in its own
    savepoint (``db``), so what a test writes is gone before the next one starts.
    """
    working = tmp_path_factory.mktemp("module-working")
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_PASSWORD_HASHERS, WORKING_DIRECTORY=str(working)),
        transaction.atomic(),
    ):
        yield
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def shared_people(module_db) -> dict[str, Any]:
    """``people``, made once for the module."""
    return create_people()


@pytest.fixture
def everyone(shared_people, db) -> dict[str, Any]:
    """The module's ``people``, inside this test's own savepoint."""
    return shared_people


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


@pytest.fixture
def admin_registry(admin, registry) -> Callable[[str], RegistryClient]:
    """``admin_registry(name)``: the administrator's client, with every action on ``name``."""

    def make(*names: str) -> RegistryClient:
        scopes = [scope for name in names for scope in push_scopes(name)]
        return registry(admin, *scopes)

    return make


@pytest.fixture
def api_process(db):
    """What an API process has: an app status (pulpcore's immediate tasks need it), and no
    current user outside a request (pulpcore's middleware sets one per request, and creation
    hooks give roles to it: one left over from an earlier request would get them).

    (AppStatus is not in pulpcore.plugin, hence the lookup by name.)
    """
    set_current_user(None)
    app_status = apps.get_model("core", "AppStatus")
    app_status.objects.create("api", name=f"test-api-{uuid.uuid4()}")
    yield
    app_status.objects._current_app_status = None
    set_current_user(None)


def pytest_terminal_summary(terminalreporter) -> None:
    """The property tier's request count, at the end of the run (issue 13 asks for it)."""
    property_tier = sys.modules.get("tests.registry.test_property")
    if property_tier is not None and property_tier.tried["requests"]:
        terminalreporter.write_line(
            f"property tier: {property_tier.tried['requests']} generated requests, none 5xx"
        )
