"""The scope grammar of the Docker token specification, and the access each request needs."""

import pytest

from pulp_container.app.scopes import Resource, Scope, challenged_access, required_access

ALL = frozenset({"pull", "push", "delete"})


def scope(kind: str, name: str, *actions: str) -> Scope:
    return Scope(kind, name, frozenset(actions))


@pytest.mark.parametrize(
    "value, expected",
    [
        ("repository:app:pull", scope("repository", "app", "pull")),
        ("repository:team/app:pull,push", scope("repository", "team/app", "pull", "push")),
        ("repository:team/sub/app:push,pull", scope("repository", "team/sub/app", "pull", "push")),
        ("repository:team/app:*", Scope("repository", "team/app", ALL)),
        ("repository:team/app:pull,*", Scope("repository", "team/app", ALL)),
        ("repository:team/app:delete", scope("repository", "team/app", "delete")),
        # A name may carry the registry's host and port; the name is what follows.
        ("repository:localhost:5000/team/app:pull", scope("repository", "team/app", "pull")),
        ("repository:registry.example.com:443/app:push", scope("repository", "app", "push")),
        # Without a port a dotted first segment is a valid name segment, so it stays.
        ("repository:my.registry/app:pull", scope("repository", "my.registry/app", "pull")),
        # Docker's resource class, e.g. repository(plugin), is tolerated and ignored.
        ("repository(plugin):app:pull", scope("repository", "app", "pull")),
        # Unknown actions are dropped, the scope stays.
        ("repository:app:pull,frobnicate", scope("repository", "app", "pull")),
        ("repository:app:frobnicate", scope("repository", "app")),
        ("registry:catalog:*", scope("registry", "catalog", "*")),
        ("registry:catalog:search", scope("registry", "catalog", "*")),
        ("  repository:app:pull  ", scope("repository", "app", "pull")),
    ],
)
def test_a_scope_is_parsed(value: str, expected: Scope) -> None:
    assert Scope.parse(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("repository", id="type-only"),
        pytest.param("repository:app", id="no-actions"),
        pytest.param("repository:App:pull", id="uppercase-name"),
        pytest.param("repository:team//app:pull", id="empty-segment"),
        pytest.param("repository::pull", id="empty-name"),
        pytest.param("registry:other:*", id="registry-not-catalog"),
        pytest.param("blob:app:pull", id="unknown-type"),
        pytest.param("Repository:app:pull", id="uppercase-type"),
        pytest.param("repository:app:PULL", id="uppercase-action"),
    ],
)
def test_an_odd_scope_is_dropped(value: str) -> None:
    assert Scope.parse(value) is None


def test_an_odd_scope_is_dropped_alone() -> None:
    parsed = Scope.parse_many(["repository:app:pull", "nonsense", "repository:App:push"])

    assert parsed == [scope("repository", "app", "pull")]


def test_repeated_scopes_of_one_repository_are_merged() -> None:
    parsed = Scope.parse_many(
        ["repository:team/app:pull", "repository:team/app:push", "repository:base:pull"]
    )

    assert parsed == [
        scope("repository", "team/app", "pull", "push"),
        scope("repository", "base", "pull"),
    ]


def test_space_separated_scopes_of_the_oauth2_form_are_split_and_merged() -> None:
    parsed = Scope.parse_many(
        ["repository:a:pull repository:b:pull", "repository:a:push registry:catalog:*"]
    )

    assert parsed == [
        scope("repository", "a", "pull", "push"),
        scope("repository", "b", "pull"),
        scope("registry", "catalog", "*"),
    ]


def test_no_scope_at_all_is_an_empty_list() -> None:
    assert Scope.parse_many([]) == []
    assert Scope.parse_many([""]) == []


def test_a_scope_prints_and_claims_with_sorted_actions() -> None:
    value = scope("repository", "team/app", "push", "pull")

    assert str(value) == "repository:team/app:pull,push"
    assert value.to_claim() == {
        "type": "repository",
        "name": "team/app",
        "actions": ["pull", "push"],
    }
    assert Scope.parse(str(value)) == value


@pytest.mark.parametrize(
    "method, resource, name, expected",
    [
        ("GET", Resource.BASE, None, []),
        ("HEAD", Resource.BASE, None, []),
        ("GET", Resource.CATALOG, None, [scope("registry", "catalog", "*")]),
        ("GET", Resource.REPOSITORY, "team/app", [scope("repository", "team/app", "pull")]),
        ("HEAD", Resource.REPOSITORY, "team/app", [scope("repository", "team/app", "pull")]),
        ("POST", Resource.REPOSITORY, "team/app", [scope("repository", "team/app", "push")]),
        ("PATCH", Resource.REPOSITORY, "team/app", [scope("repository", "team/app", "push")]),
        ("PUT", Resource.REPOSITORY, "team/app", [scope("repository", "team/app", "push")]),
        ("DELETE", Resource.REPOSITORY, "team/app", [scope("repository", "team/app", "delete")]),
        ("OPTIONS", Resource.REPOSITORY, "app", [scope("repository", "app", "push")]),
        ("GET", Resource.UPLOAD, "team/app", [scope("repository", "team/app", "push")]),
        ("PATCH", Resource.UPLOAD, "team/app", [scope("repository", "team/app", "push")]),
        # Cancelling one's own upload is part of the push.
        ("DELETE", Resource.UPLOAD, "team/app", [scope("repository", "team/app", "push")]),
    ],
)
def test_required_access(method: str, resource: Resource, name: str | None, expected) -> None:
    assert required_access(method, resource, name) == expected


PUSH_TARGET = [scope("repository", "team/app", "push")]


@pytest.mark.parametrize(
    "mount, source, expected",
    [
        # A mount naming its source: the challenge names pull on it, as distribution's does.
        (
            "sha256:" + "a" * 64,
            "team/base",
            [scope("repository", "team/app", "push"), scope("repository", "team/base", "pull")],
        ),
        # A source that is the target itself adds pull to the one scope.
        ("sha256:" + "a" * 64, "team/app", [scope("repository", "team/app", "pull", "push")]),
        # No source, no mount, or a source that is no repository name: only what is required.
        ("sha256:" + "a" * 64, None, PUSH_TARGET),
        (None, "team/base", PUSH_TARGET),
        ("sha256:" + "a" * 64, "Not A Name", PUSH_TARGET),
    ],
)
def test_a_mount_challenge_names_the_source_it_does_not_require(mount, source, expected) -> None:
    assert challenged_access(PUSH_TARGET, mount, source) == expected
