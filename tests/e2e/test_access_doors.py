"""Every door to a private repository stays shut: the content app, the REST API, aliases.

Two findings, reproduced as real users would, against the running server:

1. **The content app served private repositories to anyone.** pulpcore-content
   (``CONTENT_ORIGIN``) listed every container distribution and returned a private repository's
   blob bytes to an anonymous ``GET``. Now it lists and serves no container distribution (404 for
   everyone, the administrator included), the REST API advertises the registry URL
   (``https://<api host>/v2/<name>/``) as a distribution's ``base_url``, and no file
   distribution may serve a container repository.
2. **A distribution could take over another user's repository.** Anyone could create a
   distribution in their own namespace serving someone else's repository, then push through it,
   tag, untag, remove images from or delete the victim's repository, and keep serving it
   anonymously after the owner made it private. Now making a name serve another name's
   repository needs push on that repository, and an alias that exists anyway (the administrator
   made it) never widens a right: through it a user gets what the alias allows *and* what the
   repository's own name allows.

The victim is a user who pushes with skopeo to their own namespace and makes the distribution
private through REST. The attackers are an outsider and a pull-only consumer of the victim's
namespace. Users and names are new on every run (the server's data persists).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from harness.container_tools import Skopeo, ToolError
from harness.oci_images import MEDIA_TYPE_MANIFEST, ImageInfo, build_image, read_blob
from harness.pulp_api import API, create_user, wait_for_task
from harness.registry_http import RegistryHTTP, RunningRegistry, session_factory
from tests.e2e.hierarchy import fresh_seed, gz, skopeo_for
from tests.e2e.test_pulp_cli import _pulp_executable

Credentials = tuple[str, str]
DISTRIBUTIONS = f"{API}/distributions/container/container/"
# How skopeo reports a registry's refusal (not a network or TLS failure).
DENIED = r"(?i)unauthorized|denied|forbidden|authentication required"


# --- users, sessions, pulp-cli --------------------------------------------------------------


def _new_user(registry: RunningRegistry, prefix: str) -> Credentials:
    username = f"{prefix}{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    create_user(registry, username, password)
    return username, password


def _rest(registry: RunningRegistry, credentials: Credentials | None) -> requests.Session:
    """A REST session as ``credentials`` (Basic auth), or anonymous with ``None``."""
    return session_factory(registry.verify, credentials)()


def _registry_http(registry: RunningRegistry, credentials: Credentials | None) -> RegistryHTTP:
    """``/v2/`` as ``credentials``, or anonymously with ``None`` (``registry.http(None)`` would
    be the administrator)."""
    return RegistryHTTP(registry.url, credentials, verify=registry.verify)


PulpAs = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def pulp_as(registry: RunningRegistry, tmp_path: Path) -> PulpAs:
    """``pulp_as(credentials, *arguments)``: runs pulp-cli as that user, returns the process.

    Configured as in ``test_pulp_cli``: TLS verified against the server's CA (the
    ``REQUESTS_CA_BUNDLE`` pulp-cli's requests honours; the host's ``CURL_CA_BUNDLE`` dropped),
    config and API-schema cache in this test's directory.
    """
    executable = _pulp_executable()
    environment = {
        **os.environ,
        "REQUESTS_CA_BUNDLE": str(registry.ca_cert),
        "XDG_CONFIG_HOME": str(tmp_path / "pulp-config"),
        "XDG_CACHE_HOME": str(tmp_path / "pulp-cache"),
    }
    environment.pop("CURL_CA_BUNDLE", None)

    def run(credentials: Credentials, *arguments: str) -> subprocess.CompletedProcess:
        user, password = credentials
        command = [executable, "--base-url", registry.url, "--username", user]
        command += ["--password", password, "--format", "json", *arguments]
        return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=180)

    return run


# --- the victim: a private repository pushed with skopeo ------------------------------------


@dataclass
class Victim:
    credentials: Credentials
    name: str
    layout: Path
    image: ImageInfo
    repository_href: str
    distribution_href: str
    skopeo: Skopeo

    @property
    def username(self) -> str:
        return self.credentials[0]

    def blobs(self) -> dict[str, bytes]:
        """Every blob of the pushed image (config and layers), digest -> bytes."""
        return {digest: read_blob(self.layout, digest) for digest in self.image.blob_digests}


def _push_private_repository(
    registry: RunningRegistry, skopeo_home: Callable[[str], Path], work_dir: Path
) -> Victim:
    credentials = _new_user(registry, "vic")
    name = f"{credentials[0]}/secret-{secrets.token_hex(3)}"
    layout = work_dir / "victim-src"
    seed = fresh_seed()
    image = build_image(layout, [gz(seed, 8 * 1024), gz(seed + 1, 4 * 1024)], "latest")
    skopeo = skopeo_for(credentials, skopeo_home("victim"))
    skopeo.copy(f"oci:{layout}:latest", registry.reference(name, "latest"))

    owner = _rest(registry, credentials)
    response = owner.get(f"{registry.url}{DISTRIBUTIONS}", params={"name": name}, timeout=60)
    assert response.status_code == 200, response.text
    (distribution,) = response.json()["results"]
    assert distribution["private"] is False  # a first push makes a public distribution
    victim = Victim(
        credentials=credentials,
        name=name,
        layout=layout,
        image=image,
        repository_href=distribution["repository"],
        distribution_href=distribution["pulp_href"],
        skopeo=skopeo,
    )
    _set_private(registry, victim, True)
    return victim


def _set_private(registry: RunningRegistry, victim: Victim, private: bool) -> None:
    """The owner makes their distribution private (or public again) over REST."""
    owner = _rest(registry, victim.credentials)
    href = f"{registry.url}{victim.distribution_href}"
    response = owner.patch(href, json={"private": private}, timeout=60)
    assert response.status_code in (200, 202), response.text
    if response.status_code == 202:
        wait_for_task(registry, response.json()["task"])
    distribution = owner.get(href, timeout=60).json()
    assert distribution["private"] is private, distribution


@pytest.fixture
def victim(registry: RunningRegistry, skopeo_home: Callable[[str], Path], work_dir: Path) -> Victim:
    return _push_private_repository(registry, skopeo_home, work_dir)


def _anonymous_skopeo(skopeo_home: Callable[[str], Path], label: str) -> Skopeo:
    """skopeo with no credentials at all, and a ``HOME`` of its own (no stored logins)."""
    return dataclasses.replace(skopeo_for(("-", "-"), skopeo_home(label)), credentials=None)


def _latest_digest(registry: RunningRegistry, victim: Victim) -> str:
    """The digest ``latest`` resolves to, asked through ``/v2/`` with the owner's token."""
    response = _registry_http(registry, victim.credentials).get_manifest(
        victim.name, "latest", MEDIA_TYPE_MANIFEST
    )
    assert response.status_code == 200, (response.status_code, response.text)
    return response.headers["Docker-Content-Digest"]


def _latest_version(registry: RunningRegistry, victim: Victim) -> str:
    response = _rest(registry, victim.credentials).get(
        f"{registry.url}{victim.repository_href}", timeout=60
    )
    assert response.status_code == 200, response.text
    return str(response.json()["latest_version_href"])


def _tags_list(registry: RunningRegistry, base_url: str, credentials: Credentials | None):
    """``GET <base_url>tags/list``, answering the registry's token challenge as ``credentials``."""
    name = base_url.split("/v2/", 1)[1].rstrip("/")
    return _registry_http(registry, credentials).request(
        "GET", f"{base_url}tags/list", scope=f"repository:{name}:pull"
    )


# --- finding 1: the content app ----------------------------------------------------------------


def _content_root(registry: RunningRegistry) -> str:
    """``CONTENT_ORIGIN`` + ``CONTENT_PATH_PREFIX``, as the server reports them."""
    response = _rest(registry, None).get(f"{registry.url}{API}/status/", timeout=60)
    response.raise_for_status()
    content = response.json()["content_settings"]
    return content["content_origin"].rstrip("/") + content["content_path_prefix"]


def test_content_app_lists_and_serves_no_private_repository(
    registry: RunningRegistry, victim: Victim
) -> None:
    root = _content_root(registry)
    blobs = victim.blobs()
    paths = [f"{victim.name}/", f"{victim.name}/manifests/latest"]
    for digest in [*blobs, victim.image.manifest_digest]:
        paths += [f"{victim.name}/{digest}", f"{victim.name}/blobs/{digest}"]

    for who, credentials in (("anonymous", None), ("admin", registry.admin)):
        session = _rest(registry, credentials)
        listing = session.get(root, timeout=60)
        assert listing.status_code == 200, (who, listing.status_code)
        assert victim.username not in listing.text, (who, listing.text)
        namespace = session.get(f"{root}{victim.username}/", timeout=60)
        assert victim.name.split("/", 1)[1] not in namespace.text, (who, namespace.text)

        for path in paths:
            response = session.get(f"{root}{path}", timeout=60, allow_redirects=True)
            assert response.status_code == 404, (who, path, response.status_code)
            for digest, data in blobs.items():
                assert data not in response.content, (who, path, f"bytes of {digest}")

    # The registry, meanwhile, still serves the owner everything.
    owner = _registry_http(registry, victim.credentials)
    for digest, data in blobs.items():
        response = owner.request(
            "GET", f"/v2/{victim.name}/blobs/{digest}", scope=f"repository:{victim.name}:pull"
        )
        if response.status_code in (301, 302, 307, 308):
            response = owner.session.get(owner.absolute(response.headers["Location"]))
        assert response.status_code == 200, (digest, response.status_code)
        assert response.content == data


def test_base_url_is_the_registry_which_refuses_outsiders(
    registry: RunningRegistry, victim: Victim, pulp_as: PulpAs
) -> None:
    outsider = _new_user(registry, "out")
    shown = pulp_as(victim.credentials, "container", "distribution", "show", "--name", victim.name)
    assert shown.returncode == 0, shown.stderr
    distribution = json.loads(shown.stdout)
    base_url = distribution["base_url"]
    assert base_url == f"{registry.url}/v2/{victim.name}/", distribution
    assert distribution["private"] is True

    assert _tags_list(registry, base_url, outsider).status_code == 401
    assert _tags_list(registry, base_url, None).status_code == 401
    allowed = _tags_list(registry, base_url, victim.credentials)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {"name": victim.name, "tags": ["latest"]}


def _refused(registry: RunningRegistry, response: requests.Response) -> str:
    """The refusal of a file distribution's create or update: a 400, or (pulpcore dispatches
    distribution writes to a task) a 202 whose task fails. Returns the error text."""
    if response.status_code == 202:
        session = _rest(registry, registry.admin)
        href = response.json()["task"]
        with pytest.raises(AssertionError, match="'failed'"):
            wait_for_task(registry, href)
        return str(session.get(f"{registry.url}{href}", timeout=60).json()["error"])
    assert response.status_code == 400, (response.status_code, response.text)
    return response.text


def test_file_distribution_cannot_serve_a_container_repository(
    registry: RunningRegistry, victim: Victim
) -> None:
    files = f"{registry.url}{API}/distributions/file/file/"
    admin = _rest(registry, registry.admin)
    base_path = f"{victim.username}-file-{secrets.token_hex(3)}"
    body = {"name": base_path, "base_path": base_path, "repository": victim.repository_href}
    error = _refused(registry, admin.post(files, json=body, timeout=60))
    assert "container repository is served only by container distributions" in error, error
    listed = admin.get(files, params={"name": base_path}, timeout=60)
    assert listed.json()["count"] == 0, listed.text

    # Nor may an existing file distribution be pointed at it.
    body = {"name": base_path, "base_path": base_path}
    response = admin.post(files, json=body, timeout=60)
    assert response.status_code == 202, response.text
    wait_for_task(registry, response.json()["task"])
    (existing,) = admin.get(files, params={"name": base_path}, timeout=60).json()["results"]
    href = f"{registry.url}{existing['pulp_href']}"
    patch = {"repository": victim.repository_href}
    error = _refused(registry, admin.patch(href, json=patch, timeout=60))
    assert "container repository is served only by container distributions" in error, error
    assert admin.get(href, timeout=60).json()["repository"] is None

    root = _content_root(registry)
    for digest, data in victim.blobs().items():
        response = _rest(registry, None).get(f"{root}{base_path}/{digest}", timeout=60)
        assert response.status_code == 404
        assert data not in response.content
    admin.delete(href, timeout=60)


# --- finding 2: a distribution serving someone else's repository --------------------------------


def _attacker(registry: RunningRegistry, victim: Victim, kind: str) -> Credentials:
    """An outsider, or a user the victim made a pull-only consumer of their namespace."""
    attacker = _new_user(registry, kind[:3])
    if kind == "consumer":
        owner = _rest(registry, victim.credentials)
        namespaces = owner.get(
            f"{registry.url}{API}/pulp_container/namespaces/", params={"limit": 1000}, timeout=60
        ).json()["results"]
        (namespace,) = [n for n in namespaces if n["name"] == victim.username]
        response = owner.post(
            f"{registry.url}{namespace['pulp_href']}add_role/",
            json={"role": "container.containernamespace_consumer", "users": [attacker[0]]},
            timeout=60,
        )
        assert response.status_code == 201, response.text
        # The role took effect: the consumer pulls the private repository under its own name.
        tags = _tags_list(registry, f"{registry.url}/v2/{victim.name}/", attacker)
        assert tags.status_code == 200, tags.text
    return attacker


def _distributions_named(registry: RunningRegistry, name: str) -> list[dict]:
    response = _rest(registry, registry.admin).get(
        f"{registry.url}{DISTRIBUTIONS}", params={"name": name}, timeout=60
    )
    response.raise_for_status()
    return list(response.json()["results"])


@pytest.mark.parametrize("kind", ["outsider", "outsider-while-public", "consumer"])
def test_no_one_publishes_anothers_repository_under_their_name(
    registry: RunningRegistry,
    victim: Victim,
    pulp_as: PulpAs,
    skopeo_home: Callable[[str], Path],
    work_dir: Path,
    kind: str,
) -> None:
    attacker = _attacker(registry, victim, kind)
    if kind == "outsider-while-public":
        # Before the owner made it private: everyone sees (and pulls) the repository.
        _set_private(registry, victim, False)
    steal = f"{attacker[0]}/steal"
    created = pulp_as(
        attacker,
        *("container", "distribution", "create", "--name", steal, "--base-path", steal),
        *("--repository", victim.repository_href),
    )
    assert created.returncode != 0, created.stdout
    # The outsider cannot even look the repository up; the consumer's POST is refused.
    refusal = "No ContainerRepository matches" if kind == "outsider" else "is not authorized"
    assert refusal in created.stderr, created.stderr
    assert _distributions_named(registry, steal) == []

    session = _rest(registry, attacker)
    body = {"name": steal, "base_path": steal, "repository": victim.repository_href}
    response = session.post(f"{registry.url}{DISTRIBUTIONS}", json=body, timeout=60)
    assert response.status_code == 403, (response.status_code, response.text)
    assert _distributions_named(registry, steal) == []

    # Nor by pointing a distribution of their own (from their own push) at it.
    mine = f"{attacker[0]}/mine"
    layout = work_dir / "attacker-src"
    build_image(layout, [gz(fresh_seed(), 2048)], "latest")
    skopeo_for(attacker, skopeo_home(f"{kind}-own")).copy(
        f"oci:{layout}:latest", registry.reference(mine, "latest")
    )
    (own,) = _distributions_named(registry, mine)
    response = session.patch(
        f"{registry.url}{own['pulp_href']}",
        json={"repository": victim.repository_href},
        timeout=60,
    )
    assert response.status_code == 403, (response.status_code, response.text)
    (own,) = _distributions_named(registry, mine)
    assert own["repository"] != victim.repository_href

    # The victim's repository is served under its own name only; private, none pulls it.
    _set_private(registry, victim, True)
    serving = _rest(registry, registry.admin).get(
        f"{registry.url}{DISTRIBUTIONS}", params={"repository": victim.repository_href}, timeout=60
    )
    assert [d["name"] for d in serving.json()["results"]] == [victim.name], serving.text
    assert _tags_list(registry, f"{registry.url}/v2/{victim.name}/", None).status_code == 401


@pytest.mark.parametrize("kind", ["outsider", "consumer"])
def test_an_alias_never_widens_rights(
    registry: RunningRegistry,
    victim: Victim,
    skopeo_home: Callable[[str], Path],
    work_dir: Path,
    kind: str,
) -> None:
    attacker = _attacker(registry, victim, kind)
    _set_private(registry, victim, False)  # the alias is made while the repository is public
    before_digest = _latest_digest(registry, victim)
    before_version = _latest_version(registry, victim)
    assert before_digest == victim.image.manifest_digest

    # The alias exists anyway: the administrator may make it (public, in the attacker's name).
    steal = f"{attacker[0]}/steal"
    admin = _rest(registry, registry.admin)
    body = {"name": steal, "base_path": steal, "repository": victim.repository_href}
    response = admin.post(
        f"{registry.url}{DISTRIBUTIONS}", json={**body, "private": False}, timeout=60
    )
    assert response.status_code in (201, 202), response.text
    if response.status_code == 202:
        wait_for_task(registry, response.json()["task"])
    (alias,) = _distributions_named(registry, steal)
    assert alias["private"] is False and alias["repository"] == victim.repository_href
    _set_private(registry, victim, True)  # then the owner makes their repository private

    # The attacker pushes an image of their own through the alias: refused.
    layout = work_dir / "attacker-src"
    build_image(layout, [gz(fresh_seed(), 2048)], "latest")
    attacker_skopeo = skopeo_for(attacker, skopeo_home(f"{kind}-push"))
    with pytest.raises(ToolError, match=DENIED):
        attacker_skopeo.copy(f"oci:{layout}:latest", registry.reference(steal, "latest"))

    # Anonymous pulls through the public alias of the private repository: refused.
    anonymous = _anonymous_skopeo(skopeo_home, f"{kind}-anonymous")
    with pytest.raises(ToolError, match=DENIED):
        anonymous.inspect_raw(registry.reference(steal, "latest"))
    assert _tags_list(registry, f"{registry.url}/v2/{steal}/", None).status_code == 401
    blob = victim.image.layer_digests[0]
    response = _registry_http(registry, None).request(
        "GET", f"/v2/{steal}/blobs/{blob}", scope=f"repository:{steal}:pull"
    )
    assert response.status_code == 401, response.status_code
    assert victim.blobs()[blob] not in response.content

    # Through the alias the attacker pulls only what the repository's own name lets them.
    through_alias = _tags_list(registry, f"{registry.url}/v2/{steal}/", attacker)
    assert through_alias.status_code == (200 if kind == "consumer" else 401), through_alias.text
    if kind == "outsider":
        with pytest.raises(ToolError, match=DENIED):
            attacker_skopeo.inspect_raw(registry.reference(steal, "latest"))

    # The victim's repository over REST: no tag, untag, remove_image or delete.
    session = _rest(registry, attacker)
    href = f"{registry.url}{victim.repository_href}"
    attempts = [
        ("tag", {"tag": "pwned", "digest": victim.image.manifest_digest}),
        ("untag", {"tag": "latest"}),
        ("remove_image", {"tag": "latest"}),
        ("remove_image", {"digest": victim.image.manifest_digest}),
    ]
    for operation, data in attempts:
        response = session.post(f"{href}{operation}/", json=data, timeout=60)
        assert response.status_code in (403, 404), (operation, response.status_code, response.text)
    response = session.delete(href, timeout=60)
    assert response.status_code in (403, 404), (response.status_code, response.text)

    # Nothing changed: same latest, same repository version, the repository still there.
    assert _latest_digest(registry, victim) == before_digest
    assert _latest_version(registry, victim) == before_version
    tags = _tags_list(registry, f"{registry.url}/v2/{victim.name}/", victim.credentials)
    assert tags.json()["tags"] == ["latest"]
    pulled = victim.skopeo.inspect_raw(registry.reference(victim.name, "latest"))
    assert pulled == read_blob(victim.layout, victim.image.manifest_digest)
