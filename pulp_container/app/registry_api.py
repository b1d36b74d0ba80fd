"""The /v2/ views of the OCI Distribution API: parse, call one service, shape the response."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.db import DatabaseError, InterfaceError
from django.db.utils import DataError
from django.http import FileResponse, HttpResponse, JsonResponse
from pulpcore.plugin.util import get_default_domain, set_domain
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.views import APIView

from pulp_container.app.authorization import Caller
from pulp_container.app.exceptions import (
    BlobUnknown,
    ManifestInvalid,
    ManifestTooLarge,
    ManifestUnknown,
    NameUnknown,
    ParameterInvalid,
    RegistryError,
    Unavailable,
    Unsupported,
    render_error,
)
from pulp_container.app.negotiation import HandBuiltResponses
from pulp_container.app.oci import (
    ContentRange,
    Digest,
    Reference,
    RepositoryName,
    is_clean_text,
    negotiate_media_type,
    page_size,
)
from pulp_container.app.request_body import body_stream
from pulp_container.app.scopes import Resource, Scope, challenged_access, required_access
from pulp_container.app.services import (
    content,
    listings,
    manifests,
    mounts,
    on_demand,
    pull_through,
    repository_operations,
    uploads,
)
from pulp_container.app.token_verification import authorize, authorize_session, identify
from pulp_container.constants import (
    API_VERSION_HEADER,
    API_VERSION_VALUE,
    CONTENT_DIGEST_HEADER,
    MANIFEST_MAX_BYTES,
    OCI_FILTERS_APPLIED_HEADER,
    OCI_INDEX,
    OCI_SUBJECT_HEADER,
    STREAM_CHUNK_BYTES,
    UPLOAD_UUID_HEADER,
)

log = logging.getLogger(__name__)


class RegistryView(APIView):
    """Dispatcher of every /v2/ view: parse the name, identify and authorize the caller once."""

    authentication_classes: list = []
    permission_classes: list = []
    content_negotiation_class = HandBuiltResponses
    resource = Resource.REPOSITORY
    # The registry names no Pulp domain: the default one, which pulpcore keeps in memory, rather
    # than pulpcore's DomainMiddleware reading it from the database on every request.
    skip_domain_middleware = True

    name: RepositoryName | None
    caller: Caller
    required: list[Scope]
    # Upload sessions take an expired token from the user who started them (authorize_session).
    continues_sessions = False

    def initial(self, request, *args, **kwargs):
        set_domain(get_default_domain())
        super().initial(request, *args, **kwargs)
        if request.method == "OPTIONS":
            # Not part of the API: no framework metadata (nor docstrings) for anyone.
            raise Unsupported("OPTIONS is not supported by the registry API")
        _check_text(request, kwargs)
        raw_name = kwargs.get("name")
        self.name = RepositoryName.parse(raw_name) if raw_name is not None else None
        self.required = required = required_access(request.method, self.resource, raw_name)
        challenged = self.challenged_access(request, required)
        self.caller = identify(request._request, required, challenged, self.continues_sessions)
        authorize(request._request, self.caller, required, self.name, challenged)

    def challenged_access(self, request, required: list[Scope]) -> list[Scope]:
        """What a 401 challenge of this view names: what it requires."""
        return required

    def handle_exception(self, exc):
        if isinstance(exc, MethodNotAllowed):
            exc = Unsupported(f"{exc.detail}")
        if isinstance(exc, (InterfaceError, DatabaseError)) and not isinstance(exc, DataError):
            log.warning("database unavailable in %s: %s", type(self).__name__, exc)
            exc = Unavailable("the database is unavailable; retry later")
        if not isinstance(exc, RegistryError):
            log.exception("unexpected error in %s", type(self).__name__)
            exc = RegistryError("internal error")
        response = render_error(exc)
        if self.request is not None and self.request.method == "HEAD":
            # A HEAD answer has headers only (RFC 9110); the length stays that of the GET body.
            response.content = b""
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response[API_VERSION_HEADER] = API_VERSION_VALUE
        return response


def _empty(status: int, **headers: str) -> HttpResponse:
    response = HttpResponse(status=status)
    response["Content-Length"] = "0"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _check_text(request, path_values: dict) -> None:
    """Every parameter is text the database can store: no NUL, no lone surrogate."""
    values = [*path_values.values()]
    for key, given in request.query_params.lists():
        values += [key, *given]
    if not all(is_clean_text(str(value)) for value in values):
        raise ParameterInvalid("a parameter holds NUL or a lone surrogate")


def _page_limit(request) -> int | None:
    return page_size(request.query_params.get("n"))


def _paginated(request, path: str, body: dict, more: bool, last: str | None) -> JsonResponse:
    response = JsonResponse(body)
    limit = _page_limit(request)
    if more and last is not None and limit is not None:
        query = urlencode({"n": limit, "last": last})
        response["Link"] = f'<{path}?{query}>; rel="next"'
    return response


class VersionView(RegistryView):
    """``GET /v2/``: the API version check, which also starts authentication."""

    resource = Resource.BASE

    def get(self, request):
        return JsonResponse({})


class UnknownEndpointView(RegistryView):
    """Any other path under /v2/: an OCI error, not a web page, and the version header."""

    resource = Resource.BASE

    def _unknown(self, request, *args, **kwargs):
        raise NameUnknown(f"no registry endpoint at {request.path}")

    get = head = post = put = patch = delete = _unknown


class CatalogView(RegistryView):
    resource = Resource.CATALOG

    def get(self, request):
        names, more = listings.catalog_page(
            self.caller.user, _page_limit(request), request.query_params.get("last")
        )
        last = names[-1] if names else None
        return _paginated(request, "/v2/_catalog", {"repositories": names}, more, last)


class TagsView(RegistryView):
    def get(self, request, name):
        tags, more = listings.tags_page(
            self.name, _page_limit(request), request.query_params.get("last")
        )
        last = tags[-1] if tags else None
        body = {"name": str(self.name), "tags": tags}
        return _paginated(request, f"/v2/{self.name}/tags/list", body, more, last)


class BlobView(RegistryView):
    """``HEAD``/``GET /v2/<name>/blobs/<digest>``."""

    def _find(self, digest: str):
        parsed = Digest.parse(digest)
        blob = mounts.find_blob_for(self.caller, self.name, parsed)
        if blob is None:
            raise BlobUnknown(f"blob {parsed} is unknown to {self.name}")
        return parsed, blob

    def head(self, request, name, digest):
        parsed, blob = self._find(digest)
        response = HttpResponse(status=200, content_type="application/octet-stream")
        response["Content-Length"] = str(blob.size)
        response[CONTENT_DIGEST_HEADER] = str(parsed)
        return response

    def delete(self, request, name, digest):
        content.remove_blob(self.name, Digest.parse(digest))
        return _empty(202)

    def get(self, request, name, digest):
        parsed, blob = self._find(digest)
        # Synced on demand: the bytes come from the remote now, after the access decision.
        blob = on_demand.fetch_on_demand(blob, parsed, str(self.name))
        redirect = content.object_storage_url(blob)
        front_path = content.front_path(blob) if redirect is None else None
        if redirect is not None:
            # Object storage sends the bytes, to whoever holds this URL for the next minute.
            response = HttpResponse(status=307)
            response["Location"] = redirect
        elif front_path is not None:
            # The front (nginx) sends the stored file itself; the bytes never pass through here.
            response = HttpResponse(content_type="application/octet-stream")
            response["X-Accel-Redirect"] = front_path
        else:
            stored, size = content.open_blob(blob)
            response = FileResponse(stored, content_type="application/octet-stream")
            response.block_size = STREAM_CHUNK_BYTES
            response["Content-Length"] = str(size)
        response[CONTENT_DIGEST_HEADER] = str(parsed)
        return response


def _upload_location(name: RepositoryName, upload) -> str:
    return f"/v2/{name}/blobs/uploads/{upload.pk}"


def _upload_accepted(name: RepositoryName, upload, status: int = 202) -> HttpResponse:
    end = max(upload.offset - 1, 0)
    return _empty(
        status,
        Location=_upload_location(name, upload),
        Range=f"0-{end}",
        **{UPLOAD_UUID_HEADER: str(upload.pk)},
    )


def _blob_created(name: RepositoryName, digest: Digest) -> HttpResponse:
    return _empty(
        201, Location=f"/v2/{name}/blobs/{digest}", **{CONTENT_DIGEST_HEADER: str(digest)}
    )


class BlobUploadsView(RegistryView):
    """``POST /v2/<name>/blobs/uploads/``: start an upload, push monolithically, or mount."""

    def challenged_access(self, request, required: list[Scope]) -> list[Scope]:
        query = request.query_params
        return challenged_access(required, query.get("mount"), query.get("from"))

    def post(self, request, name):
        query = request.query_params
        # Parameters are parsed before anything is created: a bad request leaves no trace.
        mount = Digest.parse(query["mount"]) if "mount" in query else None
        digest = Digest.parse(query["digest"]) if "digest" in query else None
        body = body_stream(request._request) if digest is not None and mount is None else None
        started = uploads.start_upload(
            self.name, self.caller, mount=mount, source=query.get("from"), digest=digest, body=body
        )
        if started.blob is not None:
            return _blob_created(self.name, started.blob)
        return _upload_accepted(self.name, started.session)


class BlobUploadView(RegistryView):
    """``/v2/<name>/blobs/uploads/<id>``: status, append a chunk, finish, cancel."""

    resource = Resource.UPLOAD
    continues_sessions = True

    def _upload(self, upload_id: str):
        upload = uploads.find_upload(self.name, upload_id)
        authorize_session(self.request._request, self.caller, self.required, upload)
        return upload

    def get(self, request, name, upload_id):
        return _upload_accepted(self.name, self._upload(upload_id), status=204)

    def patch(self, request, name, upload_id):
        upload = self._upload(upload_id)
        header = request.META.get("HTTP_CONTENT_RANGE")
        chunk_range = ContentRange.parse(header, upload.offset) if header else None
        stream, length = body_stream(request._request)
        uploads.append_chunk(upload, stream, chunk_range, length)
        return _upload_accepted(self.name, upload)

    def put(self, request, name, upload_id):
        upload = self._upload(upload_id)
        digest = Digest.parse(request.query_params.get("digest"))
        stream, length = body_stream(request._request)
        uploads.commit_upload(upload, digest, stream, length)
        return _blob_created(self.name, digest)

    def delete(self, request, name, upload_id):
        uploads.cancel_upload(self._upload(upload_id))
        return _empty(204)


class ManifestView(RegistryView):
    """``/v2/<name>/manifests/<reference>``: push, pull (with Accept negotiation), delete."""

    def _find(self, request, reference: str):
        manifest = pull_through.find_or_fetch_manifest(self.name, Reference.parse(reference))
        if not negotiate_media_type(manifest.media_type, request.META.get("HTTP_ACCEPT", "")):
            raise ManifestUnknown(f"manifest is {manifest.media_type}, not in Accept")
        return manifest

    def _response(self, manifest, body: bytes) -> HttpResponse:
        response = HttpResponse(body, content_type=manifest.media_type)
        response[CONTENT_DIGEST_HEADER] = manifest.digest
        response["Content-Length"] = str(len(manifest.data.encode("utf-8")))
        response["ETag"] = f'"{manifest.digest}"'
        return response

    def head(self, request, name, reference):
        return self._response(self._find(request, reference), b"")

    def get(self, request, name, reference):
        manifest = self._find(request, reference)
        return self._response(manifest, manifest.data.encode("utf-8"))

    def delete(self, request, name, reference):
        """By tag: the tag goes, the manifest stays. By digest: the manifest and its tags go."""
        repository_operations.delete_manifest(self.name, Reference.parse(reference))
        return _empty(202)

    def put(self, request, name, reference):
        try:
            parsed_reference = Reference.parse(reference)
        except ManifestUnknown as error:
            raise ManifestInvalid(error.detail) from None
        stream, length = body_stream(request._request)
        if length is not None and length > MANIFEST_MAX_BYTES:
            raise ManifestTooLarge(f"manifest is larger than {MANIFEST_MAX_BYTES} bytes")
        body = stream.read(MANIFEST_MAX_BYTES + 1)
        manifest = manifests.store_manifest(
            self.name, self.caller.user, parsed_reference, body, request.META.get("CONTENT_TYPE")
        )
        headers = {CONTENT_DIGEST_HEADER: manifest.digest}
        if manifest.subject:
            headers[OCI_SUBJECT_HEADER] = manifest.subject
        return _empty(201, Location=f"/v2/{self.name}/manifests/{manifest.digest}", **headers)


# Referrers per page when the client names no ``n``: a large index is split, with a Link.
REFERRERS_PAGE = 1000


class ReferrersView(RegistryView):
    """``GET /v2/<name>/referrers/<digest>``: an index of the manifests whose subject it is."""

    def get(self, request, name, digest):
        subject = Digest.parse(digest)
        params = request.query_params
        artifact_type = params.get("artifactType")
        limit = _page_limit(request) or REFERRERS_PAGE
        descriptors, more = manifests.referrers(
            self.name, subject, artifact_type, params.get("last"), limit
        )
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        response = JsonResponse(body, content_type=OCI_INDEX)
        if artifact_type is not None:
            response[OCI_FILTERS_APPLIED_HEADER] = "artifactType"
        if more:
            query = {"n": limit, "last": descriptors[-1]["digest"]}
            if artifact_type is not None:
                query["artifactType"] = artifact_type
            response["Link"] = (
                f'</v2/{self.name}/referrers/{subject}?{urlencode(query)}>; rel="next"'
            )
        return response
