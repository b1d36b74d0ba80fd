"""Token authentication (Docker token authentication specification), the default mode.

Clients are sent to the token server by a Bearer challenge, get a signed token there (GET with
Basic credentials, or POST with an OAuth2 form), and present it. Tokens that cannot be trusted
are refused with ``error="invalid_token"``; trusted tokens that lack the access a request needs
with ``error="insufficient_scope"``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.contrib.auth import get_user_model

from pulp_container.app.credentials import password_fingerprint
from pulp_container.app.models import BlobUpload
from pulp_container.app.tokens import verify_token
from tests.registry.client import (
    SERVICE,
    RegistryClient,
    basic_authorization,
    error_codes,
    error_of,
    make_distribution,
    mint_token,
    password_of,
)

pytestmark = pytest.mark.django_db


def decode(raw: str, audience: str = SERVICE) -> dict[str, Any]:
    """The claims of a token our server issued, checked with its public key."""
    public_key = Path(settings.PUBLIC_KEY_PATH).read_text()
    return jwt.decode(
        raw, public_key, algorithms=[settings.TOKEN_SIGNATURE_ALGORITHM], audience=audience
    )


def access_of(raw: str) -> dict[str, set[str]]:
    return {
        f"{entry['type']}:{entry['name']}": set(entry["actions"]) for entry in decode(raw)["access"]
    }


def token_request(query: list[tuple[str, str]], authorization: str | None = None):
    headers = {"Authorization": authorization} if authorization else {}
    return RegistryClient().client.get(f"/token/?{urlencode(query)}", headers=headers)


def token_form(form: dict[str, str]):
    return RegistryClient().client.post("/token/", form)


@pytest.fixture
def repositories(db):
    make_distribution("alice/app", private=True)
    make_distribution("alice/public", private=False)


# --- the challenge -------------------------------------------------------------------------


def test_the_version_check_without_a_token_is_a_bearer_challenge():
    response = RegistryClient().get("/v2/")

    assert response.status_code == 401
    assert error_codes(response) == ["UNAUTHORIZED"]
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="http://testserver/token/",service="{SERVICE}"'
    )


def test_the_challenge_names_the_configured_token_server(settings):
    settings.TOKEN_SERVER = "https://auth.example.com/token/"

    response = RegistryClient().get("/v2/")

    assert response["WWW-Authenticate"] == (
        f'Bearer realm="https://auth.example.com/token/",service="{SERVICE}"'
    )


def test_a_request_without_a_token_is_challenged_with_the_scope_it_needs(repositories):
    response = RegistryClient().post("/v2/alice/app/blobs/uploads/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="http://testserver/token/",service="{SERVICE}",'
        'scope="repository:alice/app:push"'
    )
    assert not BlobUpload.objects.exists()


def test_a_mount_naming_its_source_is_challenged_with_pull_on_the_source_too(repositories):
    """As distribution does: a client that asks for exactly the challenged scopes gets a token
    that may read the source; the source's pull is named, not required (see test_mounts)."""
    digest = "sha256:" + "0" * 64
    response = RegistryClient().post(
        f"/v2/alice/app/blobs/uploads/?mount={digest}&from=alice/public"
    )

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="http://testserver/token/",service="{SERVICE}",'
        'scope="repository:alice/app:push repository:alice/public:pull"'
    )


@pytest.mark.parametrize("who", ["admin", "eve", "anonymous"])
def test_the_version_check_with_any_valid_token_is_200(people, registry, who):
    response = registry(people[who], "repository:nothing:pull").get("/v2/")

    assert response.status_code == 200
    assert response.json() == {}


# --- the token endpoint --------------------------------------------------------------------


def test_a_get_with_repeated_scopes_grants_them_merged(alice, repositories):
    response = token_request(
        [
            ("service", SERVICE),
            ("scope", "repository:alice/app:pull"),
            ("scope", "repository:alice/app:push"),
            ("scope", "repository:alice/public:pull"),
        ],
        basic_authorization("alice"),
    )

    assert response.status_code == 200
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == settings.TOKEN_EXPIRATION_TIME
    assert body["issued_at"].endswith("Z")
    assert "refresh_token" not in body
    assert access_of(body["token"]) == {
        "repository:alice/app": {"pull", "push"},
        "repository:alice/public": {"pull"},
    }


def test_a_token_carries_every_claim_of_the_spec(alice, repositories):
    before = int(time.time())
    raw = token_request(
        [("service", SERVICE), ("scope", "repository:alice/app:pull")],
        basic_authorization("alice"),
    ).json()["token"]

    claims = decode(raw)

    assert jwt.get_unverified_header(raw)["alg"] == settings.TOKEN_SIGNATURE_ALGORITHM
    assert claims["iss"] == "pulp-container"
    assert claims["sub"] == "alice"
    assert claims["aud"] == SERVICE
    assert before <= claims["iat"] <= int(time.time())
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] == claims["iat"] + settings.TOKEN_EXPIRATION_TIME
    assert len(claims["jti"]) >= 16
    assert claims["access"] == [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]


def test_every_token_has_its_own_id(alice):
    query = [("service", SERVICE), ("scope", "repository:alice/app:pull")]
    ids = {
        decode(token_request(query, basic_authorization("alice")).json()["token"])["jti"]
        for _ in range(3)
    }

    assert len(ids) == 3


def test_the_audience_is_the_configured_service_whatever_the_client_names(alice):
    raw = token_request([("service", "registry.example.com")], basic_authorization("alice")).json()[
        "token"
    ]

    assert decode(raw)["aud"] == SERVICE == settings.TOKEN_SERVICE
    assert RegistryClient(f"Bearer {raw}").get("/v2/").status_code == 200


def test_a_token_for_another_service_is_refused_whatever_host_the_client_sends(alice):
    """Signed with our key but for another audience (a sibling service sharing keys, say)."""
    claims = {
        "iss": "pulp-container",
        "sub": "alice",
        "aud": "registry.example.com",
        "iat": int(time.time()),
        "nbf": int(time.time()),
        "exp": int(time.time()) + 60,
        "access": [],
    }
    private_key = Path(settings.PRIVATE_KEY_PATH).read_text()
    raw = jwt.encode(claims, private_key, algorithm=settings.TOKEN_SIGNATURE_ALGORITHM)

    response = RegistryClient(f"Bearer {raw}").get("/v2/", HTTP_HOST="registry.example.com")

    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_an_anonymous_token_grants_only_pulls_of_public_repositories(repositories):
    response = token_request(
        [
            ("service", SERVICE),
            ("scope", "repository:alice/app:pull,push"),
            ("scope", "repository:alice/public:pull,push"),
            ("scope", "registry:catalog:*"),
        ]
    )

    assert response.status_code == 200
    raw = response.json()["token"]
    assert decode(raw)["sub"] == ""
    assert access_of(raw) == {"repository:alice/public": {"pull"}}


@pytest.mark.parametrize(
    "authorization",
    [
        basic_authorization("alice", "wrong"),
        basic_authorization("nobody"),
        "Basic !!!not-base64",
    ],
)
def test_wrong_credentials_get_no_token(alice, authorization):
    response = token_request([("service", SERVICE)], authorization)

    assert response.status_code == 401
    assert "token" not in json.loads(response.content)


def test_an_inactive_user_gets_no_token(alice):
    alice.is_active = False
    alice.save()

    response = token_request([("service", SERVICE)], basic_authorization("alice"))

    assert response.status_code == 401


def test_the_oauth2_password_grant_issues_tokens_and_a_refresh_token(alice, repositories):
    response = token_form(
        {
            "grant_type": "password",
            "username": "alice",
            "password": password_of("alice"),
            "service": SERVICE,
            "scope": "repository:alice/app:pull repository:alice/public:pull,push",
            "access_type": "offline",
            "client_id": "containerd",
        }
    )

    assert response.status_code == 200
    body = response.json()
    assert access_of(body["access_token"]) == {
        "repository:alice/app": {"pull"},
        "repository:alice/public": {"pull", "push"},
    }
    assert body["refresh_token"]


def test_a_refresh_token_is_exchanged_for_a_new_token_without_a_password(alice, repositories):
    refresh = token_request(
        [("service", SERVICE), ("offline_token", "true")], basic_authorization("alice")
    ).json()["refresh_token"]

    response = token_form(
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": SERVICE,
            "scope": "repository:alice/app:push",
        }
    )

    assert response.status_code == 200
    assert decode(response.json()["access_token"])["sub"] == "alice"
    assert access_of(response.json()["access_token"]) == {"repository:alice/app": {"push"}}


def test_a_refresh_token_dies_with_a_password_change(alice):
    refresh = token_form(
        {
            "grant_type": "password",
            "username": "alice",
            "password": password_of("alice"),
            "service": SERVICE,
            "access_type": "offline",
        }
    ).json()["refresh_token"]
    alice.set_password("a new password")
    alice.save()

    response = token_form(
        {"grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE}
    )

    assert response.status_code == 401


def test_a_refresh_token_is_not_an_access_token(alice):
    refresh = token_request(
        [("service", SERVICE), ("offline_token", "true")], basic_authorization("alice")
    ).json()["refresh_token"]

    response = RegistryClient(f"Bearer {refresh}").get("/v2/")

    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


@pytest.mark.parametrize("grant_type", ["client_credentials", ""])
def test_an_unsupported_grant_type_gets_no_token(alice, grant_type):
    response = token_form({"grant_type": grant_type, "username": "alice"})

    assert 400 <= response.status_code < 500
    assert "token" not in json.loads(response.content)


# --- refusing tokens that cannot be trusted ------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _password_of_admin() -> str | None:
    admin = get_user_model().objects.filter(username="admin").first()
    return password_fingerprint(admin) if admin is not None else None


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "pulp-container",
        "sub": "admin",
        "aud": SERVICE,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "forged",
        "access": [{"type": "repository", "name": "admin/app", "actions": ["pull", "push"]}],
        "pwd": _password_of_admin(),
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _signed(claims: dict[str, Any], key: Any = None) -> str:
    private_key = key if key is not None else Path(settings.PRIVATE_KEY_PATH).read_text()
    return jwt.encode(claims, private_key, algorithm=settings.TOKEN_SIGNATURE_ALGORITHM)


def _another_private_key() -> Any:
    algorithm = settings.TOKEN_SIGNATURE_ALGORITHM
    if algorithm.startswith("ES"):
        curves = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
        return ec.generate_private_key(curves[algorithm])
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _unsigned(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _hs256_with_the_public_key(claims: dict[str, Any]) -> str:
    """The algorithm-confusion attack: an HMAC keyed with the (public) verification key."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    public_key = Path(settings.PUBLIC_KEY_PATH).read_bytes()
    signature = hmac.new(public_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


FORGERIES = {
    "expired": lambda: _signed(
        _claims(
            iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200, exp=int(time.time()) - 3600
        )
    ),
    "not-yet-valid": lambda: _signed(
        _claims(nbf=int(time.time()) + 3600, exp=int(time.time()) + 7200)
    ),
    "wrong-issuer": lambda: _signed(_claims(iss="someone-else")),
    "wrong-audience": lambda: _signed(_claims(aud="registry.example.com")),
    "no-subject": lambda: _signed(_claims(sub=None)),
    "no-expiry": lambda: _signed(_claims(exp=None)),
    "alg-none": lambda: _unsigned(_claims()),
    "hs256-with-public-key": lambda: _hs256_with_the_public_key(_claims()),
    "signed-by-another-key": lambda: _signed(_claims(), _another_private_key()),
    "garbage": lambda: "not.a.token",
    "empty": lambda: "",
}


@pytest.fixture
def admin_app(admin):
    make_distribution("admin/app", private=True)


def test_a_token_forged_like_ours_is_taken(admin_app):
    """The forgeries below differ from this one by one thing each."""
    response = RegistryClient(f"Bearer {_signed(_claims())}").get("/v2/admin/app/tags/list")

    assert response.status_code == 200


@pytest.mark.parametrize("forgery", list(FORGERIES))
@pytest.mark.parametrize(
    "method, path",
    [("GET", "/v2/"), ("GET", "/v2/admin/app/tags/list"), ("POST", "/v2/admin/app/blobs/uploads/")],
)
def test_an_untrustworthy_token_is_401_invalid_token(admin_app, forgery, method, path):
    uploads_before = BlobUpload.objects.count()

    response = RegistryClient(f"Bearer {FORGERIES[forgery]()}").request(method, path)

    assert response.status_code == 401
    assert error_codes(response) == ["UNAUTHORIZED"]
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="http://testserver/token/"')
    assert 'error="invalid_token"' in challenge
    assert BlobUpload.objects.count() == uploads_before


@pytest.mark.parametrize(
    "granted, method, path, needed",
    [
        (
            "repository:admin/app:pull",
            "POST",
            "/v2/admin/app/blobs/uploads/",
            "repository:admin/app:push",
        ),
        (
            "repository:admin/app:push",
            "GET",
            "/v2/admin/app/tags/list",
            "repository:admin/app:pull",
        ),
        (
            "repository:admin/other:pull",
            "GET",
            "/v2/admin/app/tags/list",
            "repository:admin/app:pull",
        ),
        ("repository:admin/app:pull", "GET", "/v2/_catalog", "registry:catalog:*"),
        (
            "repository:admin/app:pull,push",
            "DELETE",
            f"/v2/admin/app/blobs/sha256:{'0' * 64}",
            "repository:admin/app:delete",
        ),
        (
            "repository:admin/app:pull",
            "DELETE",
            "/v2/admin/app/blobs/uploads/00000000-0000-0000-0000-000000000000",
            "repository:admin/app:push",
        ),
    ],
)
def test_a_valid_token_without_the_needed_scope_is_401_insufficient_scope(
    admin, registry, admin_app, granted, method, path, needed
):
    uploads_before = BlobUpload.objects.count()

    response = registry(admin, granted).request(method, path)

    assert response.status_code == 401
    assert error_codes(response) == ["UNAUTHORIZED"]
    challenge = response["WWW-Authenticate"]
    assert f'scope="{needed}"' in challenge
    assert 'error="insufficient_scope"' in challenge
    assert BlobUpload.objects.count() == uploads_before


def test_a_token_grants_only_what_it_names(admin, token):
    raw = token(admin, "repository:admin/app:pull")

    verified = verify_token(raw, SERVICE)

    assert verified.subject == "admin"
    assert [str(scope) for scope in verified.access] == ["repository:admin/app:pull"]


# --- revocation: a token dies with its user's password, activity or existence ---------------


def _change_password(user) -> None:
    user.set_password("a new password")
    user.save()


def _deactivate(user) -> None:
    user.is_active = False
    user.save()


def _delete(user) -> None:
    user.delete()


@pytest.mark.parametrize("change", [_change_password, _deactivate, _delete])
def test_a_users_tokens_stop_working_at_the_next_request_after(alice, change):
    make_distribution("alice/app", private=True)
    client = RegistryClient(f"Bearer {mint_token(alice, 'repository:alice/app:pull,push')}")
    assert client.get("/v2/alice/app/tags/list").status_code == 200

    change(alice)

    for response in (client.get("/v2/alice/app/tags/list"), client.get("/v2/")):
        assert response.status_code == 401
        assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert client.post("/v2/alice/app/blobs/uploads/").status_code == 401


def test_a_token_issued_before_the_password_claim_existed_is_refused(alice):
    claims = _claims(sub="alice", pwd=None)
    claims["access"] = [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]

    response = RegistryClient(f"Bearer {_signed(claims)}").get("/v2/")

    assert response.status_code == 401


# --- limits: a token request costs bounded work ---------------------------------------------


def test_a_token_request_with_too_many_scopes_is_refused_before_any_work(
    alice, django_assert_max_num_queries
):
    limit = settings.TOKEN_MAX_SCOPES
    scopes = [("scope", f"repository:alice/app{i}:pull") for i in range(limit)]
    assert (
        token_request([("service", SERVICE), *scopes], basic_authorization("alice")).status_code
        == 200
    )

    # One query is the request's own (pulpcore's middleware); nothing is read per scope.
    with django_assert_max_num_queries(1):
        response = token_request(
            [("service", SERVICE), *scopes, ("scope", "repository:alice/one-more:pull")],
            basic_authorization("alice"),
        )

    assert response.status_code == 400
    assert error_codes(response) == ["UNSUPPORTED"]
    assert f"at most {limit} scopes" in str(error_of(response))


def test_space_separated_scopes_count_one_by_one(alice):
    many = " ".join(f"repository:alice/app{i}:pull" for i in range(settings.TOKEN_MAX_SCOPES + 1))
    form = {"grant_type": "password", "username": "alice", "password": password_of("alice")}

    response = token_form({**form, "scope": many})

    assert response.status_code == 400
    assert error_codes(response) == ["UNSUPPORTED"]


def test_a_token_larger_than_the_limit_is_refused(alice, settings):
    settings.TOKEN_MAX_BYTES = 1000
    scopes = [("scope", f"repository:alice/{'x' * 100}{i}:pull,push") for i in range(8)]

    response = token_request([("service", SERVICE), *scopes], basic_authorization("alice"))

    assert response.status_code == 400
    assert "bytes" in str(error_of(response))


def test_the_work_of_a_token_request_does_not_grow_with_its_scopes(
    alice, django_assert_max_num_queries
):
    """The rights on every named repository are read together: a bounded number of queries."""
    few = [("scope", "repository:alice/a:pull")]
    many = [("scope", f"repository:alice/n{i}:pull,push") for i in range(30)]
    authorization = basic_authorization("alice")
    token_request([("service", SERVICE), *few], authorization)  # the password check, cached

    with django_assert_max_num_queries(6):
        assert token_request([("service", SERVICE), *few], authorization).status_code == 200
    with django_assert_max_num_queries(6):
        assert token_request([("service", SERVICE), *many], authorization).status_code == 200
