"""Content discovery: tag lists and the catalog, paginated with ``n`` and ``last`` and a Link
header to the next page (OCI distribution spec, "Listing Tags"; Docker registry API, "Catalog").
"""

from __future__ import annotations

import os

import pytest

from tests.registry.client import (
    RegistryClient,
    error_codes,
    make_distribution,
    mint_token,
    push_scopes,
)

NAME = "zed/tags"
TAGS = ["a", "b", "c", "d", "e"]


CATALOG = ["alice/private", "alice/public", "eve/private", "zed/app", NAME]


@pytest.fixture(scope="module")
def shared_world(shared_people) -> None:
    """The catalog's repositories; NAME holds one image under five tags, pushed out of order."""
    for name in CATALOG:
        if name != NAME:
            make_distribution(name, private=name.endswith("private"))
    client = RegistryClient(f"Bearer {mint_token(shared_people['admin'], *push_scopes(NAME))}")
    image = client.push_image(NAME, tag="c")
    for tag in ("e", "a", "d", "b"):
        assert client.push_manifest(NAME, tag, image.body).status_code == 201


@pytest.fixture
def world(shared_world, everyone) -> dict:
    return everyone


@pytest.fixture
def tagged(world, registry) -> RegistryClient:
    return registry(world["admin"], f"repository:{NAME}:pull")


def next_link(name: str, n: int, last: str) -> str:
    return f'</v2/{name}/tags/list?n={n}&last={last}>; rel="next"'


def test_all_tags_in_lexical_order(tagged):
    response = tagged.get(f"/v2/{NAME}/tags/list")

    assert response.status_code == 200
    assert response.json() == {"name": NAME, "tags": TAGS}
    assert "Link" not in response


@pytest.mark.parametrize(
    "query, tags, link",
    [
        ("n=2", ["a", "b"], next_link(NAME, 2, "b")),
        ("n=2&last=b", ["c", "d"], next_link(NAME, 2, "d")),
        ("n=2&last=d", ["e"], None),
        ("n=5", TAGS, None),
        ("n=10", TAGS, None),
        ("n=4&last=a", ["b", "c", "d", "e"], None),
        ("last=c", ["d", "e"], None),
        ("last=e", [], None),
        ("last=bb", ["c", "d", "e"], None),
        ("n=0", [], None),
    ],
)
def test_tags_are_paginated_with_n_and_last(tagged, query, tags, link):
    response = tagged.get(f"/v2/{NAME}/tags/list?{query}")

    assert response.status_code == 200
    assert response.json() == {"name": NAME, "tags": tags}
    assert response.get("Link") == link


def test_following_link_headers_walks_every_tag_once(tagged):
    seen, path = [], f"/v2/{NAME}/tags/list?n=2"
    while path:
        response = tagged.get(path)
        seen.extend(response.json()["tags"])
        link = response.get("Link")
        path = link[1 : link.index(">")] if link else None

    assert seen == TAGS


def test_a_repository_with_pushed_blobs_but_no_manifest_lists_no_tags(world, registry):
    client = registry(world["admin"], *push_scopes("admin/blobs-only"))
    client.push_blob("admin/blobs-only", os.urandom(10))

    response = client.get("/v2/admin/blobs-only/tags/list")

    assert response.status_code == 200
    assert response.json() == {"name": "admin/blobs-only", "tags": []}


def catalog_link(n: int, last: str) -> str:
    return f'</v2/_catalog?n={n}&last={last.replace("/", "%2F")}>; rel="next"'


@pytest.mark.parametrize(
    "query, names, link",
    [
        ("", CATALOG, None),
        ("n=2", CATALOG[:2], catalog_link(2, CATALOG[1])),
        (f"n=2&last={CATALOG[1]}", CATALOG[2:4], catalog_link(2, CATALOG[3])),
        (f"n=2&last={CATALOG[3]}", CATALOG[4:], None),
        ("n=100", CATALOG, None),
        ("last=eve/private", CATALOG[3:], None),
    ],
)
def test_the_catalog_is_paginated_with_n_and_last(world, registry, query, names, link):
    client = registry(world["admin"], "registry:catalog:*")

    response = client.get(f"/v2/_catalog?{query}")

    assert response.status_code == 200
    assert response.json() == {"repositories": names}
    assert response.get("Link") == link


@pytest.mark.parametrize(
    "who, names",
    [
        ("admin", CATALOG),
        ("alice", ["alice/private", "alice/public", "zed/app", NAME]),
        ("dave", ["alice/private", "alice/public", "zed/app", NAME]),
        ("eve", ["alice/public", "eve/private", "zed/app", NAME]),
    ],
)
def test_the_catalog_lists_only_what_the_caller_may_pull(world, registry, who, names):
    client = registry(world[who], "registry:catalog:*")

    response = client.get("/v2/_catalog")

    assert response.status_code == 200
    assert response.json() == {"repositories": names}


def test_an_anonymous_token_does_not_open_the_catalog(world, registry):
    client = registry(None, "registry:catalog:*")

    response = client.get("/v2/_catalog")

    assert response.status_code == 401
    assert error_codes(response) == ["UNAUTHORIZED"]
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
