"""Values of the OCI Distribution API are parsed once, at the edge, or refused with their code."""

import pytest

from pulp_container.app.exceptions import DigestInvalid, ManifestUnknown, NameInvalid, RangeInvalid
from pulp_container.app.oci import (
    ContentRange,
    Digest,
    Reference,
    RepositoryName,
    negotiate_media_type,
)
from pulp_container.constants import (
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST_V2,
    OCI_INDEX,
    OCI_MANIFEST,
)

HEX64 = "0123456789abcdef" * 4
HEX128 = HEX64 * 2


@pytest.mark.parametrize(
    "value, algorithm, encoded",
    [
        (f"sha256:{HEX64}", "sha256", HEX64),
        (f"sha512:{HEX128}", "sha512", HEX128),
    ],
)
def test_a_well_formed_digest_is_parsed(value: str, algorithm: str, encoded: str) -> None:
    digest = Digest.parse(value)

    assert (digest.algorithm, digest.encoded) == (algorithm, encoded)
    assert str(digest) == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("sha256", id="no-colon"),
        pytest.param("sha256:", id="no-encoded-part"),
        pytest.param(f":{HEX64}", id="no-algorithm"),
        pytest.param("sha256:abc", id="too-short"),
        pytest.param(f"sha256:{HEX64}0", id="too-long"),
        pytest.param(f"sha256:{HEX64[:-1]}", id="one-short"),
        pytest.param(f"sha512:{HEX64}", id="sha512-with-sha256-length"),
        pytest.param(f"sha256:{HEX64.upper()}", id="uppercase-hex"),
        pytest.param(f"sha256:{'g' * 64}", id="not-hex"),
        pytest.param(f"md5:{HEX64[:32]}", id="unknown-algorithm"),
        pytest.param(f"sha384:{HEX64}{HEX64[:32]}", id="unsupported-algorithm"),
        pytest.param(f"SHA256:{HEX64}", id="uppercase-algorithm"),
        pytest.param(f" sha256:{HEX64}", id="leading-space"),
        pytest.param(f"sha256:{HEX64}\n", id="trailing-newline"),
        pytest.param(f"sha256:{HEX64[:32]}/{HEX64[:31]}", id="slash"),
    ],
)
def test_a_malformed_digest_is_digest_invalid(value: str | None) -> None:
    with pytest.raises(DigestInvalid) as raised:
        Digest.parse(value)

    assert raised.value.status == 400


def test_digest_of_bytes_is_their_sha256() -> None:
    digest = Digest.of(b"")

    assert str(digest) == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert Digest.parse(str(digest)) == digest


@pytest.mark.parametrize(
    "value, tag, digest",
    [
        ("latest", "latest", None),
        ("v1.0.2-rc_1", "v1.0.2-rc_1", None),
        ("_private", "_private", None),
        ("A" * 128, "A" * 128, None),
        (f"sha256:{HEX64}", None, Digest("sha256", HEX64)),
    ],
)
def test_a_reference_is_a_tag_or_a_digest(value: str, tag: str | None, digest) -> None:
    reference = Reference.parse(value)

    assert (reference.tag, reference.digest) == (tag, digest)
    assert str(reference) == value


@pytest.mark.parametrize(
    "value, error",
    [
        pytest.param("", ManifestUnknown, id="empty"),
        pytest.param(".hidden", ManifestUnknown, id="leading-dot"),
        pytest.param("-dash", ManifestUnknown, id="leading-dash"),
        pytest.param("A" * 129, ManifestUnknown, id="129-characters"),
        pytest.param("tag with space", ManifestUnknown, id="space"),
        pytest.param("sha256:short", DigestInvalid, id="malformed-digest"),
        pytest.param(f"sha256:{HEX64.upper()}", DigestInvalid, id="uppercase-digest"),
    ],
)
def test_a_malformed_reference_is_refused(value: str, error: type) -> None:
    with pytest.raises(error):
        Reference.parse(value)


@pytest.mark.parametrize(
    "value, namespace",
    [
        ("app", "app"),
        ("team/app", "team"),
        ("team/sub/group/app", "team"),
        ("my-app", "my-app"),
        ("my--app", "my--app"),
        ("my_app", "my_app"),
        ("my__app", "my__app"),
        ("my.app/v2", "my.app"),
        ("0day/1x", "0day"),
        ("a" * 255, "a" * 255),
    ],
)
def test_a_valid_repository_name_is_parsed(value: str, namespace: str) -> None:
    name = RepositoryName.parse(value)

    assert str(name) == value
    assert name.namespace == namespace


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("App", id="uppercase"),
        pytest.param("team//app", id="empty-segment"),
        pytest.param("/app", id="leading-slash"),
        pytest.param("app/", id="trailing-slash"),
        pytest.param("-app", id="leading-dash"),
        pytest.param("app-", id="trailing-dash"),
        pytest.param("a..b", id="double-dot"),
        pytest.param("a___b", id="triple-underscore"),
        pytest.param("a b", id="space"),
        pytest.param("team/app:tag", id="colon"),
        pytest.param("a" * 256, id="256-characters"),
    ],
)
def test_an_invalid_repository_name_is_name_invalid(value: str) -> None:
    with pytest.raises(NameInvalid) as raised:
        RepositoryName.parse(value)

    assert raised.value.status == 400


@pytest.mark.parametrize(
    "header, start, end",
    [
        ("0-99", 0, 99),
        ("100-199", 100, 199),
        ("bytes=0-99", 0, 99),
        ("bytes 0-99/100", 0, 99),
        ("0-99/*", 0, 99),
        (" 5-9 ", 5, 9),
        ("7-7", 7, 7),
    ],
)
def test_a_content_range_is_parsed(header: str, start: int, end: int) -> None:
    content_range = ContentRange.parse(header, current_offset=0)

    assert (content_range.start, content_range.end) == (start, end)
    assert content_range.length == end - start + 1


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("99-0", id="end-before-start"),
        pytest.param("abc", id="garbage"),
        pytest.param("0-", id="open-end"),
        pytest.param("-5", id="suffix-range"),
        pytest.param("0-9,20-29", id="several-ranges"),
        pytest.param("", id="empty"),
    ],
)
def test_a_malformed_content_range_is_range_invalid_with_the_current_range(header: str) -> None:
    with pytest.raises(RangeInvalid) as raised:
        ContentRange.parse(header, current_offset=100)

    assert raised.value.status == 416
    assert raised.value.headers() == {"Range": "0-99"}


@pytest.mark.parametrize(
    "stored, accept, taken",
    [
        pytest.param(OCI_MANIFEST, "", True, id="no-accept"),
        pytest.param(OCI_MANIFEST, "*/*", True, id="anything"),
        pytest.param(OCI_MANIFEST, "application/json", True, id="no-manifest-type"),
        pytest.param(OCI_MANIFEST, OCI_MANIFEST, True, id="exact"),
        pytest.param(OCI_MANIFEST, f"{DOCKER_MANIFEST_V2}, {OCI_MANIFEST}", True, id="in-list"),
        pytest.param(OCI_MANIFEST, f"{OCI_MANIFEST};q=0.5", True, id="with-parameter"),
        pytest.param(OCI_MANIFEST, DOCKER_MANIFEST_V2, False, id="docker-only"),
        pytest.param(OCI_INDEX, OCI_MANIFEST, False, id="index-to-manifest-only-client"),
        pytest.param(OCI_INDEX, f"{OCI_MANIFEST}, */*", True, id="manifest-or-anything"),
        pytest.param(
            DOCKER_MANIFEST_LIST,
            f"{DOCKER_MANIFEST_V2},{DOCKER_MANIFEST_LIST}",
            True,
            id="docker-list",
        ),
        pytest.param(DOCKER_MANIFEST_V2, f"{OCI_MANIFEST},{OCI_INDEX}", False, id="oci-only"),
    ],
)
def test_accept_negotiation(stored: str, accept: str, taken: bool) -> None:
    assert negotiate_media_type(stored, accept) is taken
