"""Every client we can install, against the registry, the way its users run it.

skopeo and podman have their stories in test_push_pull.py (round trips), test_mount.py and
test_fresh_runners.py (hierarchies that send only unique bytes). Here: buildah (Debian), oras-py
and python-dxf (PyPI), and the npm client ``oci-registry-client``. Each pushes and pulls back;
where a client can avoid sending a blob the registry has (a mount, or asking with HEAD first),
the server's own transfer records show that no shared blob was uploaded again.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dxf
import oras.client
import oras.oci
import pytest

from harness.container_tools import Buildah, Skopeo, run_command
from harness.oci_images import build_image, sha256_digest
from harness.pulp_api import blob_transfers
from harness.registry_http import RunningRegistry
from tests.e2e.hierarchy import gz

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SIGNATURE_TYPE = "application/vnd.example.signature.v1"


def require(tool: str) -> str:
    """The path of ``tool``; `make install` installs every client, so a missing one fails."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run 'make install' (scripts/install.sh)")
    return path


def assert_nothing_uploaded_twice(registry: RunningRegistry, first: str, second: str, digests):
    """``second`` got every blob of ``digests`` without its bytes: mounted or linked, never
    uploaded; ``first`` had uploaded them."""
    transfers = blob_transfers(registry, first.rsplit("-", 1)[0])
    uploaded_first = set(transfers.digests("uploaded", first))
    uploaded_second = set(transfers.digests("uploaded", second))
    assert set(digests) <= uploaded_first, transfers.describe()
    assert not uploaded_second & set(digests), transfers.describe()


# --- buildah -----------------------------------------------------------------------------------


@pytest.fixture
def buildah(registry: RunningRegistry, shared_root: Path) -> Buildah:
    require("buildah")
    state_dir = Path(tempfile.mkdtemp(prefix="bh-", dir=shared_root))
    return Buildah(state_dir=state_dir, credentials=registry.admin)


def test_buildah_pushes_pulls_back_and_sends_shared_layers_once(
    registry: RunningRegistry, buildah: Buildah, work_dir: Path, repository_name, skopeo: Skopeo
):
    seed = secrets.randbelow(1 << 40) * 1000
    layout = work_dir / "layout"
    image = build_image(layout, [gz(seed, 64 * 1024), gz(seed + 1, 32 * 1024)], "v1")
    first, second = repository_name("a"), repository_name("b")
    local = buildah.pull(f"oci:{layout}:v1")

    pushed = buildah.push(local, f"docker://{registry.host}/{first}:v1", work_dir / "d1")
    again = buildah.push(local, f"docker://{registry.host}/{second}:v1", work_dir / "d2")

    assert pushed == again
    config = json.loads(skopeo.inspect_raw(registry.reference(second, "v1")))["config"]
    assert config["digest"] == image.config_digest
    pulled = Buildah(buildah.state_dir / "pull", registry.admin)
    assert pulled.pull(registry.reference(second, "v1")) == image.config_digest.split(":")[1]
    manifest = json.loads(skopeo.inspect_raw(registry.reference(first, "v1")))
    layers = [layer["digest"] for layer in manifest["layers"]]
    assert_nothing_uploaded_twice(registry, first, second, layers)


# --- oras-py -----------------------------------------------------------------------------------


@pytest.fixture
def oras_client(registry: RunningRegistry) -> oras.client.OrasClient:
    """oras-py with basic credentials on every request. Its default token backend cannot push
    to a token-authenticating registry: it keeps the first token it gets (pull, from the HEAD
    that starts a push) and, told 401 insufficient_scope on the POST, retries with that same
    token; it asks for a new one only on 403. distribution answers 401 there too, as the token
    specification says, and so do we (docs/oci-support.md, "Clients")."""
    client = oras.client.OrasClient(
        hostname=registry.host, tls_verify=str(registry.ca_cert), auth_backend="basic"
    )
    user, password = registry.admin
    client.login(
        username=user, password=password, hostname=registry.host, tls_verify=str(registry.ca_cert)
    )
    return client


@pytest.fixture
def in_work_dir(work_dir: Path) -> Iterator[Path]:
    """oras-py takes files by paths relative to the working directory."""
    previous = Path.cwd()
    os.chdir(work_dir)
    try:
        yield work_dir
    finally:
        os.chdir(previous)


def test_oras_pushes_pulls_and_attaches_an_artifact_to_it(
    registry: RunningRegistry, oras_client, in_work_dir: Path, repository_name
):
    first, second = repository_name("a"), repository_name("b")
    payload = in_work_dir / "payload.bin"
    payload.write_bytes(os.urandom(8192))
    target = f"{registry.host}/{first}:v1"

    pushed = oras_client.push(target=target, files=[payload.name])
    # oras-py asks (HEAD) before it sends a blob: into a repository that exists, a blob the
    # pusher may read elsewhere is linked instead (a HEAD never creates a repository).
    first_file = in_work_dir / "first.bin"
    first_file.write_bytes(os.urandom(64))
    oras_client.push(target=f"{registry.host}/{second}:v0", files=[first_file.name])
    oras_client.push(target=f"{registry.host}/{second}:v1", files=[payload.name])

    assert pushed.status_code == 201
    digest = pushed.headers["Docker-Content-Digest"]
    pulled = oras_client.pull(target=target, outdir=str(in_work_dir / "pulled"))
    assert [Path(path).read_bytes() for path in pulled] == [payload.read_bytes()]
    assert_nothing_uploaded_twice(registry, first, second, [sha256_digest(payload.read_bytes())])

    manifest = registry.http().get_manifest(first, digest, OCI_MANIFEST)
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=digest, size=len(manifest.content))
    signature = in_work_dir / "signature.txt"
    signature.write_text("signed")
    attached = oras_client.push(
        target=f"{registry.host}/{first}:signature",
        files=[f"{signature.name}:{SIGNATURE_TYPE}"],
        subject=subject,
    )
    assert attached.status_code == 201
    assert attached.headers.get("OCI-Subject") == digest
    referrers = registry.http().request(
        "GET", f"/v2/{first}/referrers/{digest}", scope=f"repository:{first}:pull"
    )
    assert [entry["digest"] for entry in referrers.json()["manifests"]] == [
        attached.headers["Docker-Content-Digest"]
    ]


# --- python-dxf --------------------------------------------------------------------------------


def dxf_client(registry: RunningRegistry, name: str) -> dxf.DXF:
    """python-dxf as its README shows: authenticate with exactly what each challenge names."""
    user, password = registry.admin

    def auth(client: dxf.DXF, response) -> None:
        client.authenticate(user, password, response=response)

    return dxf.DXF(registry.host, name, auth, tlsverify=str(registry.ca_cert))


def test_dxf_pushes_pulls_and_mounts_with_from(registry: RunningRegistry, repository_name):
    first, second = repository_name("a"), repository_name("b")
    data = os.urandom(16384)
    source, target = dxf_client(registry, first), dxf_client(registry, second)

    digest = source.push_blob(data=data, digest=sha256_digest(data))
    source.set_alias("v1", digest)
    # mount_blob raises unless the answer is 201 Created.
    assert target.mount_blob(first, digest) == digest
    target.set_alias("v1", digest)

    assert b"".join(target.pull_blob(digest)) == data
    assert target.get_alias("v1") == [digest]
    assert source.list_aliases() == ["v1"]
    transfers = blob_transfers(registry, second)
    assert transfers.digests("mounted", second) == [digest], transfers.describe()
    assert_nothing_uploaded_twice(registry, first, second, [digest])


# --- npm: oci-registry-client -----------------------------------------------------------------


def npm_modules() -> Path:
    """Where scripts/install.sh installs the npm clients."""
    venv = Path(os.environ.get("PULP_VENV", REPOSITORY_ROOT / ".venv"))
    modules = venv / "npm" / "node_modules"
    if not (modules / "oci-registry-client").is_dir():
        pytest.fail(f"oci-registry-client is not in {modules}: run 'make install'")
    return modules


def test_npm_oci_registry_client_pushes_and_pulls_back(registry: RunningRegistry, repository_name):
    node = require("node")
    name = repository_name()
    user, password = registry.admin
    environment = {
        **os.environ,
        "NODE_PATH": str(npm_modules()),
        "NODE_EXTRA_CA_CERTS": str(registry.ca_cert),
    }
    script = Path(__file__).parent / "clients" / "oci_registry_client.js"

    output = run_command(
        [node, str(script), registry.host, name, "v1", user, password],
        timeout=120,
        env=environment,
    )

    result = json.loads(output)
    assert result["pushed_digest"] == result["manifest_digest"] == result["pulled_digest"]
    assert result["tags"] == ["v1"]
    assert result["blobs"] == {digest: digest for digest in result["sent"]}
    manifest = registry.http().get_manifest(name, "v1", OCI_MANIFEST)
    assert sha256_digest(manifest.content) == result["manifest_digest"]
