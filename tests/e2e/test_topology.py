"""Past one machine (issue 14): object storage and two API hosts that share no disk.

These run in the S3 + two-host stage of ``make test`` (scripts/test.sh: ``PULP_STORAGE=s3``,
``PULP_API_HOSTS=2``, a local S3 server started by scripts/run.sh) and skip elsewhere.
"""

from __future__ import annotations

import hashlib
import os
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests

from harness import api_hosts
from harness.registry_http import Challenge, RegistryHTTP, repository_scope

pytestmark = pytest.mark.skipif(
    os.environ.get("PULP_STORAGE") != "s3"
    or api_hosts.host_count() < 2
    or bool(os.environ.get("PULP_E2E_URL")),
    reason="needs the S3 + two-host topology started here (PULP_STORAGE=s3 PULP_API_HOSTS=2)",
)

MiB = 1024 * 1024


@pytest.fixture
def admin_http(registry) -> RegistryHTTP:
    return RegistryHTTP(registry.url, registry.admin, verify=registry.verify)


def bearer(http: RegistryHTTP, name: str) -> dict[str, str]:
    unauthenticated = requests.get(f"{http.url}/v2/", verify=http.verify, timeout=30)
    challenge = Challenge.parse(unauthenticated.headers["WWW-Authenticate"])
    return {"Authorization": f"Bearer {http.token(challenge, repository_scope(name))}"}


def s3_keys(prefix: str) -> list[str]:
    client = boto3.client(
        "s3",
        endpoint_url=os.environ["PULP_S3_ENDPOINT"],
        aws_access_key_id=os.environ["PULP_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["PULP_S3_SECRET_KEY"],
        region_name=os.environ["PULP_S3_REGION"],
    )
    bucket = os.environ["PULP_S3_BUCKET"]
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    return [o["Key"] for o in listed] + [f"multipart:{u['Key']}" for u in uploads]


def upload_prefixes(upload_id: str) -> list[str]:
    return s3_keys(f"container-uploads/{upload_id}") + s3_keys(
        f"artifact/container-uploads/{upload_id}"
    )


def test_an_upload_whose_chunks_alternate_between_hosts_commits_with_its_digest(
    registry, admin_http, repository_name
):
    name = repository_name()
    auth = bearer(admin_http, name)
    # Chunks smaller and larger than a part (16 MiB): pieces, parts, and pieces sent in a part.
    sizes = [3 * MiB, 7 * MiB, 20 * MiB, 1 * MiB + 7, 5]
    data = os.urandom(sum(sizes))
    digest = "sha256:" + hashlib.sha256(data).hexdigest()

    started = api_hosts.request(1, "POST", f"/v2/{name}/blobs/uploads/", registry.host, auth)
    assert started.status == 202, started.body
    location = started.headers["Location"]
    offset = 0
    for index, size in enumerate(sizes):
        host = 2 if index % 2 == 0 else 1
        chunk = data[offset : offset + size]
        answer = api_hosts.request(
            host,
            "PATCH",
            location,
            registry.host,
            {**auth, "Content-Range": f"{offset}-{offset + size - 1}"},
            chunk,
        )
        assert answer.status == 202, (host, answer.status, answer.body)
        offset += size
        assert answer.headers["Range"] == f"0-{offset - 1}"
        location = answer.headers["Location"]
    committed = api_hosts.request(
        2, "PUT", f"{location}{'&' if '?' in location else '?'}digest={digest}", registry.host, auth
    )

    assert committed.status == 201, committed.body
    assert committed.headers["Docker-Content-Digest"] == digest
    pulled = admin_http.request("GET", f"/v2/{name}/blobs/{digest}", scope=repository_scope(name))
    assert pulled.status_code == 200
    assert hashlib.sha256(pulled.content).hexdigest() == digest.split(":")[1]
    # Nothing of the upload on either host's disk, and nothing left in S3 but the blob.
    for host in (1, 2):
        working = api_hosts.host_working_directory(host)
        assert not list(working.rglob("*")), list(working.rglob("*"))
    upload_id = started.headers["Docker-Upload-UUID"]
    assert s3_keys(f"container-uploads/{upload_id}") == []


def test_a_blob_get_redirects_to_a_presigned_url_valid_for_a_minute(
    registry, admin_http, repository_name
):
    name = repository_name()
    data = os.urandom(5000)
    digest = admin_http.push_blob(name, data)

    answer = admin_http.request(
        "GET", f"/v2/{name}/blobs/{digest}", scope=repository_scope(name), allow_redirects=False
    )

    assert answer.status_code == 307
    target = answer.headers["Location"]
    assert target.startswith(os.environ["PULP_S3_ENDPOINT"])
    assert parse_qs(urlsplit(target).query)["X-Amz-Expires"] == ["60"]
    assert answer.headers["Docker-Content-Digest"] == digest
    assert requests.get(target, timeout=30).content == data
    # No access decision, no URL: an anonymous GET of a private name gets the challenge.
    anonymous = requests.get(
        f"{registry.url}/v2/{name}/blobs/{digest}",
        verify=registry.verify,
        allow_redirects=False,
        timeout=30,
    )
    assert anonymous.status_code == 401
    assert "Location" not in anonymous.headers


@pytest.mark.parametrize("ending", ["cancelled", "wrong-digest"])
def test_an_upload_that_does_not_commit_leaves_nothing_in_object_storage(
    registry, admin_http, repository_name, ending
):
    name = repository_name()
    auth = bearer(admin_http, name)
    data = os.urandom(18 * MiB)
    started = api_hosts.request(1, "POST", f"/v2/{name}/blobs/uploads/", registry.host, auth)
    upload_id = started.headers["Docker-Upload-UUID"]
    patched = api_hosts.request(2, "PATCH", started.headers["Location"], registry.host, auth, data)
    assert patched.status == 202, patched.body
    assert upload_prefixes(upload_id)  # a part and a piece are in S3

    location = patched.headers["Location"]
    if ending == "cancelled":
        answer = api_hosts.request(1, "DELETE", location, registry.host, auth)
        assert answer.status == 204, answer.body
    else:
        wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()
        sep = "&" if "?" in location else "?"
        answer = api_hosts.request(1, "PUT", f"{location}{sep}digest={wrong}", registry.host, auth)
        assert answer.status == 400, answer.body
        assert b"DIGEST_INVALID" in answer.body

    assert upload_prefixes(upload_id) == []
