"""The requests a push is made of cost a fixed, small number of queries: guards so it cannot creep.

Counted under pytest-django's ``db`` (one transaction per test), where every nested
``transaction.atomic`` is a SAVEPOINT and its RELEASE, two statements each; the limits include
them. A server pays the same savepoints, minus those of the outermost block.

Before issue 12 a manifest PUT of a config and 5 layers ran 81 statements; pulpcore's generic
duplicate and path checks re-read the whole repository version at every push. Then 35 (plus 28
for savepoints) with pulpcore's ``new_version()``; 13 with the registry's own version commit
(services/versions.py: two reads and one write); 9 when the new manifest, its links and its tag
became one statement too (row_writes), 13 with savepoints where there were 21.
"""

from __future__ import annotations

import json
import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.registry.client import (
    SERVICE,
    basic_authorization,
    error_of,
    image_manifest,
    latest_content,
    mint_token,
    push_scopes,
)
from tests.registry.test_tokens import token_request

NAME = "alice/app"
SOURCE = "alice/src"


@pytest.fixture
def pusher(alice, registry):
    return registry(alice, *push_scopes(NAME), f"repository:{SOURCE}:pull,push")


@pytest.mark.parametrize(
    ("what", "limit"),
    # The request's own: the user of the token (the domain is pulpcore's default, from memory).
    # A HEAD adds one query, the name and the blob together (the token decides: no rights read),
    # and a hit reads the blob's stored file once per process (then remembered: one query);
    # a pusher's miss reads their rights (two) and asks whether the blob is readable elsewhere
    # (link-on-HEAD).
    # (The limits were 5 and 6 before.)
    [("version check", 1), ("HEAD of a held blob", 3), ("HEAD of an unknown blob", 5)],
)
def test_a_read_costs_a_fixed_number_of_queries(pusher, django_assert_max_num_queries, what, limit):
    digest = pusher.push_blob(NAME, os.urandom(100))
    if what == "HEAD of an unknown blob":
        digest = "sha256:" + "0" * 64
    path = "/v2/" if what == "version check" else f"/v2/{NAME}/blobs/{digest}"

    with django_assert_max_num_queries(limit):
        response = pusher.request("GET" if what == "version check" else "HEAD", path)

    assert response.status_code in (200, 404), error_of(response)


def test_a_mount_costs_one_decision_and_one_write(pusher, django_assert_max_num_queries):
    pusher.push_blob(NAME, os.urandom(10))  # the target exists, as in a real push
    layer = pusher.push_image(SOURCE).layer_digests[0]

    # The user, the target, the blob in the source the token lets the caller pull (one query,
    # no rights read), then one statement writing the pending link and the transfer record.
    # Before the source was tried first: 9 (the rights, two, and the search of every readable
    # repository); then 7 (the link and the record were two statements in a savepoint).
    with django_assert_max_num_queries(4):
        response = pusher.post(f"/v2/{NAME}/blobs/uploads/?mount={layer}&from={SOURCE}")

    assert response.status_code == 201, error_of(response)


def test_a_repeated_token_request_costs_four_queries(alice, django_assert_max_num_queries):
    scope = f"repository:{NAME}:pull,push"
    mint_token(alice, scope)  # the password check is remembered after the first

    # The remembered password check with its user, the rights (two), the distributions named.
    with django_assert_max_num_queries(4):
        response = token_request(
            [("service", SERVICE), ("scope", scope)], basic_authorization("alice")
        )

    assert response.status_code == 200


@pytest.mark.parametrize("versions_before", [1, 12])
def test_a_manifest_put_commits_a_version_in_a_bounded_number_of_queries(
    pusher, django_assert_max_num_queries, versions_before
):
    """A config and 5 layers, tagged: the same cost on a new repository and a busy one."""
    for index in range(versions_before):
        pusher.push_image(NAME, tag=f"old-{index}")
    layers = [os.urandom(64) for _ in range(5)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(4).hex()})
    config_digest = pusher.push_blob(NAME, config.encode())
    layer_digests = [pusher.push_blob(NAME, layer) for layer in layers]
    body = image_manifest(config_digest, len(config), layer_digests, layers)

    with CaptureQueriesContext(connection) as captured:
        response = pusher.push_manifest(NAME, "v1", body)

    assert response.status_code == 201, error_of(response)
    statements = [query["sql"] for query in captured.captured_queries]
    savepoints = sum(sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")) for sql in statements)
    assert len(statements) - savepoints <= 9, "\n".join(statements)
    assert len(statements) <= 13
    content = latest_content(NAME)
    assert set(layer_digests) | {config_digest} <= content["blobs"]


def test_a_retag_still_replaces_the_tag_of_the_same_name(pusher):
    first = pusher.push_image(NAME, tag="stable")
    second = pusher.push_image(NAME, tag="stable")

    content = latest_content(NAME)
    assert {first.digest, second.digest} <= content["manifests"]
    assert [tag for tag in content["tags"] if tag.startswith("stable=")] == [
        f"stable={second.digest}"
    ]
