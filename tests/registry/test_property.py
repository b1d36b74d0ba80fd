"""Property-based tier (issue 13): generated requests to every /v2/ route and parameter.

Odd strings (NUL, lone surrogates, control characters, very long), wrong types, huge numbers,
odd encodings and odd header values go to each route with real tokens (and none, and a broken
one). Whatever is sent, the answer is never a 5xx, every error is OCI error JSON with a known
code, and the registry is healthy afterwards (a push and a pull work).

``PULP_PROPERTY_EXAMPLES`` sets the examples per route group (default 300: about 11,400
requests, each route request sent by four callers); the nightly run sets it higher
(``PULP_PROPERTY_EXAMPLES=3000 make test``). The number of requests tried is printed at the end.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.oci_images import sha256_digest
from tests.registry.client import (
    RegistryClient,
    error_of,
    push_scopes,
)

EXAMPLES = int(os.environ.get("PULP_PROPERTY_EXAMPLES", "300"))
# 9 route groups x EXAMPLES x 4 callers, plus manifest pushes and chunks.
MINIMUM_REQUESTS = 10_000 if EXAMPLES >= 300 else 0

NAME = "admin/prop"
OTHER = "admin/other"
OCI_CODES = {
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "RANGE_INVALID",
}
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"]

tried = {"requests": 0}

# --- strategies ------------------------------------------------------------------------------

odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None, categories=None), max_size=20),
    st.sampled_from(
        [
            "\x00",
            "a\x00b",
            "\ud800",
            "x\udfff",
            "\ufeff",
            "..",
            "../..",
            "%00",
            "%2F",
            "a" * 300,
            "é",
            "😀",
            " ",
            "\r\n",
            "latest:foo",
            "sha256:",
            "sha256:" + "A" * 64,
            "sha512:" + "a" * 64,
            "md5:abc",
        ]
    ),
)
huge_numbers = st.one_of(
    st.integers(min_value=-(2**200), max_value=2**200).map(str),
    st.sampled_from(["18446744073709551616", "-1", "1e309", "NaN", "0x10", "1_000", "٣"]),
)
tags = st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}", fullmatch=True)
digests = st.one_of(
    st.binary(max_size=8).map(sha256_digest),
    st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True),
)
names = st.one_of(st.sampled_from([NAME, OTHER, "admin/never", "nobody/x"]), odd_text)


def segment(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="/:")


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        odd_text,
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(odd_text, children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def manifest_bodies(draw) -> bytes:
    """A valid-looking manifest with one field replaced, or bytes in an odd encoding."""
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": draw(digests),
            "size": 10,
        },
        "layers": [{"mediaType": "x", "digest": draw(digests), "size": 5}],
    }
    field = draw(
        st.sampled_from(
            [
                "schemaVersion",
                "mediaType",
                "config",
                "layers",
                "subject",
                "annotations",
                "artifactType",
                "manifests",
                "config.size",
                "config.digest",
                "layers.0.size",
                "layers.0.urls",
                "layers.0.annotations",
            ]
        )
    )
    target, *rest = field.split(".")
    value = draw(json_values)
    if not rest:
        document[target] = value
    elif rest == ["0", rest[-1]] and len(rest) == 2:
        document[target][0][rest[1]] = value
    else:
        document[target][rest[0]] = value
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "utf-32", "latin-1"]))
    return text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")


query_params = st.dictionaries(
    st.sampled_from(["n", "last", "digest", "mount", "from", "artifactType", "x\x00"]),
    st.one_of(odd_text, huge_numbers, digests),
    max_size=3,
)
header_values = st.dictionaries(
    st.sampled_from(["Accept", "Content-Range", "Range", "Docker-Upload-UUID", "If-None-Match"]),
    st.one_of(odd_text, st.just("bytes=0-5"), st.just("0-99999999999999999999999")).filter(
        lambda value: "\n" not in value and "\r" not in value
    ),
    max_size=2,
)
content_types = st.sampled_from(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/octet-stream",
        "text/html; charset=utf-16",
        "",
    ]
)


# --- the world the requests land in ----------------------------------------------------------


@pytest.fixture
def world(admin, registry):
    """Two repositories with an image each, an open upload session, and clients: the pusher's
    token, an anonymous caller, a broken token, and Basic credentials with odd bytes."""
    pusher = registry(admin, *push_scopes(NAME), *push_scopes(OTHER), "registry:catalog:*")
    image = pusher.push_image(NAME, "latest")
    pusher.push_image(OTHER, "v1")
    upload = pusher.start_upload(NAME)["Location"].rsplit("/", 1)[-1]
    clients = [
        pusher,
        RegistryClient(),
        RegistryClient("Bearer not.a.token"),
        RegistryClient("Basic YWRtaW4AOng="),
    ]
    return {"image": image, "upload": upload, "clients": clients, "pusher": pusher}


def check(response, method: str) -> None:
    tried["requests"] += 1
    assert response.status_code < 500, (method, error_of(response))
    if response.status_code >= 400 and method != "HEAD":
        assert response["Content-Type"].startswith("application/json"), error_of(response)
        errors = json.loads(response.content)["errors"]
        assert errors and all(error["code"] in OCI_CODES for error in errors), errors


def send(client: RegistryClient, method: str, path: str, params, body=b"", **kwargs):
    if params:
        encoded = {
            key.encode("utf-8", "surrogatepass"): str(value).encode("utf-8", "surrogatepass")
            for key, value in params.items()
        }
        path = f"{path}?{urlencode(encoded)}"
    response = client.request(method, path, body, **kwargs)
    check(response, method)
    return response


SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize(
    "route",
    [
        "/v2/{name}/tags/list",
        "/v2/{name}/manifests/{reference}",
        "/v2/{name}/blobs/{digest}",
        "/v2/{name}/referrers/{digest}",
        "/v2/{name}/blobs/uploads/",
        "/v2/{name}/blobs/uploads/{upload}",
        "/v2/_catalog",
        "/v2/",
        "/v2/{name}/{other}",
    ],
)
@SETTINGS
@given(data=st.data())
def test_any_request_to_a_route_is_answered_without_a_server_error(world, route, data):
    """Each generated request goes out once per caller: the pusher's token, none, a broken
    token, and Basic credentials holding a NUL."""
    method = data.draw(st.sampled_from(METHODS))
    values = {
        "name": data.draw(names),
        "reference": data.draw(st.one_of(tags, digests, odd_text, st.just(world["image"].digest))),
        "digest": data.draw(
            st.one_of(digests, odd_text, st.sampled_from(world["image"].blob_digests))
        ),
        "upload": data.draw(st.one_of(st.just(world["upload"]), st.uuids().map(str), odd_text)),
        "other": data.draw(odd_text),
    }
    path = route.format(**{key: segment(value) for key, value in values.items()})
    body = data.draw(st.one_of(st.binary(max_size=64), manifest_bodies()))
    params = data.draw(query_params)
    content_type = data.draw(content_types)
    headers = data.draw(header_values)
    for client in world["clients"]:
        send(client, method, path, params, body, content_type=content_type, **headers)


@SETTINGS
@given(data=st.data())
def test_any_manifest_push_is_answered_without_a_server_error(world, data):
    name = data.draw(st.sampled_from([NAME, OTHER]))
    reference = data.draw(st.one_of(tags, odd_text))
    send(
        world["pusher"],
        "PUT",
        f"/v2/{name}/manifests/{segment(reference)}",
        {},
        data.draw(manifest_bodies()),
        content_type=data.draw(content_types),
    )


@SETTINGS
@given(data=st.data())
def test_any_chunk_is_answered_without_a_server_error(world, data):
    client = world["pusher"]
    location = f"/v2/{NAME}/blobs/uploads/{world['upload']}"
    method = data.draw(st.sampled_from(["PATCH", "PUT", "GET"]))
    params = data.draw(
        st.one_of(st.just({}), st.fixed_dictionaries({"digest": st.one_of(digests, odd_text)}))
    )
    send(
        client,
        method,
        location,
        params,
        data.draw(st.binary(max_size=128)),
        **data.draw(header_values),
    )


def test_the_registry_is_healthy_after_the_generated_requests(world):
    """Runs last in this module: a push and a pull work, and enough requests were tried."""
    pusher = world["pusher"]
    image = pusher.push_image(NAME, "after")
    pulled = pusher.get(f"/v2/{NAME}/manifests/after", Accept=image.media_type)
    assert pulled.status_code == 200, error_of(pulled)
    assert pulled.content == image.body
    assert tried["requests"] == 0 or tried["requests"] >= MINIMUM_REQUESTS, tried
