"""One access decision at every door: users x names x doors x actions, one answer per cell.

For each user and registry name, the expected rights come from one table (``EXPECTED``); every
door must give exactly that answer:

- the token server (what it grants when asked for everything);
- ``/v2/`` with the granted token, and ``/v2/`` with Basic credentials (TOKEN_AUTH_DISABLED),
  for pull (tag list), push (start an upload) and delete (delete a blob);
- the URL the REST API advertises for the name (``base_url``), pulled through;
- every REST endpoint that shows container data: the distribution (plugin and generic lists,
  detail), and for a repository's own name the repository (plugin and generic lists, detail,
  versions nested and generic, content lists plugin and generic), its REST push (``tag``) and its
  REST delete (``remove_image``);
- the content app, which serves container distributions to nobody.

The world: alice's namespace holds ``alice/private`` and ``alice/public``; carol collaborates
there, dave consumes. ``eve/alias`` is a public distribution in eve's namespace serving
``alice/private``'s repository, made directly in the database, as if it predated the rule that
refuses to create it: a second name must never widen a right, for eve or for anyone.
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import jwt
import pytest
from aiohttp.web import HTTPNotFound
from django.contrib.auth.models import AnonymousUser

from harness.oci_images import sha256_digest
from pulp_container.app.authorization import (
    actions_on_names,
    distributions_with,
    grants_of,
    repositories_with,
    repository_actions,
)
from pulp_container.app.models import (
    ContainerDistribution,
    ContainerNamespace,
    ContainerRepository,
    Manifest,
)
from pulp_container.app.scopes import DELETE, PULL, PUSH
from pulp_container.constants import OCI_INDEX, OCI_MANIFEST
from tests.registry.client import (
    RegistryClient,
    Rest,
    basic_authorization,
    make_distribution,
    mint_token,
    push_scopes,
    run_task,
)

pytestmark = pytest.mark.usefixtures("api_process")

API = "/pulp/api/v3"
ALL = {PULL, PUSH, DELETE}
P, PP = {PULL}, {PULL, PUSH}
NAMES = ["alice/private", "alice/public", "eve/alias"]
USERS = ["admin", "alice", "carol", "dave", "eve", "anonymous"]
EXPECTED = {
    "alice/private": {"admin": ALL, "alice": ALL, "carol": PP, "dave": P, "eve": set()},
    "alice/public": {"admin": ALL, "alice": ALL, "carol": PP, "dave": P, "eve": P},
    # The alias name allows pull to everyone (a public distribution) and all to eve (her
    # namespace); the repository it serves allows what alice/private allows: the intersection.
    "eve/alias": {"admin": ALL, "alice": P, "carol": P, "dave": P, "eve": set()},
}
EXPECTED["alice/private"]["anonymous"] = set()
EXPECTED["alice/public"]["anonymous"] = P
EXPECTED["eve/alias"]["anonymous"] = set()
OWN_NAMES = {"alice/private", "alice/public"}  # names that are their repository's own
ABSENT = sha256_digest(b"nothing")


@pytest.fixture
def world(people, admin_registry):
    """The two repositories of alice, each with an image; and eve's alias of the private one."""
    pusher = admin_registry(*OWN_NAMES)
    images = {}
    for name in sorted(OWN_NAMES):
        make_distribution(name, private=name == "alice/private")
        images[name] = pusher.push_image(name, "v1")
    namespace, _ = ContainerNamespace.objects.get_or_create(name="eve")
    ContainerDistribution.objects.create(
        name="eve/alias",
        base_path="eve/alias",
        repository=ContainerRepository.objects.get(name="alice/private"),
        namespace=namespace,
        private=False,
    )
    images["eve/alias"] = images["alice/private"]
    return images


def token_door(user, name: str) -> set[str]:
    """What the token server grants when asked for every action on ``name``."""
    raw = mint_token(user, *push_scopes(name))
    claims = jwt.decode(raw, options={"verify_signature": False})
    return {action for entry in claims["access"] for action in entry["actions"]}


def registry_door(client: RegistryClient, name: str) -> set[str]:
    """What ``/v2/`` lets this client do to ``name``, action by action."""
    done = set()
    if client.get(f"/v2/{name}/tags/list").status_code == 200:
        done.add(PULL)
    started = client.post(f"/v2/{name}/blobs/uploads/")
    if started.status_code == 202:
        done.add(PUSH)
        client.delete(started["Location"])
    else:
        assert started.status_code in (401, 403), started.content
    deleted = client.delete(f"/v2/{name}/blobs/{ABSENT}")
    if deleted.status_code == 404:  # allowed, and the blob is not there
        done.add(DELETE)
    else:
        assert deleted.status_code in (401, 403), deleted.content
    return done


def advertised_door(admin: Rest, client: RegistryClient, name: str) -> bool:
    """Whether pulling through the URL the REST API shows for ``name`` works for the client."""
    (distribution,) = admin.results(f"{API}/distributions/container/container/", name=name)
    base_url = urlsplit(distribution["base_url"])
    assert base_url.path == f"/v2/{name}/"
    return client.get(f"{base_url.path}tags/list").status_code == 200


def rest_distribution_door(rest: Rest, name: str) -> bool:
    """Whether the REST API shows the distribution at ``name``, in every list and in detail."""
    pk = ContainerDistribution.objects.get(base_path=name).pk
    seen = [
        name in {d["base_path"] for d in rest.results(f"{API}/distributions/container/container/")},
        name in {d["base_path"] for d in rest.results(f"{API}/distributions/")},
        rest.get(f"{API}/distributions/container/container/{pk}/").status_code == 200,
    ]
    assert len(set(seen)) == 1, f"the distribution doors disagree: {seen}"
    return seen[0]


def rest_repository_doors(rest: Rest, name: str, image) -> set[str]:
    """What the REST API lets the user do to the repository ``name``: see it (every list, its
    detail, its versions, its content), push (tag) and delete (remove an image)."""
    repository = ContainerRepository.objects.get(name=name)
    href = f"{API}/repositories/container/container/{repository.pk}/"
    content = {m["digest"] for m in rest.results(f"{API}/content/container/manifests/")}
    generic_content = {c["pulp_href"] for c in rest.results(f"{API}/content/")}
    manifest_pk = Manifest.objects.get(digest=image.digest).pk
    seen = [
        name in {r["name"] for r in rest.results(f"{API}/repositories/container/container/")},
        name in {r["name"] for r in rest.results(f"{API}/repositories/")},
        rest.get(href).status_code == 200,
        rest.get(f"{href}versions/").status_code == 200,
        image.digest in content,
        f"{API}/content/container/manifests/{manifest_pk}/" in generic_content,
    ]
    assert len(set(seen)) == 1, f"the repository doors disagree: {seen}"
    done = {PULL} if seen[0] else set()
    tagged = rest.post(f"{href}tag/", {"tag": "promoted", "digest": image.digest})
    if tagged.status_code == 202:
        done.add(PUSH)
    else:
        assert tagged.status_code in (403, 404), tagged.content
    removed = rest.post(f"{href}remove_image/", {"digest": image.digest})
    if removed.status_code == 202:
        done.add(DELETE)
    else:
        assert removed.status_code in (403, 404), removed.content
    return done


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("who", USERS)
def test_every_door_gives_the_one_answer(people, world, settings, who, name):
    user, expected = people[who], EXPECTED[name][who]
    answers: dict[str, object] = {}

    answers["token server"] = token_door(user, name)
    token_client = RegistryClient(f"Bearer {mint_token(user, *push_scopes(name))}")
    answers["/v2/ with the token"] = registry_door(token_client, name)
    answers["advertised URL"] = advertised_door(Rest(people["admin"]), token_client, name)
    if user is not None:
        answers["REST distribution"] = rest_distribution_door(Rest(user), name)
        if name in OWN_NAMES:
            answers["REST repository"] = rest_repository_doors(Rest(user), name, world[name])
    settings.TOKEN_AUTH_DISABLED = True
    basic = RegistryClient(basic_authorization(who) if user is not None else None)
    answers["/v2/ with Basic credentials"] = registry_door(basic, name)

    wanted = {
        "token server": expected,
        "/v2/ with the token": expected,
        "advertised URL": PULL in expected,
        "REST distribution": PULL in expected,
        "REST repository": expected,
        "/v2/ with Basic credentials": expected,
    }
    assert answers == {door: wanted[door] for door in answers}


@pytest.mark.parametrize("name", NAMES)
def test_the_content_app_serves_no_container_distribution(world, name):
    """pulpcore-content lists no container distribution (hidden) and serves nothing of one,
    to anyone: it knows nothing of registry permissions. (End to end: tests/e2e.)"""
    distribution = ContainerDistribution.objects.get(base_path=name)
    assert distribution.hidden is True
    for path in ("", "v1", f"blobs/{world[name].config_digest}", world[name].config_digest):
        with pytest.raises(HTTPNotFound):
            distribution.content_handler(path)


def test_no_other_kind_of_distribution_may_serve_a_container_repository(people, world):
    """A file distribution over a container repository would be a door around the registry:
    its creation (a task) fails, and no such distribution exists."""
    repository = ContainerRepository.objects.get(name="alice/private")
    response = Rest(people["admin"]).post(
        f"{API}/distributions/file/file/",
        {
            "name": "leak",
            "base_path": "leak",
            "repository": f"{API}/repositories/container/container/{repository.pk}/",
        },
    )

    if response.status_code == 202:
        assert "container distributions" in run_task(response, expect="failed").error["description"]
    else:
        assert response.status_code == 400, response.content
    assert not Rest(people["admin"]).results(f"{API}/distributions/", base_path="leak")


@pytest.mark.parametrize("who", ["alice", "carol", "dave", "eve"])
def test_the_generic_versions_list_is_the_administrators_only(people, world, who):
    """pulpcore's /repository_versions/ neither scopes nor filters by repository: it is the
    administrator's; everyone else lists versions under a repository they may pull."""
    versions = {
        v["pulp_href"] for v in Rest(people["admin"]).results(f"{API}/repository_versions/")
    }
    private = ContainerRepository.objects.get(name="alice/private")
    assert f"{API}/repositories/container/container/{private.pk}/versions/1/" in versions

    assert Rest(people[who]).get(f"{API}/repository_versions/").status_code == 403


@pytest.mark.parametrize("who, sees", [("alice", True), ("dave", True), ("eve", False)])
def test_a_manifests_referrers_show_only_what_the_caller_may_pull(
    people, world, admin_registry, who, sees
):
    """A signature pushed to the private repository, whose subject is a public image, is listed
    among the public image's referrers only to those who may pull the private repository."""
    subject = world["alice/public"]
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [],
            "subject": {
                "mediaType": subject.media_type,
                "digest": subject.digest,
                "size": len(subject.body),
            },
        }
    ).encode()
    response = admin_registry("alice/private").push_manifest(
        "alice/private", sha256_digest(body), body, OCI_INDEX
    )
    assert response.status_code == 201, response.content
    pk = Manifest.objects.get(digest=subject.digest).pk

    shown = Rest(people[who]).get(f"{API}/content/container/manifests/{pk}/").json()

    assert (sha256_digest(body) in shown["referrers"]) is sees


def test_a_pull_only_consumer_cannot_publish_a_private_repository_under_their_name(people, world):
    """Finding 2 as a consumer would try it: the alias is refused, so nothing can follow."""
    href = f"{API}/repositories/container/container/"
    repository = ContainerRepository.objects.get(name="alice/private")
    body = {
        "name": "dave/steal",
        "base_path": "dave/steal",
        "repository": f"{href}{repository.pk}/",
    }

    response = Rest(people["dave"]).post(f"{API}/distributions/container/container/", body)

    assert response.status_code == 403
    assert not ContainerDistribution.objects.filter(base_path="dave/steal").exists()


def test_a_push_through_an_alias_leaves_the_victims_repository_unchanged(people, world):
    """eve holds every right on her namespace, so her token names eve/alias with push: the
    registry still refuses it, because the repository behind the name is alice's."""
    before = ContainerRepository.objects.get(name="alice/private").latest_version().number
    client = RegistryClient(f"Bearer {mint_token(people['eve'], *push_scopes('eve/alias'))}")

    response = client.post("/v2/eve/alias/blobs/uploads/")
    manifest = client.put(
        "/v2/eve/alias/manifests/latest",
        os.urandom(16),
        content_type=OCI_MANIFEST,
    )

    assert response.status_code == 401
    assert manifest.status_code == 401
    assert ContainerRepository.objects.get(name="alice/private").latest_version().number == before


@pytest.mark.parametrize("who", USERS)
def test_the_sql_and_the_python_forms_of_the_decision_agree(people, world, who):
    """Listings ask the decision in SQL (``repositories_with``, ``distributions_with``), single
    requests in Python (``repository_actions``, ``actions_on_names``): they must never drift."""
    user = people[who]
    grants = grants_of(user if user is not None else AnonymousUser())
    for action in (PULL, PUSH, DELETE):
        repositories = set(repositories_with(grants, action).values_list("name", flat=True))
        distributions = set(distributions_with(grants, action).values_list("base_path", flat=True))
        for name in NAMES:
            expected = action in EXPECTED[name][who]
            assert (name in distributions) is expected, (action, name)
            assert (action in actions_on_names(grants, [name])[name]) is expected, (action, name)
        for repository in ContainerRepository.objects.all():
            decided = action in repository_actions(user or AnonymousUser(), repository)
            assert (repository.name in repositories) is decided, (action, repository.name)
