"""A user pushes an image with skopeo, then inspects and manages it with pulp-cli.

pulp-cli (0.41, from PyPI) talks to the running server's REST API exactly as a user's does; each
test reads what it prints (JSON) and checks it against the image it built and pushed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.container_tools import Skopeo
from harness.oci_images import ImageInfo, Layer, build_image
from harness.registry_http import RunningRegistry


def _pulp_executable() -> str:
    beside_python = Path(sys.executable).parent / "pulp"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("pulp")
    if found is None:
        pytest.skip("pulp-cli is not installed (pip install 'pulp-cli==0.41.*')")
    return found


PulpCli = Callable[..., Any]


@pytest.fixture
def pulp(registry: RunningRegistry, tmp_path: Path) -> PulpCli:
    """``pulp(*arguments)``: runs pulp-cli as the admin and returns its parsed JSON output.

    TLS is verified against the server's CA (``REQUESTS_CA_BUNDLE``, which the requests library
    pulp-cli uses honours); pulp-cli's config and its cache of the API schema live in this
    test's directory, so neither a user's settings nor a schema cached from another server
    version leak in.
    """
    executable = _pulp_executable()
    user, password = registry.admin
    environment = {
        **os.environ,
        "REQUESTS_CA_BUNDLE": str(registry.ca_cert),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    environment.pop("CURL_CA_BUNDLE", None)
    base = [
        executable,
        "--base-url",
        registry.url,
        "--username",
        user,
        "--password",
        password,
        "--format",
        "json",
    ]

    def run(*arguments: str) -> Any:
        result = subprocess.run(
            [*base, *arguments],
            env=environment,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"pulp {' '.join(arguments)}\n{result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else None

    return run


@pytest.fixture
def pushed(
    registry: RunningRegistry, skopeo: Skopeo, work_dir: Path, repository_name
) -> tuple[str, ImageInfo]:
    """A two-layer image pushed with skopeo to a name of this test's own, tagged ``v1``."""
    name = repository_name()
    image = build_image(
        work_dir / "src",
        [Layer(seed=501, size=4096, compressed=True), Layer(seed=502, size=2048, compressed=True)],
        tag="v1",
    )
    skopeo.copy(f"oci:{work_dir / 'src'}:v1", registry.reference(name, "v1"))
    return name, image


def _digests(units: list[dict]) -> set[str]:
    return {unit["digest"] for unit in units}


def _tag_names(units: list[dict]) -> set[str]:
    return {unit["name"] for unit in units}


def test_pulp_cli_shows_a_pushed_image(pulp: PulpCli, pushed, registry: RunningRegistry):
    name, image = pushed
    assert name in {
        repository["name"]
        for repository in pulp("container", "repository", "list", "--limit", "1000")
    }
    repository = pulp("container", "repository", "show", "--name", name)
    assert repository["name"] == name
    version_href = repository["latest_version_href"]
    assert version_href.endswith("/versions/1/")

    versions = pulp("container", "repository", "version", "list", "--repository", name)
    assert [version["number"] for version in versions] == [1, 0]
    present = versions[0]["content_summary"]["present"]
    assert {kind: entry["count"] for kind, entry in present.items()} == {
        "container.blob": 3,
        "container.manifest": 1,
        "container.tag": 1,
    }

    distribution = pulp("container", "distribution", "show", "--name", name)
    assert distribution["base_path"] == name
    assert distribution["repository"] == repository["pulp_href"]
    assert distribution["registry_path"] == f"{registry.host}/{name}"
    assert name in {d["name"] for d in pulp("container", "distribution", "list", "--limit", "1000")}

    blobs = {image.config_digest, *image.layer_digests}
    for selector in (["--repository-version", version_href], ["--distribution", name]):
        content = ["container", "content"]
        assert _digests(pulp(*content, "-t", "blob", "list", *selector)) == blobs
        (manifest,) = pulp(*content, "-t", "manifest", "list", *selector)
        assert manifest["digest"] == image.manifest_digest
        assert manifest["media_type"] == image.media_type
        assert len(manifest["blobs"]) == len(image.layer_digests)
        (tag,) = pulp(*content, "-t", "tag", "list", *selector)
        assert tag["name"] == "v1"
        assert tag["tagged_manifest"] == manifest["pulp_href"]


def test_pulp_cli_tags_and_untags(pulp: PulpCli, pushed, registry: RunningRegistry, skopeo: Skopeo):
    name, image = pushed
    pulp(
        "container",
        "repository",
        "tag",
        "--name",
        name,
        "--tag",
        "stable",
        "--digest",
        image.manifest_digest,
    )
    tags = pulp("container", "content", "-t", "tag", "list", "--distribution", name)
    assert _tag_names(tags) == {"v1", "stable"}
    # The registry serves the new tag at once.
    assert json.loads(skopeo.inspect_raw(registry.reference(name, "stable")))["config"][
        "digest"
    ] == (image.config_digest)

    pulp("container", "repository", "untag", "--name", name, "--tag", "v1")
    tags = pulp("container", "content", "-t", "tag", "list", "--distribution", name)
    assert _tag_names(tags) == {"stable"}
    versions = pulp("container", "repository", "version", "list", "--repository", name)
    assert versions[0]["number"] == 3  # push, tag, untag: one version each


def test_pulp_cli_deletes_a_repository_with_its_distribution(pulp: PulpCli, pushed):
    name, _ = pushed
    pulp("container", "repository", "destroy", "--name", name)
    assert pulp("container", "distribution", "list", "--name", name) == []
    remaining = pulp("container", "repository", "list", "--limit", "1000")
    assert name not in {repository["name"] for repository in remaining}
