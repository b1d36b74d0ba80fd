"""Registry errors: one class per OCI error code, rendered by one function.

OCI distribution spec, "Error Codes": every error body is ``{"errors": [{code, message,
detail}]}``. The HTTP status belongs to the code, so it is declared here and nowhere else.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import JsonResponse


class RegistryError(Exception):
    """Base of every error the /v2/ API answers; subclasses name an OCI error code."""

    code: ClassVar[str] = "UNKNOWN"
    status: ClassVar[int] = 500
    message: ClassVar[str] = "unknown error"

    def __init__(self, detail: Any = None) -> None:
        super().__init__(detail if detail is not None else self.message)
        self.detail = detail

    def headers(self) -> dict[str, str]:
        """Extra response headers this error carries."""
        return {}


class BlobUnknown(RegistryError):
    code, status, message = "BLOB_UNKNOWN", 404, "blob unknown to registry"


class BlobUploadInvalid(RegistryError):
    code, status, message = "BLOB_UPLOAD_INVALID", 400, "blob upload invalid"


class BlobUploadUnknown(RegistryError):
    code, status, message = "BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"


class DigestInvalid(RegistryError):
    code, status, message = "DIGEST_INVALID", 400, "provided digest did not match uploaded content"


class ManifestBlobUnknown(RegistryError):
    code, status, message = "MANIFEST_BLOB_UNKNOWN", 400, "manifest references unknown content"


class ManifestInvalid(RegistryError):
    code, status, message = "MANIFEST_INVALID", 400, "manifest invalid"


class ManifestUnknown(RegistryError):
    code, status, message = "MANIFEST_UNKNOWN", 404, "manifest unknown"


class NameInvalid(RegistryError):
    code, status, message = "NAME_INVALID", 400, "invalid repository name"


class NameUnknown(RegistryError):
    code, status, message = "NAME_UNKNOWN", 404, "repository name not known to registry"


class SizeInvalid(RegistryError):
    code, status, message = "SIZE_INVALID", 400, "provided length did not match content length"


class ManifestTooLarge(SizeInvalid):
    status = 413


class Unauthorized(RegistryError):
    code, status, message = "UNAUTHORIZED", 401, "authentication required"

    def __init__(self, detail: Any = None, challenge: str = "") -> None:
        super().__init__(detail)
        self.challenge = challenge

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge} if self.challenge else {}


class Denied(RegistryError):
    code, status, message = "DENIED", 403, "requested access to the resource is denied"


class Unsupported(RegistryError):
    code, status, message = "UNSUPPORTED", 405, "the operation is unsupported"


class TokenRequestTooLarge(Unsupported):
    """A token request naming more scopes, or asking for a larger token, than the limits."""

    status = 400


class ParameterInvalid(Unsupported):
    """A query parameter or header the registry cannot take (NUL, lone surrogates, bad type)."""

    status = 400


class Unavailable(RegistryError):
    """The database (or another service the registry needs) cannot be reached: retry later.

    Not in the OCI list of codes; distribution/distribution registers it with the same status.
    """

    code, status, message = "UNAVAILABLE", 503, "service unavailable"


class UpstreamFailed(Unavailable):
    """The remote a blob synced on demand comes from did not give its bytes, or wrong ones."""

    status = 502
    message = "the remote did not provide the content"


class RangeInvalid(RegistryError):
    """A chunk that does not start where the upload stands (416, with the current Range)."""

    code, status, message = "RANGE_INVALID", 416, "requested range not satisfiable"

    def __init__(self, detail: Any, current_offset: int) -> None:
        super().__init__(detail)
        self.current_offset = current_offset

    def headers(self) -> dict[str, str]:
        return {"Range": f"0-{max(self.current_offset - 1, 0)}"}


# The error a bare HTTP status (from Django or gunicorn, below the views) is answered with.
_BY_STATUS: dict[int, type[RegistryError]] = {
    400: ParameterInvalid,
    404: NameUnknown,
    405: Unsupported,
    413: SizeInvalid,
    503: Unavailable,
}


def error_for_status(status: int, detail: Any = None) -> RegistryError:
    """The registry error that stands for an HTTP error status raised outside the views."""
    error_class = _BY_STATUS.get(status)
    if error_class is None:
        error = RegistryError(detail)
        error.status = status if 400 <= status < 600 else 500  # type: ignore[misc]
        return error
    error = error_class(detail)
    error.status = status  # type: ignore[misc]
    return error


def error_body(error: RegistryError) -> bytes:
    """The JSON body of ``error``, as bytes (for answers written below Django)."""
    return render_error(error).content


def render_error(error: RegistryError) -> JsonResponse:
    """The only place where an error body is built."""
    body = {"errors": [{"code": error.code, "message": error.message, "detail": error.detail}]}
    response = JsonResponse(body, status=error.status)
    for name, value in error.headers().items():
        response[name] = value
    return response
