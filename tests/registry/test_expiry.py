"""Expiry of abandoned pushes (issue 13): idle upload sessions and pending content go, on a
schedule; an active push loses nothing; the task records what it removed."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils.timezone import now
from django_guid import set_guid
from pulpcore.plugin.models import ProgressReport, Task, TaskSchedule
from pulpcore.plugin.tasking import dispatch

from harness.oci_images import sha256_digest
from pulp_container.app import tasks, upload_files
from pulp_container.app.models import BlobUpload, PendingContent
from pulp_container.app.schedules import EXPIRY_TASK
from pulp_container.app.services.expiry import expire_idle_pushes
from tests.registry.client import RegistryClient, error_of, pending_digests

DAY = 24 * 3600


@pytest.fixture
def pusher(admin_registry) -> RegistryClient:
    return admin_registry("admin/idle", "admin/busy")


def age(name: str, seconds: int) -> None:
    """Make every upload session and pending unit of ``name`` this many seconds old."""
    then = now() - timedelta(seconds=seconds)
    BlobUpload.objects.filter(repository__name=name).update(pulp_last_updated=then)
    PendingContent.objects.filter(repository__name=name).update(added=then)


def start_push(client: RegistryClient, name: str) -> tuple[BlobUpload, str]:
    """A push that uploaded one blob and left one upload session open."""
    digest = client.push_blob(name, os.urandom(2000))
    location = client.start_upload(name)["Location"]
    response = client.patch(location, os.urandom(100))
    assert response.status_code == 202, error_of(response)
    return BlobUpload.objects.get(repository__name=name), digest


@pytest.mark.parametrize(
    "idle_for, expired",
    [
        pytest.param(DAY + 60, True, id="idle-longer-than-the-limit"),
        pytest.param(DAY - 60, False, id="idle-shorter-than-the-limit"),
        pytest.param(0, False, id="just-touched"),
    ],
)
def test_an_idle_push_loses_its_sessions_and_pending_content_after_the_limit(
    pusher, idle_for, expired
):
    upload, digest = start_push(pusher, "admin/idle")
    age("admin/idle", idle_for)

    removed = expire_idle_pushes()

    assert BlobUpload.objects.filter(pk=upload.pk).exists() is not expired
    assert upload_files.has_bytes(upload.pk, None) is not expired
    assert (digest in pending_digests("admin/idle")) is not expired
    assert removed.uploads == ([str(upload.pk)] if expired else [])
    assert removed.pending == ([("admin/idle", "container.blob", digest)] if expired else [])


def test_an_active_push_survives_even_with_old_parts(pusher):
    """A push whose first blob went up long ago but which is still sending is left alone."""
    _, old_digest = start_push(pusher, "admin/busy")
    age("admin/busy", 3 * DAY)
    idle_upload, _ = start_push(pusher, "admin/idle")
    age("admin/idle", 3 * DAY)
    data = os.urandom(500)
    fresh = pusher.push_blob("admin/busy", data)  # the push is still active

    removed = expire_idle_pushes()

    assert old_digest in pending_digests("admin/busy")
    assert fresh in pending_digests("admin/busy")
    assert BlobUpload.objects.filter(repository__name="admin/busy").exists()
    assert removed.uploads == [str(idle_upload.pk)]
    # The busy push goes on to commit a manifest referencing what it sent.
    assert fresh == sha256_digest(data)


def test_an_expired_session_is_unknown_to_a_client_that_comes_back(pusher):
    upload, _ = start_push(pusher, "admin/idle")
    age("admin/idle", 2 * DAY)
    expire_idle_pushes()

    response = pusher.get(f"/v2/admin/idle/blobs/uploads/{upload.pk}")

    assert response.status_code == 404


def test_the_expiry_runs_on_a_schedule(db):
    schedule = TaskSchedule.objects.get(task_name=EXPIRY_TASK)

    assert schedule.dispatch_interval == timedelta(hours=1)


def test_the_expiry_task_records_what_it_removed(pusher, api_process):
    start_push(pusher, "admin/idle")
    age("admin/idle", 2 * DAY)

    set_guid("test-expiry")  # the correlation id a request's middleware would have set
    task = dispatch(tasks.expire_idle_pushes, exclusive_resources=[])
    # As a worker runs it (the worker's entry point is not in pulpcore.plugin; tests only).
    from pulpcore.tasking.tasks import execute_task

    app_status = apps.get_model("core", "AppStatus").objects.current()
    Task.objects.filter(pk=task.pk).update(app_lock=app_status)
    task.refresh_from_db()
    execute_task(task)

    task.refresh_from_db()
    assert task.state == "completed", task.error
    reports = {r.code: r.done for r in ProgressReport.objects.filter(task=task)}
    assert reports == {"container.expire.uploads": 1, "container.expire.pending": 1}
