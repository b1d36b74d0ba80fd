"""The token endpoint is on the hot path of every push: a password is hashed once, not per request.

Clients ask for a token per push and per mount candidate (and, without token auth, send Basic
credentials on every request). A successful check is remembered, bound to the user's current
password hash, so a password change or a deactivation ends it at once. The assertions count
calls of the password hasher, not time.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth import base_user

from pulp_container.app.models import CredentialCheck
from tests.registry.client import SERVICE, RegistryClient, basic_authorization, password_of


@pytest.fixture
def hashed(monkeypatch) -> Callable[[], int]:
    """How many times a password has been checked against its hash so far."""
    calls = []
    real_check = base_user.check_password

    def counting_check(raw_password, encoded, setter=None):
        calls.append(encoded)
        return real_check(raw_password, encoded, setter)

    # AbstractBaseUser.check_password (what authenticate() ends in) looks the function up here.
    monkeypatch.setattr(base_user, "check_password", counting_check)
    return lambda: len(calls)


def token_status(username: str, password: str) -> int:
    client = RegistryClient().client
    response = client.get(
        f"/token/?service={SERVICE}&scope=repository:{username}/app:pull,push",
        headers={"Authorization": basic_authorization(username, password)},
    )
    return response.status_code


def test_repeated_token_requests_hash_the_password_once(alice, hashed):
    statuses = [token_status("alice", password_of("alice")) for _ in range(5)]

    assert statuses == [200] * 5
    assert hashed() == 1


def test_nothing_stored_can_be_read_back_as_the_password(alice, hashed):
    token_status("alice", password_of("alice"))

    check = CredentialCheck.objects.get(user=alice)
    assert password_of("alice") not in check.key
    assert password_of("alice") not in check.password_mac


def test_a_wrong_password_is_checked_every_time_and_never_remembered(alice, hashed):
    statuses = [token_status("alice", "wrong") for _ in range(3)]

    assert statuses == [401] * 3
    assert hashed() == 3
    assert not CredentialCheck.objects.exists()


def test_a_right_password_remembered_does_not_let_a_wrong_one_in(alice, hashed):
    assert token_status("alice", password_of("alice")) == 200

    assert token_status("alice", "wrong") == 401
    assert hashed() == 2


def test_a_password_change_ends_the_remembered_check(alice, hashed):
    assert token_status("alice", password_of("alice")) == 200
    alice.set_password("a new password")
    alice.save()

    assert token_status("alice", password_of("alice")) == 401
    assert token_status("alice", "a new password") == 200
    assert token_status("alice", "a new password") == 200
    # One check for the first login, one for the refused old password, one for the new one.
    assert hashed() == 3


def test_a_deactivation_ends_the_remembered_check(alice, hashed):
    assert token_status("alice", password_of("alice")) == 200
    alice.is_active = False
    alice.save()

    assert token_status("alice", password_of("alice")) == 401


def test_two_users_are_remembered_apart(alice, eve, hashed):
    for _ in range(2):
        assert token_status("alice", password_of("alice")) == 200
        assert token_status("eve", password_of("eve")) == 200

    assert hashed() == 2
    assert token_status("eve", password_of("alice")) == 401


def test_without_tokens_basic_credentials_are_hashed_once_too(settings, alice, hashed):
    settings.TOKEN_AUTH_DISABLED = True
    client = RegistryClient(basic_authorization("alice"))

    statuses = [client.post("/v2/alice/app/blobs/uploads/").status_code for _ in range(4)]

    assert statuses == [202] * 4
    assert hashed() == 1
