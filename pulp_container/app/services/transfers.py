"""What the registry did with each blob that reached a repository: the mount counters."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import Count, Sum

from pulp_container.app.models import BlobTransfer
from pulp_container.constants import TransferOutcome

log = logging.getLogger(__name__)


def record_transfer(
    repository_name: str,
    digest: str,
    outcome: TransferOutcome,
    reason: str = "",
    bytes_received: int = 0,
    bytes_saved: int = 0,
) -> None:
    """Record how a blob reached (or did not reach) a repository, and log it on one line.

    One INSERT, without model hooks: this runs on every upload commit and every mount.
    """
    BlobTransfer.objects.bulk_create(
        [
            BlobTransfer(
                repository_name=repository_name,
                digest=digest,
                outcome=outcome.value,
                reason=reason,
                bytes_received=bytes_received,
                bytes_saved=bytes_saved,
            )
        ]
    )
    log.info(
        "blob transfer: outcome=%s repository=%s digest=%s reason=%r received=%d saved=%d",
        outcome.value,
        repository_name,
        digest,
        reason,
        bytes_received,
        bytes_saved,
    )


def transfer_summary(repository_prefix: str | None = None, since: datetime | None = None) -> dict:
    """Counts and bytes by outcome (a ``TransferOutcome`` value)."""
    records = BlobTransfer.objects.all()
    if repository_prefix:
        records = records.filter(repository_name__startswith=repository_prefix)
    if since is not None:
        records = records.filter(pulp_created__gte=since)
    rows = records.values("outcome").annotate(
        count=Count("pk"), bytes_received=Sum("bytes_received"), bytes_saved=Sum("bytes_saved")
    )
    return {
        row["outcome"]: {
            "count": row["count"],
            "bytes_received": row["bytes_received"] or 0,
            "bytes_saved": row["bytes_saved"] or 0,
        }
        for row in rows
    }


def recent_transfers(repository_prefix: str | None = None, limit: int = 100) -> list[dict]:
    records = BlobTransfer.objects.order_by("-pulp_created")
    if repository_prefix:
        records = records.filter(repository_name__startswith=repository_prefix)
    return [
        {
            "repository": record.repository_name,
            "digest": record.digest,
            "outcome": record.outcome,
            "reason": record.reason,
            "bytes_received": record.bytes_received,
            "bytes_saved": record.bytes_saved,
            "created": record.pulp_created.isoformat(),
        }
        for record in records[:limit]
    ]
