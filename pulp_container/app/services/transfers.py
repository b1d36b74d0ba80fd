"""What the registry did with each blob that reached a repository: the mount counters."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Sum

from pulp_container.app.models import BlobTransfer, PendingContent
from pulp_container.app.row_writes import Part, quoted, write_together
from pulp_container.constants import TransferOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transfer:
    """How a blob reached (or did not reach) a repository: one record and one log line."""

    digest: str
    outcome: TransferOutcome
    reason: str = ""
    bytes_received: int = 0
    bytes_saved: int = 0


def record_transfer(repository_name: str, transfer: Transfer) -> None:
    """Record a transfer and log it on one line (one INSERT, without model hooks)."""
    write_together([_record(repository_name, transfer)])
    log_transfer(repository_name, transfer)


def _table(model) -> str:
    return quoted(model._meta.db_table)


def _columns(model, *fields: str) -> list[str]:
    return [quoted(model._meta.get_field(f).column) for f in fields]


_LINK_REPOSITORY, _LINK_CONTENT, _LINK_ADDED = _columns(
    PendingContent, "repository", "content", "added"
)
_RECORD_FIELDS = ", ".join(
    _columns(
        BlobTransfer,
        *("pulp_id", "pulp_created", "pulp_last_updated", "repository_name", "digest"),
        *("outcome", "reason", "bytes_received", "bytes_saved"),
    )
)


def link_parts(repository, content_pk, transfer: Transfer) -> list[Part]:
    """The pending link of a blob in the repository (protected from orphan cleanup until a
    manifest commits it) and the record of how it came there, as parts of one statement."""
    link = Part(
        f"""INSERT INTO {_table(PendingContent)}
            ({_LINK_REPOSITORY}, {_LINK_CONTENT}, {_LINK_ADDED})
        VALUES (%s, %s, now())
        ON CONFLICT ({_LINK_REPOSITORY}, {_LINK_CONTENT}) DO UPDATE SET {_LINK_ADDED} = now()
        RETURNING 1""",
        (repository.pk, content_pk),
        name="link",
    )
    record = _record(repository.name, transfer, after="link")
    return [link, record]


def _record(repository_name: str, transfer: Transfer, after: str = "") -> Part:
    """The INSERT of a transfer record; ``after``: a part of the same statement it follows (one
    record per row that part returns)."""
    source = f" FROM {after}" if after else ""
    return Part(
        f"""INSERT INTO {_table(BlobTransfer)} ({_RECORD_FIELDS})
        SELECT %s, now(), now(), %s, %s, %s, %s, %s, %s{source}""",
        (
            BlobTransfer._meta.pk.get_default(),
            repository_name,
            transfer.digest,
            transfer.outcome.value,
            transfer.reason,
            transfer.bytes_received,
            transfer.bytes_saved,
        ),
    )


def link_pending(repository, content_pk, transfer: Transfer, *also: Part) -> None:
    """Hold a blob pending in the repository and record how it came there (``link_parts``),
    with ``also``: one statement, the write of every mount, upload commit and fetched blob."""
    write_together([*also, *link_parts(repository, content_pk, transfer)])
    log_transfer(repository.name, transfer)


def log_transfer(repository_name: str, transfer: Transfer) -> None:
    log.info(
        "blob transfer: outcome=%s repository=%s digest=%s reason=%r received=%d saved=%d",
        transfer.outcome.value,
        repository_name,
        transfer.digest,
        transfer.reason,
        transfer.bytes_received,
        transfer.bytes_saved,
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
