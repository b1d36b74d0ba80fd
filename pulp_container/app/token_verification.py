"""Who is calling the registry, and whether they may do what the request needs.

``identify`` reads the Authorization header (Bearer token, or Basic credentials); ``authorize``
checks the access ``scopes.required_access`` computed. With token auth (the default) clients are
sent to the token server by a Bearer challenge; with ``TOKEN_AUTH_DISABLED`` by a Basic one.
"""

from __future__ import annotations

import base64
import binascii
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest

from pulp_container.app.authorization import Caller
from pulp_container.app.compiled_queries import CompiledQuery
from pulp_container.app.credentials import password_fingerprint, verify_credentials
from pulp_container.app.exceptions import Denied, Unauthorized
from pulp_container.app.models import BlobUpload
from pulp_container.app.oci import RepositoryName
from pulp_container.app.scopes import Scope
from pulp_container.app.tokens import TokenInvalid, verify_token


def token_auth_enabled() -> bool:
    return not settings.TOKEN_AUTH_DISABLED


def service_name() -> str:
    """The audience of our tokens: the configured service, whatever Host a client sends."""
    return settings.TOKEN_SERVICE


def token_realm(request: HttpRequest) -> str:
    return settings.TOKEN_SERVER or f"{request.scheme}://{request.get_host()}/token/"


def challenge(request: HttpRequest, required: list[Scope], error: str = "") -> str:
    if not token_auth_enabled():
        return 'Basic realm="pulp"'
    parts = [f'realm="{token_realm(request)}"', f'service="{service_name()}"']
    if required:
        parts.append(f'scope="{" ".join(str(scope) for scope in required)}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


def basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    """(username, password) from a Basic Authorization header, or None when absent."""
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    if "\x00" in username or "\x00" in password:
        return ("", "")  # no user has such a name, and the database cannot compare it
    return username, password


def identify(
    request: HttpRequest,
    required: list[Scope],
    challenged: list[Scope] | None = None,
    allow_expired: bool = False,
) -> Caller:
    """The caller of ``request``; a bad token or bad credentials are 401.

    ``challenged`` is what a challenge names (``scopes.challenged_access``), ``required`` by
    default. With ``allow_expired`` (upload sessions), a token past its lifetime identifies the
    caller with ``token.expired`` set; ``authorize_session`` then decides whether it may go on.
    """
    named = required if challenged is None else challenged
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer" and token_auth_enabled():
        try:
            token = verify_token(value.strip(), service_name(), allow_expired)
            user = _token_user(token.subject, token.password)
        except TokenInvalid as error:
            raise Unauthorized(str(error), challenge(request, named, "invalid_token")) from None
        return Caller(user, token)
    credentials = basic_credentials(request)
    if credentials is not None:
        user = verify_credentials(*credentials)
        if user is None:
            raise Unauthorized("invalid credentials", challenge(request, named))
        return Caller(user)
    return Caller(AnonymousUser())


# The user a token names, read at every request with a token (compiled once, see the module).
_ACTIVE_USER = CompiledQuery(
    lambda username: get_user_model().objects.filter(username=username, is_active=True)[:1], str
)


def _token_user(username: str, password: str) -> AbstractBaseUser | AnonymousUser:
    """The user a token was issued to, still active and with the password it was issued under:
    deleting, deactivating or re-passwording a user ends their tokens at the next request."""
    if not username:
        return AnonymousUser()
    user = _ACTIVE_USER.first(username)
    if user is None or password_fingerprint(user) != password:
        raise TokenInvalid("the token's user is no longer active or changed password")
    return user


def authorize(
    request: HttpRequest,
    caller: Caller,
    required: list[Scope],
    name: RepositoryName | None,
    challenged: list[Scope] | None = None,
) -> None:
    """Raise Unauthorized (401) or Denied (403) unless ``caller`` has the ``required`` access;
    a 401's challenge names ``challenged`` (default: ``required``)."""
    named = required if challenged is None else challenged
    if caller.token is not None:
        missing = [scope for scope in required if not caller.token.grants(scope)]
        if missing:
            raise Unauthorized(
                "token lacks the required scope", challenge(request, named, "insufficient_scope")
            )
        return
    if token_auth_enabled() and not caller.user.is_authenticated:
        # Clients learn the token realm from this challenge, so /v2/ itself answers 401.
        raise Unauthorized("authentication required", challenge(request, named))
    if not required and not caller.user.is_authenticated:
        raise Unauthorized("authentication required", challenge(request, named))
    for scope in required:
        if scope.type == "registry":
            if not caller.user.is_authenticated:
                raise Unauthorized("authentication required", challenge(request, named))
            continue
        if not scope.actions <= caller.actions_on(scope.name):
            if not caller.user.is_authenticated:
                raise Unauthorized("authentication required", challenge(request, named))
            raise Denied(f"{caller.user.get_username()} may not {','.join(scope.actions)} {name}")


def authorize_session(
    request: HttpRequest, caller: Caller, required: list[Scope], upload: BlobUpload
) -> None:
    """Let an expired token continue the upload session it started, else 401.

    A layer may take longer to send than a token lives. The session, started under a valid
    token, is the authority to continue: the same user (still active, same password, as
    ``identify`` checked), a session created before the token expired, and one the client has
    kept active (its last request within a token lifetime).
    """
    token = caller.token
    if token is None or not token.expired:
        return
    window = int(settings.TOKEN_EXPIRATION_TIME) + int(settings.TOKEN_LEEWAY)
    started_in_time = upload.pulp_created.timestamp() <= token.expires_at
    active = upload.pulp_last_updated.timestamp() >= time.time() - window
    own = caller.user.is_authenticated and upload.started_by == caller.user.get_username()
    if not (own and started_in_time and active):
        raise Unauthorized("token expired", challenge(request, required, "invalid_token"))
    # Past its token, the session goes on by what the user may do now, not by old scopes.
    for scope in required:
        if scope.type == "repository" and not scope.actions <= caller.actions_on(scope.name):
            raise Unauthorized("token expired", challenge(request, required, "invalid_token"))
