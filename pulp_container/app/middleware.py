"""Errors raised below the registry views, answered as OCI error JSON.

Django (a bad Host header), pulpcore's middleware (which reads the database before any view
runs) and Django's own 500 page answer registry clients with HTML; this outermost middleware
gives every error under ``/v2/`` and ``/token/`` the OCI body instead, with 503 UNAVAILABLE when
the database could not be reached. It also reads whatever body a registry view left unread, so
that an early answer reaches the client through the front (``discard_unread_body``).
"""

from __future__ import annotations

import sys

from django.core.signals import got_request_exception
from django.db import DatabaseError, InterfaceError
from django.db.utils import DataError
from django.dispatch import receiver

from pulp_container.app.exceptions import Unavailable, error_for_status, render_error
from pulp_container.app.request_body import discard_unread_body
from pulp_container.constants import API_VERSION_HEADER, API_VERSION_VALUE

REGISTRY_PREFIXES = ("/v2/", "/v2", "/token/", "/token")
MIDDLEWARE = "pulp_container.app.middleware.RegistryErrorsMiddleware"


@receiver(got_request_exception)
def _remember_exception(sender, request=None, **kwargs) -> None:
    if request is not None:
        request.registry_exception = sys.exc_info()[1]


def _database_away(error: BaseException | None) -> bool:
    return isinstance(error, (InterfaceError, DatabaseError)) and not isinstance(error, DataError)


class RegistryErrorsMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(REGISTRY_PREFIXES):
            return response
        discard_unread_body(request)
        if response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        failure = getattr(request, "registry_exception", None)
        if _database_away(failure):
            error = Unavailable("the database is unavailable; retry later")
        else:
            error = error_for_status(response.status_code, response.reason_phrase)
        replaced = render_error(error)
        if request.path.startswith("/v2"):
            replaced[API_VERSION_HEADER] = API_VERSION_VALUE
        if request.method == "HEAD":
            replaced.content = b""
        return replaced


def install(settings) -> None:
    """Put the middleware first, so that it sees what every other one answers."""
    if MIDDLEWARE not in settings.MIDDLEWARE:
        settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE]
