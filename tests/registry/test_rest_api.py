"""Pulp's REST API for pushed content: what pulp-cli and pulp-glue see and do.

Content pushed through ``/v2/`` is listed under ``/pulp/api/v3/`` with the endpoint names (and so
the OpenAPI operation ids) that pulp-glue knows; tag, untag, remove image and repository delete
are tasks that make one repository version each; and a role gives the same rights in both APIs.

Tasks are dispatched by the API and run here by calling the task function with the arguments
the dispatch stored, as a worker would.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pulp_file
import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.validation import validate_schema
from pulpcore.plugin.models import Task
from pulpcore.plugin.util import set_current_user

import pulp_container
from harness.oci_images import sha256_digest
from pulp_container.app.authorization import allowed_actions
from pulp_container.app.models import (
    ContainerDistribution,
    ContainerNamespace,
    ContainerRepository,
    Manifest,
)
from pulp_container.app.oci import RepositoryName
from pulp_container.constants import OCI_INDEX, OCI_MANIFEST
from tests.registry.client import (
    RegistryClient,
    Rest,
    basic_authorization,
    index_manifest,
    latest_content,
    make_distribution,
    run_task,
)
from tests.registry.conftest import mint_token

pytestmark = pytest.mark.usefixtures("api_process")

API = "/pulp/api/v3"
REPOSITORIES = f"{API}/repositories/container/container/"
DISTRIBUTIONS = f"{API}/distributions/container/container/"
NAMESPACES = f"{API}/pulp_container/namespaces/"
BLOBS = f"{API}/content/container/blobs/"
MANIFESTS = f"{API}/content/container/manifests/"
TAGS = f"{API}/content/container/tags/"
NAME = "admin/rest"


# --- helpers ---------------------------------------------------------------------------------


def repository_href(name: str) -> str:
    return f"{REPOSITORIES}{ContainerRepository.objects.get(name=name).pk}/"


def latest_version_href(rest: Rest, name: str) -> str:
    return rest.get(repository_href(name)).json()["latest_version_href"]


@pytest.fixture
def rest_admin(admin) -> Rest:
    return Rest(admin)


@pytest.fixture
def pusher(admin_registry):
    return admin_registry(NAME)


# --- endpoint names and the OpenAPI schema ----------------------------------------------------


PULP_GLUE_OPERATIONS = [
    "repositories_container_container_list",
    "repositories_container_container_create",
    "repositories_container_container_read",
    "repositories_container_container_partial_update",
    "repositories_container_container_delete",
    "repositories_container_container_tag",
    "repositories_container_container_untag",
    "repositories_container_container_remove_image",
    "repositories_container_container_versions_list",
    "repositories_container_container_versions_read",
    "distributions_container_container_list",
    "distributions_container_container_create",
    "distributions_container_container_read",
    "distributions_container_container_partial_update",
    "distributions_container_container_delete",
    "distributions_container_container_list_roles",
    "content_container_blobs_list",
    "content_container_blobs_read",
    "content_container_manifests_list",
    "content_container_tags_list",
    "pulp_container_namespaces_list",
    "pulp_container_namespaces_create",
    "pulp_container_namespaces_delete",
    "pulp_container_namespaces_add_role",
]


def _schema(**params) -> dict:
    from drf_spectacular.drainage import GENERATOR_STATS
    from pulpcore.openapi import PulpSchemaGenerator
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    GENERATOR_STATS.reset()
    request = Request(APIRequestFactory().get(f"{API}/docs/api.json", params))
    schema = PulpSchemaGenerator().get_schema(request=request, public=True)
    return json.loads(json.dumps(schema, default=str))


def _operation_ids(schema: dict) -> set[str]:
    return {
        operation["operationId"]
        for path in schema["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


def test_the_schema_has_the_operations_pulp_glue_calls(rest_admin):
    """pulp-glue reads /pulp/api/v3/docs/api.json and calls operations by these ids."""
    response = rest_admin.get(f"{API}/docs/api.json")
    assert response.status_code == 200
    operation_ids = _operation_ids(json.loads(response.content))
    missing = [op for op in PULP_GLUE_OPERATIONS if op not in operation_ids]
    assert missing == []


def test_repository_tasks_are_documented_as_202_as_pulp_glue_checks(rest_admin):
    """pulp-glue refuses an answer whose status the schema does not name."""
    schema = json.loads(rest_admin.get(f"{API}/docs/api.json").content)
    statuses = {
        operation["operationId"]: set(operation["responses"])
        for methods in schema["paths"].values()
        for operation in methods.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    for action in ("tag", "untag", "remove_image"):
        assert statuses[f"repositories_container_container_{action}"] == {"202"}, action


def test_the_schema_validates_and_warns_about_nothing_of_ours(db):
    """The pk-path schema validates against OpenAPI 3; and every warning the generator gives
    about our endpoints is one it also gives about pulp_file's (pulpcore's inherited fields and
    href path parameters), so none comes from code of ours."""
    validate_schema(_schema(pk_path=1))
    _schema()
    warnings = [str(w) for w in GENERATOR_STATS._warn_cache]

    ours = {warning_kind(w) for w in warnings if warning_about(w, OUR_PACKAGE, "container")}
    pulp_file = {warning_kind(w) for w in warnings if warning_about(w, PULP_FILE_PACKAGE, "file")}
    assert ours - pulp_file == set()


OUR_PACKAGE = Path(pulp_container.__file__).resolve().parent
PULP_FILE_PACKAGE = Path(pulp_file.__file__).resolve().parent
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOCATION = re.compile(r"^(?P<path>/\S+\.py)(?::\d+)?: ")


def warning_about(warning: str, package: Path, plugin: str) -> bool:
    """Whether a drf-spectacular warning is about a plugin: raised in its package's code, or,
    without a source file, naming its models (``pulp_<plugin>.``) or hrefs (``<plugin>_``).

    The path of the file is compared as a path, never searched for the plugin's name: a clone
    in a folder named ``pulp_container`` puts that name in the path of every file of its
    ``.venv``, pulpcore's included."""
    warning = _ANSI.sub("", warning)
    location = _LOCATION.match(warning)
    if location:
        return Path(location.group("path")).resolve().is_relative_to(package)
    return f"pulp_{plugin}." in warning or f'"{plugin}_' in warning


def warning_kind(warning: str) -> str:
    """A warning without what names its plugin: where it was raised, the view, the model."""
    warning = _LOCATION.sub("", _ANSI.sub("", warning))
    warning = re.sub(r"Warning \[[^\]]*\]", "Warning [X]", warning)
    return re.sub(r'path parameter "\w+" because model "[\w.]+"', "path parameter", warning)


@pytest.mark.parametrize(
    "warning, ours",
    [
        # pulpcore's own code, in a .venv of a clone in a folder named pulp_container.
        (
            "/tmp/x/pulp_container/.venv/lib/python3.11/site-packages/pulpcore/app/serializers/"
            "openpgp.py: Warning [OpenPGPSignatureSerializer]: unable to resolve type hint for "
            'function "key_expired".',
            False,
        ),
        (f"{OUR_PACKAGE}/viewsets.py: Warning [BlobFilter]: field pulp_label_select", True),
        (
            "\x1b[0;34m/tmp/x/pulp_container/.venv/lib/python3.11/site-packages/pulpcore/"
            "filters.py: \x1b[0;33mWarning [PulpTypeFilterSet]: \x1b[0mfield with_content",
            False,
        ),
        (
            'Warning: could not derive type of path parameter "container_blob_href" because '
            'model "pulp_container.app.models.Blob" contained no such field.',
            True,
        ),
        (
            'Warning: could not derive type of path parameter "artifact_href" because model '
            '"pulpcore.app.models.content.Artifact" contained no such field.',
            False,
        ),
    ],
)
def test_a_schema_warning_is_ours_by_where_it_comes_from_not_by_the_clone_folder(warning, ours):
    assert warning_about(warning, OUR_PACKAGE, "container") is ours


# --- content, listed and filtered -------------------------------------------------------------


def test_content_lists_filter_by_version_digest_media_type_and_name(pusher, rest_admin):
    first = pusher.push_image(NAME, "one")
    second = pusher.push_image(NAME, "two")
    version = latest_version_href(rest_admin, NAME)
    # (not str.replace: the repository's UUID may end with the same digit as the version)
    first_version = version.rstrip("/").rsplit("/", 1)[0] + "/1/"

    blobs = rest_admin.results(BLOBS, repository_version=version)
    assert {b["digest"] for b in blobs} == set(first.blob_digests + second.blob_digests)
    in_first = rest_admin.results(BLOBS, repository_version=first_version)
    assert {b["digest"] for b in in_first} == set(first.blob_digests)
    added = rest_admin.results(MANIFESTS, repository_version_added=version)
    assert [m["digest"] for m in added] == [second.digest]

    one_blob = rest_admin.results(BLOBS, digest=first.config_digest)
    assert [b["digest"] for b in one_blob] == [first.config_digest]
    both = rest_admin.results(MANIFESTS, digest__in=f"{first.digest},{second.digest}")
    assert {m["digest"] for m in both} == {first.digest, second.digest}
    oci = rest_admin.results(MANIFESTS, media_type=OCI_MANIFEST, repository_version=version)
    assert len(oci) == 2
    assert rest_admin.results(MANIFESTS, media_type=OCI_INDEX, repository_version=version) == []
    tags = rest_admin.results(TAGS, name="two", repository_version=version)
    assert [t["name"] for t in tags] == ["two"]
    tagged = rest_admin.results(TAGS, digest=first.digest, repository_version=version)
    assert [t["name"] for t in tagged] == ["one"]


def test_a_manifest_shows_its_config_layers_and_listed_manifests(pusher, rest_admin):
    image = pusher.push_image(NAME, "amd64")
    other = pusher.push_image(NAME, "arm64")
    body = index_manifest([image, other])
    assert pusher.push_manifest(NAME, "multi", body, OCI_INDEX).status_code == 201

    (manifest,) = rest_admin.results(MANIFESTS, digest=image.digest)
    config = rest_admin.get(manifest["config_blob"]).json()
    assert config["digest"] == image.config_digest
    layers = [rest_admin.get(href).json()["digest"] for href in manifest["blobs"]]
    assert layers == image.layer_digests
    assert manifest["listed_manifests"] == []

    (index,) = rest_admin.results(MANIFESTS, digest=sha256_digest(body))
    assert index["media_type"] == OCI_INDEX
    listed = {rest_admin.get(href).json()["digest"] for href in index["listed_manifests"]}
    assert listed == {image.digest, other.digest}
    assert index["config_blob"] is None


# --- repository operations as tasks -----------------------------------------------------------


def test_tag_and_untag_each_make_one_version(pusher, rest_admin):
    image = pusher.push_image(NAME, "v1")
    href = repository_href(NAME)
    before = ContainerRepository.objects.get(name=NAME).latest_version().number

    task = run_task(rest_admin.post(f"{href}tag/", {"tag": "stable", "digest": image.digest}))
    assert latest_content(NAME)["tags"] == {f"v1={image.digest}", f"stable={image.digest}"}
    repository = ContainerRepository.objects.get(name=NAME)
    assert repository.latest_version().number == before + 1
    assert any(str(repository.pk) in resource for resource in task.reserved_resources_record)

    run_task(rest_admin.post(f"{href}untag/", {"tag": "v1"}))
    assert latest_content(NAME)["tags"] == {f"stable={image.digest}"}
    assert image.digest in latest_content(NAME)["manifests"]
    assert ContainerRepository.objects.get(name=NAME).latest_version().number == before + 2


def test_a_retag_moves_the_tag(pusher, rest_admin):
    first = pusher.push_image(NAME, "latest")
    second = pusher.push_image(NAME, "next")
    href = repository_href(NAME)
    run_task(rest_admin.post(f"{href}tag/", {"tag": "latest", "digest": second.digest}))
    assert latest_content(NAME)["tags"] == {f"latest={second.digest}", f"next={second.digest}"}
    assert first.digest in latest_content(NAME)["manifests"]


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("tag/", {"tag": "x", "digest": "sha256:" + "0" * 64}, "digest"),
        ("tag/", {"tag": "x", "digest": "not-a-digest"}, "digest"),
        ("tag/", {"tag": "-bad", "digest": "sha256:" + "0" * 64}, "tag"),
        ("untag/", {"tag": "missing"}, "tag"),
        ("remove_image/", {"tag": "missing"}, "tag"),
        ("remove_image/", {}, "non_field_errors"),
    ],
)
def test_bad_operations_are_refused_before_any_task(pusher, rest_admin, path, body, field):
    pusher.push_image(NAME, "v1")
    tasks_before = Task.objects.count()
    response = rest_admin.post(f"{repository_href(NAME)}{path}", body)
    assert response.status_code == 400
    assert field in response.json()
    assert Task.objects.count() == tasks_before


def test_remove_image_by_digest_keeps_what_others_share(pusher, rest_admin):
    shared = b"shared layer " * 40
    doomed = pusher.push_image(NAME, "doomed", layers=[shared, b"only mine" * 50])
    kept = pusher.push_image(NAME, "kept", layers=[shared])
    run_task(rest_admin.post(f"{repository_href(NAME)}remove_image/", {"digest": doomed.digest}))
    content = latest_content(NAME)
    assert content["manifests"] == {kept.digest}
    assert content["tags"] == {f"kept={kept.digest}"}
    assert content["blobs"] == set(kept.blob_digests)


def test_remove_image_by_tag_keeps_a_manifest_another_tag_holds(pusher, rest_admin):
    image = pusher.push_image(NAME, "a")
    href = repository_href(NAME)
    run_task(rest_admin.post(f"{href}tag/", {"tag": "b", "digest": image.digest}))
    run_task(rest_admin.post(f"{href}remove_image/", {"tag": "a"}))
    assert latest_content(NAME)["manifests"] == {image.digest}
    run_task(rest_admin.post(f"{href}remove_image/", {"tag": "b"}))
    assert latest_content(NAME) == {"blobs": set(), "manifests": set(), "tags": set()}


def test_removing_an_index_removes_the_images_only_it_lists(pusher, rest_admin):
    listed = pusher.push_image(NAME, None)
    also_tagged = pusher.push_image(NAME, "amd64")
    body = index_manifest([listed, also_tagged])
    assert pusher.push_manifest(NAME, "multi", body, OCI_INDEX).status_code == 201
    run_task(rest_admin.post(f"{repository_href(NAME)}remove_image/", {"tag": "multi"}))
    content = latest_content(NAME)
    assert content["manifests"] == {also_tagged.digest}
    assert content["blobs"] == set(also_tagged.blob_digests)


def test_deleting_a_repository_deletes_its_distribution(pusher, rest_admin):
    pusher.push_image(NAME, "v1")
    run_task(rest_admin.delete(repository_href(NAME)))
    assert not ContainerRepository.objects.filter(name=NAME).exists()
    assert not ContainerDistribution.objects.filter(base_path=NAME).exists()
    assert rest_admin.results(DISTRIBUTIONS, name=NAME) == []


def test_push_owned_fields_are_read_only(pusher, rest_admin):
    pusher.push_image(NAME, "v1")
    href = repository_href(NAME)
    assert rest_admin.patch(href, {"name": "admin/renamed"}).status_code == 400
    run_task(rest_admin.patch(href, {"description": "pushed by CI"}))
    assert rest_admin.get(href).json()["description"] == "pushed by CI"


def test_a_distribution_shows_its_registry_path_and_validates_its_name(pusher, rest_admin):
    pusher.push_image(NAME, "v1")
    (distribution,) = rest_admin.results(DISTRIBUTIONS, name=NAME)
    assert distribution["registry_path"] == f"testserver/{NAME}"
    assert distribution["namespace"] == "admin"
    other = {"name": "admin/other", "base_path": "admin/other", "repository": repository_href(NAME)}
    run_task(rest_admin.post(DISTRIBUTIONS, other))
    assert ContainerDistribution.objects.filter(base_path="admin/other").exists()
    # pulpcore (and its database) keep one base path from being the prefix of another.
    nested = {
        "name": f"{NAME}/sub",
        "base_path": f"{NAME}/sub",
        "repository": repository_href(NAME),
    }
    assert rest_admin.post(DISTRIBUTIONS, nested).status_code == 400
    bad = {"name": "Bad", "base_path": "Bad Name"}
    assert rest_admin.post(DISTRIBUTIONS, bad).status_code == 400


# --- RBAC: the users of the token issue, on these endpoints -----------------------------------

# Who may do what to alice's repositories and eve's (the registry's table, issue 3).
PEOPLE = ["admin", "alice", "carol", "dave", "eve"]
REPOSITORY_GRANTS = {
    # user: {repository: actions}
    "admin": {"alice/private": "pull,push,delete", "alice/public": "pull,push,delete"},
    "alice": {"alice/private": "pull,push,delete", "alice/public": "pull,push,delete"},
    "carol": {"alice/private": "pull,push", "alice/public": "pull,push"},
    "dave": {"alice/private": "pull", "alice/public": "pull"},
    "eve": {"alice/private": "", "alice/public": "pull"},
}
CELLS = [
    (user, repository, action)
    for user in PEOPLE
    for repository in ("alice/private", "alice/public")
    for action in ("pull", "push", "delete")
]


@pytest.fixture
def alice_repositories(people, admin_registry):
    pusher = admin_registry("alice/private", "alice/public")
    images = {}
    for name, private in (("alice/private", True), ("alice/public", False)):
        make_distribution(name, private=private)
        images[name] = pusher.push_image(name, "v1")
    return images


@pytest.mark.parametrize("user, repository, action", CELLS)
def test_rest_rights_agree_with_the_registry(people, alice_repositories, user, repository, action):
    """Each cell: the REST outcome, the table, and the registry's decision all agree."""
    person = people[user]
    expected = action in REPOSITORY_GRANTS[user][repository].split(",")
    assert (action in allowed_actions(person, RepositoryName(repository))) == expected

    rest = Rest(person)
    href = repository_href(repository)
    image = alice_repositories[repository]
    if action == "pull":
        listed = {r["name"] for r in rest.results(REPOSITORIES)}
        manifests = {m["digest"] for m in rest.results(MANIFESTS)}
        versions = rest.get(f"{href}versions/")
        allowed = rest.get(href).status_code == 200
        assert (repository in listed) == allowed
        assert (image.digest in manifests) == allowed
        assert (versions.status_code == 200) == allowed
    elif action == "push":
        response = rest.post(f"{href}tag/", {"tag": "promoted", "digest": image.digest})
        allowed = response.status_code == 202
    else:
        response = rest.post(f"{href}remove_image/", {"digest": image.digest})
        allowed = response.status_code == 202
        assert (rest.delete(href).status_code == 202) == allowed
    if not allowed and action != "pull":
        assert response.status_code in (403, 404)
    assert allowed == expected


@pytest.mark.parametrize("user", PEOPLE)
def test_distributions_are_listed_as_the_catalog_lists_them(people, alice_repositories, user):
    seen = {d["base_path"] for d in Rest(people[user]).results(DISTRIBUTIONS)}
    expected = {
        name for name, actions in REPOSITORY_GRANTS[user].items() if "pull" in actions.split(",")
    }
    assert seen & {"alice/private", "alice/public"} == expected


def test_anonymous_sees_nothing_of_the_rest_api(alice_repositories):
    assert Rest(None).get(REPOSITORIES).status_code == 401


@pytest.mark.parametrize(
    "user, base_path, repository, allowed",
    [
        ("carol", "alice/mirror", "alice/public", True),  # push on the name, pull on the repo
        ("dave", "alice/mirror", "alice/public", False),  # a consumer may not push there
        ("eve", "eve/leak", "alice/private", False),  # her name, but a repo she cannot read
        ("eve", "eve/copy", "alice/public", False),  # she may read it, but not publish it
        ("dave", "dave/copy", "alice/private", False),  # a consumer may not publish it either
        ("alice", "alice/alias", "alice/private", True),  # its owner may
        ("carol", "carol/alias", "alice/private", True),  # a collaborator may push to it
        ("eve", "alice/mine", "alice/public", False),  # not her namespace
    ],
)
def test_who_may_create_a_distribution(
    people, alice_repositories, user, base_path, repository, allowed
):
    body = {"name": base_path, "base_path": base_path, "repository": repository_href(repository)}
    response = Rest(people[user]).post(DISTRIBUTIONS, body)
    assert (response.status_code == 202) == allowed, response.content
    if not allowed:
        assert response.status_code == 403


@pytest.mark.parametrize(
    "user, distribution, allowed",
    [
        ("alice", "alice/public", True),
        ("carol", "alice/public", False),
        ("eve", "alice/public", False),
    ],
)
def test_who_may_delete_a_distribution(people, alice_repositories, user, distribution, allowed):
    href = f"{DISTRIBUTIONS}{ContainerDistribution.objects.get(base_path=distribution).pk}/"
    response = Rest(people[user]).delete(href)
    assert (response.status_code == 202) == allowed


def test_a_user_may_create_the_namespace_named_after_them_only(people):
    eve = Rest(people["eve"])
    assert eve.post(NAMESPACES, {"name": "eve"}).status_code == 201
    assert eve.post(NAMESPACES, {"name": "mallory"}).status_code == 403
    (own,) = eve.results(NAMESPACES)
    assert own["name"] == "eve"
    assert Rest(people["admin"]).post(NAMESPACES, {"name": "mallory"}).status_code == 201


def test_a_namespace_is_found_by_name_as_pulp_cli_looks_it_up(people, alice_repositories):
    """``pulp container namespace role add --name alice ...`` lists ``?name=alice`` first."""
    admin = Rest(people["admin"])

    found = admin.results(NAMESPACES, name="alice")

    assert [namespace["name"] for namespace in found] == ["alice"]
    assert admin.results(NAMESPACES, name__startswith="ali") == found


def test_namespace_roles_given_by_rest_grant_registry_rights(people, alice_repositories):
    """alice makes eve a collaborator through the REST API; the registry then lets eve push."""
    namespace = ContainerNamespace.objects.get(name="alice")
    href = f"{NAMESPACES}{namespace.pk}/"
    alice, eve = Rest(people["alice"]), Rest(people["eve"])
    assert eve.post(f"{href}add_role/", {"role": "x", "users": ["eve"]}).status_code in (403, 404)
    role = {"role": "container.containernamespace_collaborator", "users": ["eve"]}
    assert alice.post(f"{href}add_role/", role).status_code == 201
    assert "push" in allowed_actions(people["eve"], RepositoryName("alice/private"))
    image = alice_repositories["alice/private"]
    href = repository_href("alice/private")
    assert eve.post(f"{href}tag/", {"tag": "by-eve", "digest": image.digest}).status_code == 202


# --- schemathesis: no request to our endpoints makes a server error ---------------------------

# Examples per operation: ~40 operations, so a run takes well under two minutes.
FUZZ_EXAMPLES = int(os.environ.get("PULP_FUZZ_EXAMPLES", "8"))


def test_schemathesis_finds_no_server_error_on_container_endpoints(admin, request):
    """Random valid and invalid requests to every container operation of the OpenAPI schema,
    as the administrator (who reaches every code path), against real objects from a push."""
    schemathesis = pytest.importorskip("schemathesis")
    hypothesis = pytest.importorskip("hypothesis")
    from django.core.wsgi import get_wsgi_application
    from schemathesis.checks import not_a_server_error

    set_current_user(None)
    pusher = RegistryClient(f"Bearer {mint_token(admin, f'repository:{NAME}:pull,push,delete')}")
    image = pusher.push_image(NAME, "v1")
    repository = ContainerRepository.objects.get(name=NAME)
    real_ids = {
        "/repositories/container/container/{pulp_id}/": repository.pk,
        "/repositories/container/container/{repository_pk}/": repository.pk,
        "/distributions/container/container/{pulp_id}/": ContainerDistribution.objects.get(
            base_path=NAME
        ).pk,
        "/pulp_container/namespaces/{pulp_id}/": ContainerNamespace.objects.get(name="admin").pk,
        "/content/container/manifests/{pulp_id}/": Manifest.objects.get(digest=image.digest).pk,
    }
    # As Django's test client does: the test's transaction outlives each request.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
        request.addfinalizer(lambda signal=signal: signal.connect(close_old_connections))
    schema = schemathesis.openapi.from_wsgi(
        f"{API}/docs/api.json?pk_path=1", get_wsgi_application()
    ).include(path_regex=r"/(container|pulp_container)/")
    headers = {"Authorization": basic_authorization(admin.get_username())}
    failures = []
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30

    for operation in operations:
        path_parameters = {}
        for prefix, pk in real_ids.items():
            if prefix in operation.path:
                name = prefix.rsplit("{", 1)[1].rstrip("}/")
                path_parameters[name] = str(pk)

        @hypothesis.settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy(path_parameters=path_parameters or None))
        def check(case):
            label = case.operation.label
            response = case.call(headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as error:  # noqa: BLE001 - collected, reported together
                failures.append(f"{label}: {error}")
                raise

        try:
            check()
        except Exception as error:  # noqa: BLE001 - collected, reported together
            if not any(f.startswith(operation.label) for f in failures):
                failures.append(f"{operation.label}: {type(error).__name__}: {error}")
    print("schemathesis statuses:", sorted(statuses.items()))
    assert failures == []
    # The requests reached the views, not only authentication and routing.
    assert statuses.get(200, 0) > len(operations) and statuses.get(202, 0) > 0
