"""OCI 1.1 artifacts: signatures and SBOMs that point at an image through ``subject``.

Pipelines push an image, then a signature and an SBOM whose ``subject`` is the image; verifiers
find them with ``GET /v2/<name>/referrers/<digest>``.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from harness.oci_images import sha256_digest
from pulp_container.constants import OCI_EMPTY_CONFIG, OCI_INDEX, OCI_MANIFEST
from tests.registry.client import PushedImage, descriptor, error_codes, error_of

NAME = "alice/app"
SIGNATURE = "application/vnd.example.signature.v1"
SBOM = "application/spdx+json"


def push_artifact(client, name: str, artifact_type: str, subject: PushedImage | None, payload):
    """Push an artifact manifest (empty config, one blob) whose subject is ``subject``."""
    empty = client.push_blob(name, b"{}")
    blob = client.push_blob(name, payload)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": descriptor(OCI_EMPTY_CONFIG, empty, 2),
        "layers": [descriptor("application/octet-stream", blob, len(payload))],
        "annotations": {"org.example.kind": artifact_type},
    }
    if subject is not None:
        document["subject"] = descriptor(subject.media_type, subject.digest, len(subject.body))
    body = json.dumps(document).encode()
    response = client.push_manifest(name, sha256_digest(body), body)
    assert response.status_code == 201, error_of(response)
    return sha256_digest(body), body, response


@pytest.fixture
def pushed(admin_registry):
    client = admin_registry(NAME)
    image = client.push_image(NAME, "v1")
    signature = push_artifact(client, NAME, SIGNATURE, image, b"signed")
    sbom = push_artifact(client, NAME, SBOM, image, b'{"spdxVersion": "SPDX-2.3"}')
    return client, image, signature, sbom


def test_a_referrer_push_answers_with_the_oci_subject_header(pushed):
    _, image, (_, _, response), _ = pushed
    assert response["OCI-Subject"] == image.digest


def test_referrers_lists_every_artifact_that_names_the_image(pushed):
    client, image, (signature, signature_body, _), (sbom, sbom_body, _) = pushed
    response = client.get(f"/v2/{NAME}/referrers/{image.digest}")
    assert response.status_code == 200
    assert response["Content-Type"] == OCI_INDEX
    index = response.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    by_digest = {entry["digest"]: entry for entry in index["manifests"]}
    assert by_digest == {
        signature: {
            "mediaType": OCI_MANIFEST,
            "digest": signature,
            "size": len(signature_body),
            "artifactType": SIGNATURE,
            "annotations": {"org.example.kind": SIGNATURE},
        },
        sbom: {
            "mediaType": OCI_MANIFEST,
            "digest": sbom,
            "size": len(sbom_body),
            "artifactType": SBOM,
            "annotations": {"org.example.kind": SBOM},
        },
    }
    assert "OCI-Filters-Applied" not in response


def test_referrers_filtered_by_artifact_type(pushed):
    client, image, (signature, _, _), _ = pushed
    response = client.get(f"/v2/{NAME}/referrers/{image.digest}?artifactType={SIGNATURE}")
    assert response.status_code == 200
    assert response["OCI-Filters-Applied"] == "artifactType"
    assert [entry["digest"] for entry in response.json()["manifests"]] == [signature]


def test_an_image_without_referrers_has_an_empty_index(admin_registry):
    client = admin_registry(NAME)
    image = client.push_image(NAME, "lonely")
    response = client.get(f"/v2/{NAME}/referrers/{image.digest}")
    assert response.status_code == 200
    assert response.json()["manifests"] == []


def test_a_referrer_may_come_before_its_subject(admin_registry):
    client = admin_registry(NAME)
    missing_subject = PushedImage(NAME, None, "sha256:" + "ab" * 32, b"x" * 100, OCI_MANIFEST, "")
    signature, _, response = push_artifact(client, NAME, SIGNATURE, missing_subject, b"early")
    assert response["OCI-Subject"] == missing_subject.digest
    listed = client.get(f"/v2/{NAME}/referrers/{missing_subject.digest}").json()["manifests"]
    assert [entry["digest"] for entry in listed] == [signature]


def test_referrers_of_a_malformed_digest_is_digest_invalid(admin_registry):
    client = admin_registry(NAME)
    client.push_image(NAME, "v1")
    response = client.get(f"/v2/{NAME}/referrers/sha256:nothex")
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]


def test_the_artifact_is_served_as_pushed(pushed):
    client, _, (signature, signature_body, _), _ = pushed
    response = client.get(f"/v2/{NAME}/manifests/{signature}", Accept=OCI_MANIFEST)
    assert response.status_code == 200
    assert response.content == signature_body
    assert response["Docker-Content-Digest"] == signature


def test_the_rest_api_shows_what_refers_to_a_manifest(pushed, admin):
    client, image, (signature, _, _), (sbom, _, _) = pushed
    rest = Client()
    rest.force_login(admin)
    listed = rest.get(f"/pulp/api/v3/content/container/manifests/?digest={image.digest}").json()
    assert listed["count"] == 1
    assert listed["results"][0]["referrers"] == sorted([signature, sbom])
    assert listed["results"][0]["subject"] is None
    by_signature = rest.get(f"/pulp/api/v3/content/container/manifests/?digest={signature}")
    assert by_signature.json()["results"][0]["subject"] == image.digest


def test_a_long_referrers_list_is_paginated_with_a_link(pushed):
    client, image, (signature, _, _), (sbom, _, _) = pushed
    first = client.get(f"/v2/{NAME}/referrers/{image.digest}?n=1")
    assert [entry["digest"] for entry in first.json()["manifests"]] == [min(signature, sbom)]
    link = first["Link"]
    assert link.endswith('>; rel="next"')
    second = client.get(link[1 : link.index(">")])
    assert [entry["digest"] for entry in second.json()["manifests"]] == [max(signature, sbom)]
    assert "Link" not in second
