"""``commit_version`` writes the repository versions pulpcore's generic path would write.

Two repositories receive the same random sequence of changes (adds, removes, retags, no-ops):
one through ``commit_version`` (the registry's lean commit), one through pulpcore's own
``new_version()`` context manager with ``add_content``/``remove_content``. After every step the
two must agree on everything pulpcore and its REST API read: each version's number, content and
``content_ids``, the relation rows with the versions that added and removed them, the
added/removed/present counts per content type, and ``next_version``.
"""

from __future__ import annotations

import os
import random

import pytest
from django.db import transaction
from pulpcore.plugin.models import Content, RepositoryContent, RepositoryVersion

from pulp_container.app.models import Blob, ContainerRepository, Manifest, Tag
from pulp_container.app.services.versions import commit_version, locked_repository


def _pool() -> list[Content]:
    blobs = [Blob.objects.create(digest=f"sha256:{os.urandom(32).hex()}") for _ in range(6)]
    manifests = [
        Manifest.objects.create(
            digest=f"sha256:{os.urandom(32).hex()}",
            media_type="application/vnd.oci.image.manifest.v1+json",
            schema_version=2,
            data="{}",
        )
        for _ in range(3)
    ]
    # Two tags named "stable" (a retag replaces one with the other), and two more.
    tags = [
        Tag.objects.create(name=name, tagged_manifest=manifest)
        for name, manifest in zip(
            ["stable", "stable", "edge", "v1"], manifests + manifests[:1], strict=True
        )
    ]
    return [*blobs, *manifests, *tags]


def _generic(repository: ContainerRepository, add: set, remove: set) -> None:
    with transaction.atomic():
        with repository.new_version() as version:
            if remove:
                version.remove_content(Content.objects.filter(pk__in=remove))
            if add:
                version.add_content(Content.objects.filter(pk__in=add))


def _lean(repository: ContainerRepository, add: set, remove: set) -> None:
    with locked_repository(repository.pk) as locked:
        commit_version(locked, add=add, remove=remove)


def _state(repository: ContainerRepository, names: dict) -> dict:
    """Everything about the repository's versions, with content pks replaced by pool names."""
    repository.refresh_from_db()
    versions = {}
    for version in RepositoryVersion.objects.filter(repository=repository).order_by("number"):
        versions[version.number] = {
            "complete": version.complete,
            "content": sorted(names[pk] for pk in version.content.values_list("pk", flat=True)),
            "content_ids": sorted(names[pk] for pk in version.content_ids),
            "counts": sorted(version.counts.values_list("count_type", "content_type", "count")),
        }
    relations = sorted(
        (
            names[relation.content_id],
            relation.version_added.number,
            relation.version_removed.number if relation.version_removed else None,
        )
        for relation in RepositoryContent.objects.filter(repository=repository).select_related(
            "version_added", "version_removed"
        )
    )
    return {
        "versions": versions,
        "relations": relations,
        "next_version": repository.next_version,
    }


@pytest.mark.parametrize("retain", [None, 2], ids=["all-versions", "retain-2"])
@pytest.mark.parametrize("seed", range(12))
def test_the_lean_commit_writes_what_pulpcore_writes(db, seed, retain):
    """With ``retain_repo_versions``, pulpcore deletes old versions after each commit, folding
    their relations into the next one: that must work on the rows the lean commit wrote."""
    pool = _pool()
    names = {unit.pk: f"{unit.pulp_type}-{index}" for index, unit in enumerate(pool)}
    lean = ContainerRepository.objects.create(name=f"lean-{seed}", retain_repo_versions=retain)
    generic = ContainerRepository.objects.create(
        name=f"generic-{seed}", retain_repo_versions=retain
    )
    chooser = random.Random(seed)
    pks = [unit.pk for unit in pool]

    for step in range(14):
        add = set(chooser.sample(pks, chooser.randint(0, 5)))
        remove = set(chooser.sample(pks, chooser.choice([0, 0, 1, 3])))
        outcomes = []
        for commit, repository in ((_lean, lean), (_generic, generic)):
            try:
                commit(repository, add, remove)
                outcomes.append("committed")
            except ValueError:  # two tags of one name added at once: refused by both
                outcomes.append("refused")
        assert outcomes[0] == outcomes[1], f"step {step}: {outcomes}"
        assert _state(lean, names) == _state(generic, names), f"step {step}"

    # The sequences did add, remove, retag and refuse (else this test proves little).
    latest = lean.latest_version()
    assert latest.number > 5


def test_a_retag_in_the_lean_commit_removes_the_old_tag(db):
    pool = _pool()
    first, second = pool[9], pool[10]  # both named "stable"
    repository = ContainerRepository.objects.create(name="retag")
    _lean(repository, {first.pk}, set())
    _lean(repository, {second.pk}, set())

    version = repository.latest_version()
    assert set(version.content_ids) == {second.pk}
    assert version.removed_count("container.tag") == 1
    assert version.added_count("container.tag") == 1
    assert version.count("container.tag") == 1


def test_a_commit_that_changes_nothing_makes_no_version(db):
    pool = _pool()
    repository = ContainerRepository.objects.create(name="no-change")
    _lean(repository, {pool[0].pk}, set())
    before = repository.latest_version().number

    _lean(repository, {pool[0].pk}, set())
    _lean(repository, set(), {pool[1].pk})

    assert repository.latest_version().number == before
