"""``<API root>/pulp_container/blob-transfers/``: the mount counters, for the administrator.

Answers, by outcome, how many blobs reached repositories and how many bytes were received or
saved; ``?repository=<prefix>`` narrows it to some names; ``recent`` lists the last records with
the server-side reason of each fallback (never shown to registry clients).
"""

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from pulp_container.app.services.transfers import recent_transfers, transfer_summary


@extend_schema(exclude=True)
class BlobTransfersView(APIView):
    permission_classes = [IsAdminUser]

    def get(self, request):
        prefix = request.query_params.get("repository")
        since = parse_datetime(request.query_params.get("since", "") or "")
        return Response(
            {
                "summary": transfer_summary(prefix, since),
                "recent": recent_transfers(prefix),
            }
        )
