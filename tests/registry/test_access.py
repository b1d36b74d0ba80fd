"""Who may do what: users x repositories x actions, through tokens and through Basic auth.

The repositories: ``alice/private`` (private, in alice's namespace), ``alice/public`` (public, in
alice's namespace) and ``eve/private`` (private, in eve's). The token server grants exactly the
actions of this table; the registry then answers 2xx for them, 401 ``insufficient_scope`` for
the rest. With TOKEN_AUTH_DISABLED, Basic credentials get 2xx, 403 DENIED (known user) or 401
(anonymous). A refused request writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from pulp_container.app.models import (
    BlobUpload,
    ContainerDistribution,
    ContainerNamespace,
    ContainerRepository,
)
from pulp_container.app.tokens import verify_token
from tests.registry.client import (
    SERVICE,
    RegistryClient,
    basic_authorization,
    error_codes,
    error_of,
    make_distribution,
)

REPOSITORIES = ["alice/private", "alice/public", "eve/private"]
ALL = {"pull", "push", "delete"}

# who -> repository -> the actions they may take there.
ALLOWED = {
    "admin": dict.fromkeys(REPOSITORIES, ALL),
    "alice": {"alice/private": ALL, "alice/public": ALL, "eve/private": set()},
    "carol": {
        "alice/private": {"pull", "push"},
        "alice/public": {"pull", "push"},
        "eve/private": set(),
    },
    "dave": {"alice/private": {"pull"}, "alice/public": {"pull"}, "eve/private": set()},
    "eve": {"alice/private": set(), "alice/public": {"pull"}, "eve/private": ALL},
    "anonymous": {"alice/private": set(), "alice/public": {"pull"}, "eve/private": set()},
}
MAY_LIST_CATALOG = {"admin", "alice", "carol", "dave", "eve"}

TABLE = [
    (who, name, action, action in ALLOWED[who][name])
    for who in ALLOWED
    for name in REPOSITORIES
    for action in ("pull", "push", "delete")
]
SUCCESS = {"pull": 200, "push": 202, "delete": 202, "catalog": 200}


@pytest.fixture(scope="module")
def shared_repositories(shared_people) -> None:
    for name in REPOSITORIES:
        make_distribution(name, private=name.endswith("private"))


@pytest.fixture
def repositories(shared_repositories, everyone) -> dict:
    """The module's people and repositories, inside this test's own savepoint."""
    return everyone


@pytest.fixture
def upload_ids(repositories, registry) -> Callable[[str], str]:
    """``upload_ids(name)``: the digest of a blob the admin has just pushed there."""

    def push(name: str) -> str:
        client = registry(repositories["admin"], f"repository:{name}:pull,push")
        return client.push_blob(name, os.urandom(64))

    return push


def attempt(client: RegistryClient, action: str, name: str, upload_id: str | None):
    if action == "pull":
        return client.get(f"/v2/{name}/tags/list")
    if action == "push":
        return client.post(f"/v2/{name}/blobs/uploads/")
    if action == "delete":
        return client.delete(f"/v2/{name}/blobs/{upload_id}")
    return client.get("/v2/_catalog")


def uploads_of(name: str) -> int:
    return BlobUpload.objects.filter(repository__name=name).count()


def scope_for(action: str, name: str) -> str:
    return "registry:catalog:*" if action == "catalog" else f"repository:{name}:{action}"


@pytest.mark.parametrize("who, name, action, allowed", TABLE)
def test_the_token_server_grants_what_the_user_may_do(
    repositories, registry, token, upload_ids, who, name, action, allowed
):
    raw = token(repositories[who], f"repository:{name}:pull,push,delete")
    granted = {a for scope in verify_token(raw, SERVICE).access for a in scope.actions}
    assert granted == ALLOWED[who][name]
    upload_id = upload_ids(name) if action == "delete" else None
    uploads_before = uploads_of(name)

    response = attempt(
        registry(repositories[who], scope_for(action, name)), action, name, upload_id
    )

    if allowed:
        assert response.status_code == SUCCESS[action], error_of(response)
    else:
        assert response.status_code == 401, error_of(response)
        assert error_codes(response) == ["UNAUTHORIZED"]
        assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
        assert uploads_of(name) == uploads_before


@pytest.mark.parametrize("who, name, action, allowed", TABLE)
def test_basic_auth_without_tokens_allows_what_the_user_may_do(
    settings, repositories, basic, upload_ids, who, name, action, allowed
):
    upload_id = upload_ids(name) if action == "delete" else None
    settings.TOKEN_AUTH_DISABLED = True
    uploads_before = uploads_of(name)

    response = attempt(basic(repositories[who]), action, name, upload_id)

    if allowed:
        assert response.status_code == SUCCESS[action], error_of(response)
    elif who == "anonymous":
        assert response.status_code == 401, error_of(response)
        assert response["WWW-Authenticate"] == 'Basic realm="pulp"'
        assert error_codes(response) == ["UNAUTHORIZED"]
    else:
        assert response.status_code == 403, error_of(response)
        assert error_codes(response) == ["DENIED"]
    if not allowed:
        assert uploads_of(name) == uploads_before


@pytest.mark.parametrize("who", list(ALLOWED))
def test_the_catalog_needs_a_known_user(repositories, registry, token, who):
    raw = token(repositories[who], "registry:catalog:*")
    granted = [str(scope) for scope in verify_token(raw, SERVICE).access]

    response = RegistryClient(f"Bearer {raw}").get("/v2/_catalog")

    if who in MAY_LIST_CATALOG:
        assert granted == ["registry:catalog:*"]
        assert response.status_code == 200
    else:
        assert granted == []
        assert response.status_code == 401
        assert 'error="insufficient_scope"' in response["WWW-Authenticate"]


@pytest.mark.parametrize("who", list(ALLOWED))
def test_the_catalog_with_basic_auth_needs_a_known_user(settings, repositories, basic, who):
    settings.TOKEN_AUTH_DISABLED = True

    response = basic(repositories[who]).get("/v2/_catalog")

    assert response.status_code == (200 if who in MAY_LIST_CATALOG else 401)


def test_without_tokens_the_version_check_needs_a_known_user(settings, repositories, basic):
    settings.TOKEN_AUTH_DISABLED = True

    assert basic(repositories["eve"]).get("/v2/").status_code == 200
    anonymous = basic(None).get("/v2/")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == 'Basic realm="pulp"'


def test_without_tokens_wrong_credentials_are_401(settings, repositories):
    settings.TOKEN_AUTH_DISABLED = True
    response = RegistryClient(basic_authorization("alice", "wrong")).get(
        "/v2/alice/public/tags/list"
    )

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="pulp"'


@pytest.mark.parametrize(
    "who, name, created",
    [
        ("admin", "anywhere/new", True),
        ("alice", "alice/new", True),
        ("carol", "alice/new", True),
        ("dave", "alice/new", False),
        ("eve", "alice/new", False),
        ("eve", "eve/new", True),
        ("eve", "frank/new", False),
        ("anonymous", "anonymous/new", False),
    ],
)
def test_a_first_push_creates_the_repository_only_for_who_may_push_there(
    repositories, registry, who, name, created
):
    client = registry(repositories[who], f"repository:{name}:pull,push")
    namespaces_before = set(ContainerNamespace.objects.values_list("name", flat=True))

    response = client.post(f"/v2/{name}/blobs/uploads/")

    assert response.status_code == (202 if created else 401), error_of(response)
    assert ContainerRepository.objects.filter(name=name).exists() is created
    assert ContainerDistribution.objects.filter(base_path=name).exists() is created
    if not created:
        assert set(ContainerNamespace.objects.values_list("name", flat=True)) == namespaces_before
        assert not BlobUpload.objects.exists()


def test_a_user_pushing_into_their_own_new_namespace_owns_it(repositories, registry):
    client = registry(repositories["eve"], "repository:eve/first:pull,push")

    client.push_image("eve/first")

    namespace = ContainerNamespace.objects.get(name="eve")
    assert namespace.distributions.filter(base_path="eve/first").exists()
