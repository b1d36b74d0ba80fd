"""Every registry error is one OCI error code with its status, rendered by one function."""

import json

import pytest

from pulp_container.app import exceptions
from pulp_container.app.exceptions import RangeInvalid, RegistryError, Unauthorized, render_error


@pytest.mark.parametrize(
    "error_class, code, status",
    [
        (exceptions.BlobUnknown, "BLOB_UNKNOWN", 404),
        (exceptions.BlobUploadInvalid, "BLOB_UPLOAD_INVALID", 400),
        (exceptions.BlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404),
        (exceptions.DigestInvalid, "DIGEST_INVALID", 400),
        (exceptions.ManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 400),
        (exceptions.ManifestInvalid, "MANIFEST_INVALID", 400),
        (exceptions.ManifestUnknown, "MANIFEST_UNKNOWN", 404),
        (exceptions.NameInvalid, "NAME_INVALID", 400),
        (exceptions.NameUnknown, "NAME_UNKNOWN", 404),
        (exceptions.SizeInvalid, "SIZE_INVALID", 400),
        (exceptions.ManifestTooLarge, "SIZE_INVALID", 413),
        (exceptions.Unauthorized, "UNAUTHORIZED", 401),
        (exceptions.Denied, "DENIED", 403),
        (exceptions.Unsupported, "UNSUPPORTED", 405),
        (exceptions.RegistryError, "UNKNOWN", 500),
    ],
)
def test_an_error_renders_its_code_status_message_and_detail(
    error_class: type[RegistryError], code: str, status: int
) -> None:
    response = render_error(error_class("the detail"))

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {
        "errors": [{"code": code, "message": error_class.message, "detail": "the detail"}]
    }


def test_an_error_without_detail_renders_null_detail_and_its_message_as_text() -> None:
    error = exceptions.BlobUnknown()

    body = json.loads(render_error(error).content)

    assert body["errors"][0]["detail"] is None
    assert str(error) == "blob unknown to registry"


def test_a_structured_detail_is_rendered_as_json() -> None:
    error = exceptions.ManifestBlobUnknown({"unknown": ["sha256:" + "0" * 64]})

    body = json.loads(render_error(error).content)

    assert body["errors"][0]["detail"] == {"unknown": ["sha256:" + "0" * 64]}


@pytest.mark.parametrize(
    "current_offset, expected_range",
    [(0, "0-0"), (1, "0-0"), (100, "0-99"), (5 * 1024 * 1024, f"0-{5 * 1024 * 1024 - 1}")],
)
def test_range_invalid_carries_the_range_received_so_far(
    current_offset: int, expected_range: str
) -> None:
    response = render_error(RangeInvalid("out of order", current_offset))

    assert response.status_code == 416
    assert response["Range"] == expected_range
    assert json.loads(response.content)["errors"][0]["code"] == "RANGE_INVALID"


def test_unauthorized_carries_its_challenge() -> None:
    challenge = 'Bearer realm="https://r/token/",service="r",error="invalid_token"'

    response = render_error(Unauthorized("bad token", challenge))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == challenge


def test_unauthorized_without_challenge_sends_no_www_authenticate() -> None:
    response = render_error(Unauthorized("no"))

    assert "WWW-Authenticate" not in response


@pytest.mark.parametrize(
    "error_class",
    [c for c in vars(exceptions).values() if isinstance(c, type) and issubclass(c, RegistryError)],
)
def test_every_error_class_has_no_extra_headers_but_range_and_challenge(error_class) -> None:
    if error_class is RangeInvalid:
        error = error_class("x", 10)
    else:
        error = error_class("x")

    assert set(error.headers()) <= {"Range", "WWW-Authenticate"}
