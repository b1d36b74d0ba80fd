"""Password checks that do not cost a slow hash on every request.

Django's password hasher is deliberately slow (about half a second). Registry clients send
credentials on every token request (one per push and per mount candidate) or, with token auth
disabled, on every request. A successful check is remembered for a short while in the database
(shared by every process), keyed by an HMAC of the credentials under the server's secret, and
bound to the user's current password hash: a password change or deactivation ends it at once.
Nothing stored can be turned back into a password without the secret key.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from pulp_container.app.models import CredentialCheck

CHECK_LIFETIME = timedelta(minutes=5)


def _mac(*parts: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


def verify_credentials(username: str, password: str) -> AbstractBaseUser | None:
    """The active user with these credentials, or None."""
    key = _mac("credentials", username, password)
    now = timezone.now()
    check = CredentialCheck.objects.select_related("user").filter(key=key, expires__gt=now).first()
    if check is not None:
        user = check.user
        if user.is_active and check.password_mac == password_fingerprint(user):
            return user
    user = authenticate(username=username, password=password)
    if user is None or not user.is_active:
        return None
    CredentialCheck.objects.update_or_create(
        key=key,
        defaults={
            "user": user,
            "password_mac": password_fingerprint(user),
            "expires": now + CHECK_LIFETIME,
        },
    )
    CredentialCheck.objects.filter(expires__lt=now).delete()
    return user


def password_fingerprint(user: AbstractBaseUser) -> str:
    """Changes whenever the user's password does; binds refresh tokens and cached checks."""
    return _mac("password", user.password)
