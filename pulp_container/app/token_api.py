"""``/token/``: the token server of the Docker token authentication specification.

GET with Basic credentials (docker, podman, skopeo) and POST with an OAuth2 form (containerd
tries it first). Granted scopes are what was asked, cut down to what the user may do.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http import JsonResponse
from pulpcore.plugin.util import get_default_domain, set_domain
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.views import APIView

from pulp_container.app.authorization import grant_scopes
from pulp_container.app.credentials import password_fingerprint, verify_credentials
from pulp_container.app.exceptions import (
    RegistryError,
    TokenRequestTooLarge,
    Unauthorized,
    Unsupported,
    render_error,
)
from pulp_container.app.negotiation import HandBuiltResponses
from pulp_container.app.scopes import Scope
from pulp_container.app.token_verification import basic_credentials, service_name
from pulp_container.app.tokens import (
    TokenInvalid,
    issue_refresh_token,
    issue_token,
    verify_refresh_token,
)


class TokenView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    parser_classes = [FormParser, MultiPartParser]
    content_negotiation_class = HandBuiltResponses
    # No Pulp domain in /token/: the default one, from memory (see RegistryView).
    skip_domain_middleware = True

    def initial(self, request, *args, **kwargs):
        set_domain(get_default_domain())
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc):
        if isinstance(exc, RegistryError):
            return render_error(exc)
        return super().handle_exception(exc)

    def get(self, request):
        params = request.query_params
        _within_limits(params.getlist("scope"))
        credentials = basic_credentials(request._request)
        user = _password_user(*credentials) if credentials else None
        offline = params.get("offline_token", "").lower() == "true"
        return _answer(request, user, params.getlist("scope"), offline)

    def post(self, request):
        form = request.data
        scopes = form.getlist("scope") if hasattr(form, "getlist") else [form.get("scope", "")]
        _within_limits(scopes)
        grant_type = form.get("grant_type", "")
        if grant_type == "password":
            user = _password_user(form.get("username", ""), form.get("password", ""))
        elif grant_type == "refresh_token":
            user = _refresh_user(form.get("refresh_token", ""))
        else:
            raise Unsupported(f"grant_type {grant_type!r} is not supported")
        offline = form.get("access_type") == "offline"
        return _answer(request, user, scopes, offline)


def _within_limits(raw_scopes: list[str]) -> None:
    """Refuse, before any work, a request for more scopes than a push or a mount needs."""
    count = sum(len(raw.split()) for raw in raw_scopes)
    if count > settings.TOKEN_MAX_SCOPES:
        raise TokenRequestTooLarge(
            f"a token request may name at most {settings.TOKEN_MAX_SCOPES} scopes ({count} given)"
        )


def _password_user(username: str, password: str):
    user = verify_credentials(username, password)
    if user is None:
        raise Unauthorized("invalid username or password")
    return user


def _refresh_user(raw: str):
    try:
        username, fingerprint = verify_refresh_token(raw, service_name())
    except TokenInvalid as error:
        raise Unauthorized(f"invalid refresh token: {error}") from None
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None or password_fingerprint(user) != fingerprint:
        raise Unauthorized("refresh token is no longer valid")
    return user


def _answer(request, user, raw_scopes: list[str], offline: bool):
    """The token for what was asked, cut down to what the user may do. Its audience is the
    configured service whatever the client named: clients echo the challenge's service."""
    service = service_name()
    requested = Scope.parse_many(raw_scopes)
    subject = user.get_username() if user is not None else ""
    password = password_fingerprint(user) if user is not None else ""
    granted = grant_scopes(user if user is not None else AnonymousUser(), requested)
    token, expires_in, issued_at = issue_token(subject, service, granted, password)
    if len(token) > settings.TOKEN_MAX_BYTES:
        raise TokenRequestTooLarge(
            f"the token would be {len(token)} bytes, over {settings.TOKEN_MAX_BYTES}: ask for "
            "fewer or shorter scopes"
        )
    body = {
        "token": token,
        "access_token": token,
        "expires_in": expires_in,
        "issued_at": datetime.fromtimestamp(issued_at, UTC).isoformat().replace("+00:00", "Z"),
    }
    if offline and user is not None:
        body["refresh_token"] = issue_refresh_token(subject, service, password)
    return JsonResponse(body)
