"""Registry tokens: issue and verify JWTs (Docker token authentication specification).

Keys are read once per process. A token names its issuer, subject, audience (the registry
service), validity window, a random id, and the granted ``access`` list.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from django.conf import settings

from pulp_container.app.scopes import Scope

ISSUER = "pulp-container"
REFRESH_AUDIENCE_SUFFIX = "#refresh"


class TokenInvalid(Exception):
    """The token cannot be trusted: bad signature, expired, wrong issuer/audience/algorithm."""


class TokenExpired(TokenInvalid):
    """The token was good but its lifetime is over."""


@dataclass(frozen=True)
class VerifiedToken:
    subject: str
    access: tuple[Scope, ...]
    # The fingerprint of the subject's password when the token was issued ("" if anonymous).
    password: str = ""
    # When it stops being valid (seconds since the epoch), and whether that time has passed: an
    # expired token is accepted only to continue an upload session (see token_verification).
    expires_at: int = 0
    expired: bool = False

    def grants(self, required: Scope) -> bool:
        return any(
            granted.type == required.type
            and granted.name == required.name
            and required.actions <= granted.actions
            for granted in self.access
        )


@cache
def _private_key() -> str:
    return Path(settings.PRIVATE_KEY_PATH).read_text()


@cache
def _public_key() -> str:
    return Path(settings.PUBLIC_KEY_PATH).read_text()


def _algorithm() -> str:
    return settings.TOKEN_SIGNATURE_ALGORITHM


def _claims(subject: str, audience: str, lifetime: int) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
    }


def issue_token(
    subject: str, service: str, access: list[Scope], password_mac: str = ""
) -> tuple[str, int, int]:
    """A signed token granting ``access``; returns (token, expires_in, issued_at).

    ``password_mac`` binds the token to the subject's current password: the verifier refuses it
    once the password changed.
    """
    lifetime = int(settings.TOKEN_EXPIRATION_TIME)
    claims = _claims(subject, service, lifetime)
    claims["access"] = [scope.to_claim() for scope in access]
    if password_mac:
        claims["pwd"] = password_mac
    return jwt.encode(claims, _private_key(), algorithm=_algorithm()), lifetime, claims["iat"]


def issue_refresh_token(subject: str, service: str, password_mac: str) -> str:
    """A long-lived token that later token requests exchange without a password check."""
    lifetime = int(settings.TOKEN_REFRESH_EXPIRATION_TIME)
    claims = _claims(subject, service + REFRESH_AUDIENCE_SUFFIX, lifetime)
    claims["pwd"] = password_mac
    return jwt.encode(claims, _private_key(), algorithm=_algorithm())


# Tokens this process verified, until they expire: sha256 of (key, audience, token) -> claims.
# A token is immutable, so its signature, issuer, audience and required claims verify the same
# way every time; only its expiry depends on the time, and is checked at every use. A push sends
# the same token with each of its hundreds of requests, and PyJWT's ES256 check and parsing were
# a third of identifying the caller (py-spy, issue 12). Bounded: emptied when full.
_VERIFIED: dict[bytes, dict[str, Any]] = {}
_VERIFIED_MAX = 4096


def _decode(raw: str, audience: str, verify_exp: bool = True) -> dict[str, Any]:
    if not verify_exp:
        return _verify(raw, audience, verify_exp=False)
    key = hashlib.sha256(f"{_public_key()}\0{audience}\0{raw}".encode()).digest()
    claims = _VERIFIED.get(key)
    if claims is None:
        claims = _verify(raw, audience)
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[key] = claims
    elif claims["exp"] <= time.time() - int(settings.TOKEN_LEEWAY):
        _VERIFIED.pop(key, None)
        raise TokenExpired("Signature has expired")
    return claims


def _verify(raw: str, audience: str, verify_exp: bool = True) -> dict[str, Any]:
    try:
        return jwt.decode(
            raw,
            _public_key(),
            algorithms=[_algorithm()],
            audience=audience,
            issuer=ISSUER,
            leeway=int(settings.TOKEN_LEEWAY),
            options={
                "require": ["exp", "nbf", "iat", "iss", "aud", "sub"],
                "verify_exp": verify_exp,
            },
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenExpired(str(error)) from None
    except jwt.PyJWTError as error:
        raise TokenInvalid(str(error)) from None


def verify_token(raw: str, service: str, allow_expired: bool = False) -> VerifiedToken:
    """The token's claims; with ``allow_expired``, a token past its lifetime (and otherwise
    valid) is returned marked ``expired`` instead of refused."""
    expired = False
    try:
        claims = _decode(raw, service)
    except TokenExpired:
        if not allow_expired:
            raise
        claims, expired = _decode(raw, service, verify_exp=False), True
    access = []
    for entry in claims.get("access") or []:
        if not isinstance(entry, dict):
            continue
        actions = entry.get("actions") or []
        access.append(Scope(str(entry.get("type")), str(entry.get("name")), frozenset(actions)))
    password = claims.get("pwd", "")
    return VerifiedToken(
        subject=claims["sub"],
        access=tuple(access),
        password=str(password),
        expires_at=int(claims["exp"]),
        expired=expired,
    )


def verify_refresh_token(raw: str, service: str) -> tuple[str, str]:
    """The (subject, password fingerprint) of a valid refresh token."""
    claims = _decode(raw, service + REFRESH_AUDIENCE_SUFFIX)
    return claims["sub"], str(claims.get("pwd", ""))
