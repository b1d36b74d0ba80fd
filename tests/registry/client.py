"""The registry as the in-process tests see it: a client that pushes like docker does, and what
the database then holds.

Every request goes through ``RegistryClient``, which checks the one header every answer carries
(``Docker-Distribution-Api-Version``).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.http import HttpResponse
from django.test import Client
from pulpcore.plugin.models import RepositoryVersion, Task

from harness.oci_images import sha256_digest
from pulp_container.app.models import (
    Blob,
    ContainerDistribution,
    ContainerNamespace,
    ContainerRepository,
    Manifest,
    PendingContent,
    Tag,
)
from pulp_container.constants import (
    API_VERSION_HEADER,
    API_VERSION_VALUE,
    CONTENT_DIGEST_HEADER,
    DOCKER_MANIFEST_V2,
    OCI_INDEX,
    OCI_MANIFEST,
)

# The audience of tokens: the configured service (TOKEN_SERVICE), whatever Host clients send.
SERVICE = "pulp-container"

NAMESPACE_ROLES = {
    "owner": "container.containernamespace_owner",
    "collaborator": "container.containernamespace_collaborator",
    "consumer": "container.containernamespace_consumer",
}

LAYER_MEDIA_TYPE = {
    OCI_MANIFEST: "application/vnd.oci.image.layer.v1.tar+gzip",
    DOCKER_MANIFEST_V2: "application/vnd.docker.image.rootfs.diff.tar.gzip",
}
CONFIG_MEDIA_TYPE = {
    OCI_MANIFEST: "application/vnd.oci.image.config.v1+json",
    DOCKER_MANIFEST_V2: "application/vnd.docker.container.image.v1+json",
}


def password_of(username: str) -> str:
    return f"{username}-password"


def basic_authorization(username: str, password: str | None = None) -> str:
    pair = f"{username}:{password if password is not None else password_of(username)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


# --- the HTTP side ---------------------------------------------------------------------------


class RegistryClient:
    """A registry client: one Django test client and the Authorization header it sends."""

    def __init__(self, authorization: str | None = None) -> None:
        self.client = Client()
        self.authorization = authorization

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str = "application/octet-stream",
        **headers: str,
    ) -> HttpResponse:
        if self.authorization is not None:
            headers.setdefault("Authorization", self.authorization)
        response = self.client.generic(
            method, path, body, content_type=content_type, headers=headers
        )
        if path.startswith("/v2"):
            # OCI distribution spec: every answer of the API names its version.
            assert response.get(API_VERSION_HEADER) == API_VERSION_VALUE, (method, path)
        return response

    def get(self, path: str, **headers: str) -> HttpResponse:
        return self.request("GET", path, **headers)

    def head(self, path: str, **headers: str) -> HttpResponse:
        return self.request("HEAD", path, **headers)

    def post(self, path: str, body: bytes = b"", **headers: str) -> HttpResponse:
        return self.request("POST", path, body, **headers)

    def patch(self, path: str, body: bytes = b"", **headers: str) -> HttpResponse:
        return self.request("PATCH", path, body, **headers)

    def put(self, path: str, body: bytes = b"", **headers: str) -> HttpResponse:
        return self.request("PUT", path, body, **headers)

    def delete(self, path: str, **headers: str) -> HttpResponse:
        return self.request("DELETE", path, **headers)

    # Pushing, the way clients do it.

    def start_upload(self, name: str) -> HttpResponse:
        response = self.post(f"/v2/{name}/blobs/uploads/")
        assert response.status_code == 202, error_of(response)
        return response

    def push_blob(self, name: str, data: bytes) -> str:
        """Push ``data`` monolithically (``POST ?digest=``); return its digest."""
        digest = sha256_digest(data)
        response = self.post(f"/v2/{name}/blobs/uploads/?digest={digest}", data)
        assert response.status_code == 201, error_of(response)
        return digest

    def push_blob_in_chunks(self, name: str, data: bytes, chunk_size: int) -> str:
        """POST, one PATCH per chunk with its Content-Range, then an empty PUT."""
        digest = sha256_digest(data)
        location = self.start_upload(name)["Location"]
        for start in range(0, len(data), chunk_size):
            chunk = data[start : start + chunk_size]
            response = self.patch(
                location, chunk, Content_Range=f"{start}-{start + len(chunk) - 1}"
            )
            assert response.status_code == 202, error_of(response)
            location = response["Location"]
        response = self.put(f"{location}?digest={digest}")
        assert response.status_code == 201, error_of(response)
        return digest

    def push_manifest(
        self, name: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST
    ) -> HttpResponse:
        return self.put(f"/v2/{name}/manifests/{reference}", body, content_type=media_type)

    def push_image(
        self,
        name: str,
        tag: str | None = "latest",
        layers: Iterable[bytes] | None = None,
        media_type: str = OCI_MANIFEST,
    ) -> PushedImage:
        """Push a config, its layers and a manifest tagged ``tag`` (by digest when None)."""
        layer_data = list(layers) if layers is not None else [os.urandom(512)]
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(8).hex()})
        config_digest = self.push_blob(name, config.encode())
        layer_digests = [self.push_blob(name, data) for data in layer_data]
        body = image_manifest(config_digest, len(config), layer_digests, layer_data, media_type)
        digest = sha256_digest(body)
        response = self.push_manifest(name, tag or digest, body, media_type)
        assert response.status_code == 201, error_of(response)
        assert response[CONTENT_DIGEST_HEADER] == digest
        return PushedImage(name, tag, digest, body, media_type, config_digest, layer_digests)


@dataclass(frozen=True)
class PushedImage:
    name: str
    tag: str | None
    digest: str
    body: bytes
    media_type: str
    config_digest: str
    layer_digests: list[str] = field(default_factory=list)

    @property
    def blob_digests(self) -> list[str]:
        return [self.config_digest, *self.layer_digests]


def error_of(response: HttpResponse) -> Any:
    """The response's error body, for assertion messages."""
    try:
        return response.status_code, json.loads(response.content)
    except ValueError:
        return response.status_code, response.content[:200]


def error_codes(response: HttpResponse) -> list[str]:
    return [error["code"] for error in json.loads(response.content)["errors"]]


def descriptor(media_type: str, digest: str, size: int, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def image_manifest(
    config_digest: str,
    config_size: int,
    layer_digests: list[str],
    layer_data: list[bytes],
    media_type: str = OCI_MANIFEST,
) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(CONFIG_MEDIA_TYPE[media_type], config_digest, config_size),
        "layers": [
            descriptor(LAYER_MEDIA_TYPE[media_type], digest, len(data))
            for digest, data in zip(layer_digests, layer_data, strict=True)
        ],
    }
    return json.dumps(document, indent=2).encode()


def index_manifest(images: list[PushedImage], media_type: str = OCI_INDEX) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            descriptor(
                image.media_type,
                image.digest,
                len(image.body),
                platform={"architecture": arch, "os": "linux"},
            )
            for image, arch in zip(images, ["amd64", "arm64", "s390x", "ppc64le"], strict=False)
        ],
    }
    return json.dumps(document).encode()


def mint_token(user, *scopes: str, service: str = SERVICE) -> str:
    """A real token from the token endpoint, as docker and podman get one (GET, Basic)."""
    query = urlencode([("service", service), *(("scope", scope) for scope in scopes)])
    headers = {}
    if user is not None:
        headers["Authorization"] = basic_authorization(user.get_username())
    response = Client().get(f"/token/?{query}", headers=headers)
    assert response.status_code == 200, error_of(response)
    return response.json()["token"]


def push_scopes(name: str) -> tuple[str, ...]:
    """What a client asks for to push to ``name`` (and cancel its uploads)."""
    return (f"repository:{name}:pull,push,delete",)


# --- the database side -----------------------------------------------------------------------


def repository_named(name: str) -> ContainerRepository:
    return ContainerRepository.objects.get(name=name)


def latest_version(name: str) -> RepositoryVersion:
    return repository_named(name).latest_version()


def latest_content(name: str) -> dict[str, set[str]]:
    """What a pull of ``name`` sees: blob and manifest digests, and tag -> manifest digest."""
    version = latest_version(name)
    pks = version.content_ids_subquery()
    return {
        "blobs": set(Blob.objects.filter(pk__in=pks).values_list("digest", flat=True)),
        "manifests": set(Manifest.objects.filter(pk__in=pks).values_list("digest", flat=True)),
        "tags": {
            f"{tag.name}={tag.tagged_manifest.digest}"
            for tag in Tag.objects.filter(pk__in=pks).select_related("tagged_manifest")
        },
    }


def pending_digests(name: str) -> set[str]:
    """Digests of the blobs a push to ``name`` has uploaded or mounted but not yet committed."""
    pending = PendingContent.objects.filter(repository__name=name).values_list(
        "content_id", flat=True
    )
    return set(Blob.objects.filter(pk__in=pending).values_list("digest", flat=True))


def make_distribution(name: str, private: bool) -> ContainerDistribution:
    """A pushable repository at ``name``, in its namespace (created if need be)."""
    namespace, _ = ContainerNamespace.objects.get_or_create(name=name.split("/", 1)[0])
    repository = ContainerRepository.objects.create(name=name)
    return ContainerDistribution.objects.create(
        name=name, base_path=name, repository=repository, namespace=namespace, private=private
    )


# --- Pulp's REST API -------------------------------------------------------------------------


class Rest:
    """A REST client authenticated with Basic credentials, as pulp-cli is."""

    def __init__(self, user) -> None:
        self.client = Client()
        self.headers = {"Authorization": basic_authorization(user.get_username())} if user else {}

    def get(self, path: str, **params):
        return self.client.get(path, params, headers=self.headers)

    def post(self, path: str, body: dict):
        return self.client.post(
            path, json.dumps(body), content_type="application/json", headers=self.headers
        )

    def patch(self, path: str, body: dict):
        return self.client.patch(
            path, json.dumps(body), content_type="application/json", headers=self.headers
        )

    def delete(self, path: str):
        return self.client.delete(path, headers=self.headers)

    def results(self, path: str, **params) -> list[dict]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.content
        return response.json()["results"]


def run_task(response, expect: str = "completed") -> Task:
    """Run the task a 202 answer names, as a worker runs it, and return it.

    pulpcore runs some tasks (a distribution's create, a repository's update) in the API process
    itself when their resources are free; those have completed already.
    """
    assert response.status_code == 202, response.content
    task_pk = response.json()["task"].rstrip("/").rsplit("/", 1)[-1]
    task = Task.objects.get(pk=task_pk)
    if task.state == "waiting":
        # The worker's own entry point (not in pulpcore.plugin; tests only).
        from pulpcore.tasking.tasks import execute_task

        # A worker takes the task's lock in its own name first.
        app_status = apps.get_model("core", "AppStatus").objects.current()
        Task.objects.filter(pk=task.pk).update(app_lock=app_status)
        task.refresh_from_db()
        execute_task(task)
        task.refresh_from_db()
    assert task.state == expect, (task.state, task.error)
    return task
