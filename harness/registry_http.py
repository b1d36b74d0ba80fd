"""A small OCI Distribution API client over ``requests``, for tests that speak HTTP directly.

It authenticates the way registry clients do (Docker token authentication specification):
try the request; on ``401`` with ``WWW-Authenticate: Bearer realm=...,service=...`` fetch a
token from the realm with basic credentials for the scope the request needs, and retry with
``Authorization: Bearer``. A ``Basic`` challenge is answered with basic credentials.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

_CHALLENGE_PARAMETER = re.compile(r'(\w+)="([^"]*)"')
# Bodies from this size on are sent only with a token in hand (see _token_before_a_large_body).
LARGE_BODY = 64 * 1024


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header."""

    scheme: str
    parameters: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> Challenge:
        scheme, _, rest = header.strip().partition(" ")
        return cls(scheme.lower(), dict(_CHALLENGE_PARAMETER.findall(rest)))


def repository_scope(name: str, actions: str = "pull,push") -> str:
    return f"repository:{name}:{actions}"


@dataclass
class RegistryHTTP:
    """Speaks the ``/v2/`` API of one registry as one user.

    ``url`` is the registry's base URL (``https://127.0.0.1:24817``); ``verify`` is handed to
    ``requests`` (a CA bundle path, or ``False``).
    """

    url: str
    credentials: tuple[str, str] | None
    verify: str | bool = True
    timeout: float = 60.0
    session: requests.Session = field(default_factory=requests.Session)
    _tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # With ``trust_env`` on, ``REQUESTS_CA_BUNDLE`` would override ``verify``.
        self.session.trust_env = False
        self.session.verify = self.verify

    def absolute(self, location: str) -> str:
        """Resolve a ``Location`` header, which the spec allows to be relative."""
        return urljoin(self.url + "/", location)

    def token(self, challenge: Challenge, scope: str | None) -> str:
        """Fetch a bearer token for ``scope`` from the challenge's realm (basic auth)."""
        params = {"service": challenge.parameters.get("service", "")}
        if scope:
            params["scope"] = scope
        response = self.session.get(
            challenge.parameters["realm"],
            params=params,
            auth=self.credentials,
            timeout=self.timeout,
        )
        response.raise_for_status()
        body = response.json()
        return str(body.get("token") or body["access_token"])

    def authorization(self, scope: str) -> dict[str, str]:
        """The ``Authorization`` header of the token last fetched for ``scope`` (none: empty),
        for requests sent without this class (a body streamed from a generator)."""
        cached = self._tokens.get(scope)
        return {"Authorization": f"Bearer {cached}"} if cached else {}

    def request(
        self, method: str, path_or_url: str, *, scope: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send a request, answering one auth challenge if the registry asks for one.

        ``scope`` is the token scope the request needs (``repository:<name>:pull,push``).
        The body, if any, must be bytes so that it can be sent twice.
        """
        url = path_or_url if "://" in path_or_url else self.absolute(path_or_url)
        response = self._request(method, url, scope, **kwargs)
        if "allow_redirects" not in kwargs and _to_object_storage(url, response):
            # Blob bytes in object storage: the registry answers a GET with a presigned URL,
            # which clients follow without the registry's credentials.
            return requests.get(response.headers["Location"], timeout=self.timeout)
        return response

    def _request(
        self, method: str, url: str, scope: str | None, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        headers = dict(kwargs.pop("headers", {}) or {})
        cached = self._tokens.get(scope or "") or self._token_before_a_large_body(scope, kwargs)
        if cached:
            headers["Authorization"] = f"Bearer {cached}"
        response = self.session.request(method, url, headers=headers, **kwargs)
        if response.status_code != 401 or "WWW-Authenticate" not in response.headers:
            return response
        challenge = Challenge.parse(response.headers["WWW-Authenticate"])
        if challenge.scheme == "bearer":
            bearer = self.token(challenge, scope or challenge.parameters.get("scope"))
            self._tokens[scope or ""] = bearer
            headers["Authorization"] = f"Bearer {bearer}"
            return self.session.request(method, url, headers=headers, **kwargs)
        if challenge.scheme == "basic" and self.credentials:
            return self.session.request(
                method, url, headers=headers, auth=self.credentials, **kwargs
            )
        return response

    def _token_before_a_large_body(self, scope: str | None, kwargs: dict[str, Any]) -> str | None:
        """Like registry clients, get the token before sending a large body (ping ``/v2/``).

        A request with a body that the registry refuses early (``401``) is closed by the front
        before the body is read; a client still sending can then see the connection reset
        instead of the answer. Clients avoid it by authenticating first, and so does this one.
        """
        body = kwargs.get("data")
        if scope is None or not isinstance(body, bytes | bytearray) or len(body) < LARGE_BODY:
            return None
        ping = self.session.get(self.absolute("/v2/"), timeout=self.timeout)
        header = ping.headers.get("WWW-Authenticate")
        if ping.status_code != 401 or not header:
            return None
        challenge = Challenge.parse(header)
        if challenge.scheme != "bearer":
            return None
        self._tokens[scope] = self.token(challenge, scope)
        return self._tokens[scope]

    # --- the spec's operations, named as the spec names them ------------------------------------

    def version_check(self) -> requests.Response:
        return self.request("GET", "/v2/")

    def list_tags(self, name: str) -> list[str]:
        response = self.request(
            "GET", f"/v2/{name}/tags/list", scope=repository_scope(name, "pull")
        )
        response.raise_for_status()
        body = response.json()
        assert body["name"] == name, body
        return sorted(body.get("tags") or [])

    def get_manifest(self, name: str, reference: str, accept: str) -> requests.Response:
        return self.request(
            "GET",
            f"/v2/{name}/manifests/{reference}",
            scope=repository_scope(name, "pull"),
            headers={"Accept": accept},
        )

    def blob_exists(self, name: str, digest: str) -> requests.Response:
        return self.request(
            "HEAD", f"/v2/{name}/blobs/{digest}", scope=repository_scope(name, "pull")
        )

    def push_blob(self, name: str, data: bytes) -> str:
        """``POST /v2/<name>/blobs/uploads/?digest=`` with the whole blob; return its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        response = self.request(
            "POST",
            f"/v2/{name}/blobs/uploads/?digest={digest}",
            scope=repository_scope(name),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
            data=data,
        )
        if response.status_code != 201:
            raise AssertionError(f"upload to {name}: {response.status_code} {response.text}")
        return digest

    def start_upload(self, name: str) -> requests.Response:
        return self.request(
            "POST",
            f"/v2/{name}/blobs/uploads/",
            scope=repository_scope(name),
            headers={"Content-Length": "0"},
            data=b"",
        )

    def patch_upload(
        self, name: str, location: str, chunk: bytes, offset: int = 0
    ) -> requests.Response:
        return self.request(
            "PATCH",
            self.absolute(location),
            scope=repository_scope(name),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                "Content-Length": str(len(chunk)),
            },
            data=chunk,
        )

    def upload_status(self, name: str, location: str) -> requests.Response:
        return self.request("GET", self.absolute(location), scope=repository_scope(name))


def _to_object_storage(url: str, response: requests.Response) -> bool:
    location = response.headers.get("Location", "")
    return (
        response.status_code == 307
        and "://" in location
        and urlsplit(location).netloc != urlsplit(url).netloc
    )


def session_factory(
    verify: str | bool, credentials: tuple[str, str] | None
) -> Callable[[], requests.Session]:
    """A factory of ``requests.Session`` objects that trust the registry's certificate."""

    def make() -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # else ``REQUESTS_CA_BUNDLE`` overrides ``verify``
        session.verify = verify
        if credentials:
            session.auth = credentials
        return session

    return make


def ca_bundle(path: Path) -> str | bool:
    """``requests``' ``verify`` for a CA certificate that may not exist (then: don't verify)."""
    return str(path) if path.is_file() else False


@dataclass(frozen=True)
class RunningRegistry:
    """A Pulp registry that answers on ``url``."""

    url: str
    host: str
    admin: tuple[str, str]
    ca_cert: Path
    session: Callable[[], requests.Session]
    # The access log of the API process, when the tests started it themselves.
    access_log: Path | None = None

    @property
    def verify(self) -> str | bool:
        return ca_bundle(self.ca_cert)

    def reference(self, name: str, tag: str | None = None, digest: str | None = None) -> str:
        """A ``docker://`` reference for skopeo and podman: ``name:tag`` or ``name@digest``."""
        if digest is not None:
            return f"docker://{self.host}/{name}@{digest}"
        return f"docker://{self.host}/{name}:{tag or 'latest'}"

    def http(self, credentials: tuple[str, str] | None = None) -> RegistryHTTP:
        return RegistryHTTP(self.url, credentials or self.admin, verify=self.verify)
