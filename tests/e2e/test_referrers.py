"""A pipeline pushes an image with skopeo, then a signature and an SBOM that point at it.

The artifacts are OCI 1.1 manifests built by hand (empty config, one blob, ``subject``) and
pushed over HTTP against the running server, as cosign, notation and oras do.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import quote

from harness.container_tools import Skopeo
from harness.oci_images import Layer, build_image
from harness.registry_http import RegistryHTTP, RunningRegistry, repository_scope

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
SIGNATURE = "application/vnd.example.signature.v1"
SBOM = "application/spdx+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_artifact(
    http: RegistryHTTP, name: str, artifact_type: str, subject: dict, payload: bytes
) -> str:
    empty = http.push_blob(name, b"{}")
    blob = http.push_blob(name, payload)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": EMPTY, "digest": empty, "size": 2},
            "layers": [
                {"mediaType": "application/octet-stream", "digest": blob, "size": len(payload)}
            ],
            "subject": subject,
        }
    ).encode()
    digest = digest_of(body)
    response = http.request(
        "PUT",
        f"/v2/{name}/manifests/{digest}",
        scope=repository_scope(name),
        headers={"Content-Type": OCI_MANIFEST},
        data=body,
    )
    assert response.status_code == 201, response.text
    assert response.headers["OCI-Subject"] == subject["digest"]
    return digest


def referrers(http: RegistryHTTP, name: str, digest: str, query: str = ""):
    response = http.request(
        "GET", f"/v2/{name}/referrers/{digest}{query}", scope=repository_scope(name, "pull")
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == OCI_INDEX
    return response


def test_signature_and_sbom_are_found_by_the_image_digest(
    registry: RunningRegistry, skopeo: Skopeo, work_dir: Path, repository_name
) -> None:
    name = repository_name("signed")
    build_image(work_dir / "image", [Layer(41, 64 * 1024, compressed=True)], tag="v1")
    skopeo.copy(f"oci:{work_dir / 'image'}:v1", registry.reference(name, "v1"))
    http = registry.http()
    manifest = skopeo.inspect_raw(registry.reference(name, "v1"))
    subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(manifest), "size": len(manifest)}

    signature = push_artifact(http, name, SIGNATURE, subject, b"signature bytes")
    sbom = push_artifact(http, name, SBOM, subject, b'{"spdxVersion": "SPDX-2.3"}')

    listed = referrers(http, name, subject["digest"]).json()["manifests"]
    assert {(entry["digest"], entry["artifactType"]) for entry in listed} == {
        (signature, SIGNATURE),
        (sbom, SBOM),
    }
    filtered = referrers(http, name, subject["digest"], f"?artifactType={quote(SBOM, safe='')}")
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [entry["digest"] for entry in filtered.json()["manifests"]] == [sbom]

    # Deleting the image's tag leaves the image, and its referrers, under its digest.
    deleted = http.request(
        "DELETE", f"/v2/{name}/manifests/v1", scope=repository_scope(name, "delete")
    )
    assert deleted.status_code == 202
    tags = http.request("GET", f"/v2/{name}/tags/list", scope=repository_scope(name, "pull"))
    assert tags.json()["tags"] == []
    still = referrers(http, name, subject["digest"]).json()["manifests"]
    assert {entry["digest"] for entry in still} == {signature, sbom}
    assert skopeo.inspect_raw(registry.reference(name, digest=subject["digest"])) == manifest
