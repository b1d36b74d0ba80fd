"""Pull-through (issue 16): the access decision comes first, and a remote that cannot answer is
MANIFEST_UNKNOWN (404), never a server error. (Fetching from real registries: tests/e2e.)"""

from __future__ import annotations

import json

from pulp_container.app.models import ContainerDistribution, ContainerRemote, ContainerRepository
from tests.registry.client import error_codes, error_of

NAME = "cache/app"
PATH = f"/v2/{NAME}/manifests/v1"


def test_pull_through_asks_the_access_decision_before_the_remote(admin, eve, registry):
    remote = ContainerRemote.objects.create(
        name="gone", url="http://127.0.0.1:9", upstream_name="library/app", max_retries=1
    )
    ContainerDistribution.objects.create(name=NAME, base_path=NAME, remote=remote, private=True)

    for client in (registry(None), registry(eve, f"repository:{NAME}:pull")):
        refused = client.get(PATH)
        assert refused.status_code in (401, 403), error_of(refused)
    assert not ContainerRepository.objects.filter(name=NAME).exists()  # nothing was fetched

    answer = registry(admin, f"repository:{NAME}:pull").get(PATH)
    assert answer.status_code == 404, error_of(answer)
    assert error_codes(answer) == ["MANIFEST_UNKNOWN"]
    assert "unreachable" in json.loads(answer.content)["errors"][0]["detail"]
    # The first fetch gave the distribution its repository, named after it; it holds nothing.
    repository = ContainerRepository.objects.get(name=NAME)
    assert ContainerDistribution.objects.get(base_path=NAME).repository_id == repository.pk
    assert repository.latest_version().number == 0
