"""Routes of the registry: /v2/ (OCI Distribution API) and /token/.

Names may have several path segments, so the resource suffix decides the route; upload routes
come before blob routes, since ``blobs/uploads`` would otherwise read as a digest.
"""

from django.conf import settings
from django.urls import path, re_path

from pulp_container.app.registry_api import (
    BlobUploadsView,
    BlobUploadView,
    BlobView,
    CatalogView,
    ManifestView,
    ReferrersView,
    TagsView,
    UnknownEndpointView,
    VersionView,
)
from pulp_container.app.token_api import TokenView
from pulp_container.app.transfers_api import BlobTransfersView

NAME = r"(?P<name>[^?#]+?)"

urlpatterns = [
    path(
        f"{settings.V3_API_ROOT_NO_FRONT_SLASH}pulp_container/blob-transfers/",
        BlobTransfersView.as_view(),
    ),
    re_path(r"^token/?$", TokenView.as_view()),
    re_path(r"^v2/?$", VersionView.as_view()),
    re_path(r"^v2/_catalog/?$", CatalogView.as_view()),
    re_path(rf"^v2/{NAME}/tags/list/?$", TagsView.as_view()),
    re_path(rf"^v2/{NAME}/blobs/uploads/?$", BlobUploadsView.as_view()),
    re_path(rf"^v2/{NAME}/blobs/uploads/(?P<upload_id>[^/]+)/?$", BlobUploadView.as_view()),
    re_path(rf"^v2/{NAME}/blobs/(?P<digest>[^/]+)/?$", BlobView.as_view()),
    re_path(rf"^v2/{NAME}/manifests/(?P<reference>[^/]+)/?$", ManifestView.as_view()),
    re_path(rf"^v2/{NAME}/referrers/(?P<digest>[^/]+)/?$", ReferrersView.as_view()),
    re_path(r"^v2/", UnknownEndpointView.as_view()),
]
